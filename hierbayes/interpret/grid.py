"""Grids of predictor values: emmeans' reference grid and bambi's conditional grids.

Both start from the variables of the model: the data columns the formula's
fixed part reads (for bambi's grids also those of the random-effects terms).
A variable is a *factor* when the model codes it as one (text, categorical
and logical columns, and numbers used only inside ``factor()``,
``as.factor()``, ``ordered()`` or ``C()``), otherwise *numeric*.

* :func:`reference_grid` is R emmeans' ``ref_grid``: every level of every
  factor crossed with each numeric variable at its mean (or at the values
  given in ``at``), the first variable varying fastest. Grouping factors are
  not part of it: emmeans averages the fixed part only.
* :func:`conditional_grid` is bambi's ``interpret`` grid: the conditional
  variables at the values given (or at their defaults: every level of a
  factor, every distinct value of an integer column, 50 values from the
  minimum to the maximum of a float column), crossed, and every other
  variable at its typical value (the mean of a float column, the mode of
  an integer or categorical one).

New data are built in the types the columns had when fitting, so the
design encodes them exactly as it encoded the fitting data.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hierbayes.design.encode import replay_matrix
from hierbayes.design.names import r_label, sort_levels
from hierbayes.errors import ArgumentError, DataError

if TYPE_CHECKING:
    from hierbayes.fits.base import MixedFit

_SAFE = re.compile(r"_hb\d+_")


@dataclass(frozen=True)
class Variable:
    """One predictor variable of a model.

    Attributes
    ----------
    label
        The column's label in the user's data frame.
    kind
        ``"factor"`` or ``"numeric"``.
    levels
        A factor's levels as values new data can hold (R labels for text and
        categoricals, numbers for ``factor(x)`` of a numeric column, booleans
        for a logical column), in R's level order; empty for a numeric variable.
    labels
        The levels as R prints them.
    data
        The column over the rows the model used.
    fixed
        Whether the fixed part reads the variable (False: only a random-effects term does).
    """

    label: Hashable
    kind: str
    levels: tuple = ()
    labels: tuple[str, ...] = ()
    data: pd.Series | None = field(default=None, compare=False, repr=False)
    fixed: bool = True

    @property
    def name(self) -> str:
        return str(self.label)

    @property
    def mean(self) -> float:
        return float(np.mean(np.asarray(self.data, dtype=float)))

    def level_of(self, value: Any, what: str) -> Any:
        """The level a user's value names (by its R label), or a DataError listing the levels."""
        lab = r_label(value.item() if isinstance(value, np.generic) else value)
        if lab in self.labels:
            return self.levels[self.labels.index(lab)]
        shown = ", ".join(self.labels[:20]) + (", ..." if len(self.labels) > 20 else "")
        raise DataError(f"{what}: {value!r} is not a level of '{self.name}' (its levels: {shown})")


def _factor_safes(fit: MixedFit) -> tuple[set[str], set[str]]:
    """Safe names that the fixed part codes as a factor somewhere, and as a number somewhere."""
    spec = fit.design.fixed_spec
    cat, num = set(), set()
    for key, value in (getattr(spec, "encoder_state", None) or {}).items():
        kind = getattr(value[0], "value", value[0])
        (cat if kind == "categorical" else num).update(_SAFE.findall(str(key)))
    return cat, num


def model_variables(fit: MixedFit, random: bool = False) -> list[Variable]:
    """The model's variables: the fixed part's (in the formula's order), then with ``random`` the random terms'.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> [(v.name, v.kind) for v in model_variables(fit, random=True)]
    [('Days', 'numeric'), ('Subject', 'factor')]
    """
    design = fit.design
    frame = design.frame.data
    cat, num = _factor_safes(fit)
    fixed = list(design.fixed_labels)
    wanted = list(fixed)
    if random:
        for b in design.blocks:
            wanted += [c for c in b.columns if c not in wanted]
    out = []
    for c in design.columns:
        if c.label not in wanted or c.label == design.response_name:
            continue
        col = frame[c.label]
        in_fixed = c.label in fixed
        if c.kind == "numeric" and not (in_fixed and c.safe in cat and c.safe not in num):
            if not in_fixed and not c.numeric_use:  # a numeric grouping variable: its values are levels
                out.append(_factor(c, col, in_fixed))
            else:
                out.append(Variable(c.label, "numeric", data=col, fixed=in_fixed))
            continue
        out.append(_factor(c, col, in_fixed))
    order = {lab: i for i, lab in enumerate(wanted)}
    return sorted(out, key=lambda v: order[v.label])


def _factor(c, col: pd.Series, in_fixed: bool) -> Variable:
    if c.kind == "factor" and c.categories:
        labels = tuple(c.categories)
        return Variable(c.label, "factor", labels, labels, col, in_fixed)
    if c.kind == "logical":
        present = sorted({bool(v) for v in col.dropna()})
        return Variable(c.label, "factor", tuple(present), tuple("TRUE" if v else "FALSE" for v in present), col,
                        in_fixed)  # fmt: skip
    if c.kind == "numeric":
        values = np.unique(np.asarray(col, dtype=float))
        levels = tuple(int(v) if float(v).is_integer() else float(v) for v in values)
        return Variable(c.label, "factor", levels, tuple(r_label(v) for v in levels), col, in_fixed)
    labels = sort_levels(pd.unique(col.to_numpy(dtype=object)), c.name)
    return Variable(c.label, "factor", labels, labels, col, in_fixed)


def find_variable(variables: Sequence[Variable], name: Hashable, what: str, fit: MixedFit | None = None) -> Variable:
    """The variable a name (label or its text) refers to, or an ArgumentError naming the model's variables."""
    for v in variables:
        if v.label == name or v.name == str(name):
            return v
    known = ", ".join(v.name for v in variables) or "(none)"
    hint = ""
    if fit is not None:
        groups = [b.group for b in fit.design.blocks]
        if str(name) in groups:
            hint = (f"; '{name}' is a grouping factor (random effects): emmeans averages over the fixed part, "
                    "where it does not appear")  # fmt: skip
        elif str(name) == fit.design.response_name:
            hint = "; that is the response"
    raise ArgumentError(f"{what}: '{name}' is not a variable of the model (its variables: {known}){hint}")


def check_values(var: Variable, values: Any, what: str) -> list:
    """``at``-style values of a variable: levels of a factor, finite numbers of a numeric variable."""
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
        values = [values]
    values = list(pd.Series(values).tolist()) if isinstance(values, (pd.Series, pd.Index)) else list(values)
    if not values:
        raise DataError(f"{what}: no values given for '{var.name}'")
    if var.kind == "factor":
        return list(dict.fromkeys(var.level_of(v, what) for v in values))
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{what}: '{var.name}' is numeric; {v!r} is not a number") from None
        if not np.isfinite(x):
            raise DataError(f"{what}: '{var.name}' needs finite numbers, not {v!r}")
        out.append(x)
    return list(dict.fromkeys(out))


def cross(values: Mapping[Hashable, Sequence]) -> pd.DataFrame:
    """Every combination of the values, the first variable varying fastest (R's ``expand.grid``)."""
    names = list(values)
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(1))
    idx = pd.MultiIndex.from_product([list(values[n]) for n in reversed(names)], names=list(reversed(names)))
    frame = idx.to_frame(index=False)
    return frame[names]


@dataclass(frozen=True)
class ReferenceGrid:
    """emmeans' reference grid: one row per combination of the variables' values.

    Attributes
    ----------
    variables
        The fixed part's variables.
    values
        Per variable (by label) the values in the grid: a factor's levels, a
        numeric variable's mean or its ``at`` values.
    data
        The grid as new data for the model (user's column labels and types), first variable fastest.
    """

    variables: tuple[Variable, ...]
    values: dict
    data: pd.DataFrame

    def labels(self, var: Variable) -> list:
        """Printed values of a variable in the grid: level labels of a factor, numbers for a numeric variable
        (also for one the formula uses as a factor, ``factor(x)``, as emmeans prints it)."""
        if var.kind == "factor" and not all(_is_num(v) for v in var.levels):
            return [var.labels[var.levels.index(v)] for v in self.values[var.label]]
        return list(self.values[var.label])


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def reference_grid(fit: MixedFit, at: Mapping | None = None) -> ReferenceGrid:
    """emmeans' ``ref_grid(fit, at = at)``: factors at every level, covariates at their means.

    Parameters
    ----------
    fit
        Any fit.
    at
        Values for some variables (levels of a factor, numbers of a covariate).
    """
    variables = model_variables(fit)
    if at is not None and not isinstance(at, Mapping):
        raise ArgumentError(f"at must be a dict of variable -> values, not {type(at).__name__}")
    at = dict(at or {})
    chosen = {}
    for key, vals in at.items():
        var = find_variable(variables, key, "at=", fit)
        chosen[var.label] = check_values(var, vals, "at=")
    values = {}
    for v in variables:
        if v.label in chosen:
            values[v.label] = chosen[v.label]
        elif v.kind == "factor":
            values[v.label] = list(v.levels)
        else:
            values[v.label] = [v.mean]
    return ReferenceGrid(tuple(variables), values, cross(values))


def nonestimable_basis(fit: MixedFit) -> np.ndarray | None:
    """A basis of the null space of the full fixed-effects matrix (before aliased columns were dropped), or None.

    Where the design dropped aliased columns (a rank-deficient X, e.g. an empty
    cell of a factorial design), a linear function ``l`` of the full columns
    is estimable only if ``l`` is orthogonal to this null space (the
    estimability package's ``nonest.basis`` and ``is.estble``, which emmeans uses).
    """
    design = fit.design
    if not design.aliased:
        return None
    X = full_matrix(fit, design.frame.data)
    _, s, vt = np.linalg.svd(X, full_matrices=True)
    rank = int(np.sum(s > s[0] * max(X.shape) * np.finfo(float).eps * 10)) if s.size else 0
    return vt[rank:].T


def full_matrix(fit: MixedFit, data: pd.DataFrame) -> np.ndarray:
    """The fixed-effects matrix of ``data`` with every column, aliased ones included."""

    design = fit.design
    safe = design.safe_data(data, list(design.fixed_labels), "fixed effects")
    return replay_matrix(design.fixed_spec, safe, "fixed effects", design.naming)


def estimable(L_full: np.ndarray, nonest: np.ndarray | None, tol: float = 1e-8) -> np.ndarray:
    """Rows of L (in the full columns) that are estimable: ``|N'l|^2 <= tol |l|^2`` (estimability's ``is.estble``)."""
    L_full = np.atleast_2d(L_full)
    if nonest is None or nonest.shape[1] == 0:
        return np.ones(len(L_full), dtype=bool)
    proj = L_full @ nonest
    return np.sum(proj**2, axis=1) <= tol * np.maximum(np.sum(L_full**2, axis=1), 1e-300)
