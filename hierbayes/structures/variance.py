"""Residual variance functions (nlme's ``varIdent``, ``varPower``, ``varExp``, ``varComb``).

The residual SD of row i is ``sigma * g_i(delta)``: ``varIdent`` one ratio per
stratum (the reference stratum has 1), ``varPower`` ``|v_i|^power``,
``varExp`` ``exp(expon * v_i)``, ``varComb`` the product. ``v`` is a column of
the data, or the fitted values (``~ fitted(.)``, nlme's default for
``varPower``/``varExp``; then, as nlme does, the fitted values are held fixed
while the other parameters are optimised and updated in an outer loop until
nothing changes: nlme's fixed point, not a likelihood maximum). Prior weights
are the fixed case: ``g_i = 1 / sqrt(w_i)``; both enter the likelihood by
dividing row i by ``g_i`` and adding ``2 sum log g_i`` to ``log|R|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, DataError
from hierbayes.structures.forms import FITTED, Form, group_codes, numeric_covariate, parse_form


class Variance:
    """Base class of the variance functions."""

    nlme_class = ""

    def __init__(self, form: str = "~ 1", value: float | None = None):
        self.form: Form = parse_form(form, type(self).__name__)
        if value is not None and not isinstance(value, (int, float)):
            raise ArgumentError(f"value of {type(self).__name__} must be a number, not {value!r}")
        self.value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.form.text!r})"

    def bind(self, data: pd.DataFrame, order: np.ndarray, ref_order: np.ndarray) -> BoundVariance:
        """The function on the model's rows, in the order ``order``; ``ref_order``: nlme's sort by groups."""
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class BoundVariance:
    """A variance function on given (sorted) rows.

    Attributes
    ----------
    kind
        ``"ident"``, ``"power"``, ``"exp"`` or ``"comb"``.
    names, start
        nlme's parameter names and the unconstrained starting values.
    codes
        varIdent: stratum of each row (0 = reference; -1 for none).
    covariate
        varPower/varExp: the covariate per row (None for the fitted values).
    parts
        varComb: the combined functions.
    """

    spec: Variance
    kind: str
    names: tuple[str, ...]
    start: np.ndarray
    codes: np.ndarray | None = None
    covariate: np.ndarray | None = None
    parts: tuple[BoundVariance, ...] = ()
    label: str = ""

    @property
    def npar(self) -> int:
        return len(self.names)

    @property
    def uses_fitted(self) -> bool:
        if self.kind == "comb":
            return any(p.uses_fitted for p in self.parts)
        return self.kind in ("power", "exp") and self.covariate is None

    def natural(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, float)
        if self.kind == "ident":
            return np.exp(u)
        if self.kind == "comb":
            out, i = [], 0
            for p in self.parts:
                out.append(p.natural(u[i : i + p.npar]))
                i += p.npar
            return np.concatenate(out)
        return u

    def unconstrained(self, values: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`natural`."""
        values = np.asarray(values, float)
        if self.kind == "ident":
            with np.errstate(divide="ignore"):
                return np.log(values)
        if self.kind == "comb":
            out, i = [], 0
            for p in self.parts:
                out.append(p.unconstrained(values[i : i + p.npar]))
                i += p.npar
            return np.concatenate(out)
        return values.copy()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the natural parameters (SD ratios > 0; powers and exponents free)."""
        if self.kind == "comb":
            parts = [p.bounds() for p in self.parts]
            return np.concatenate([b[0] for b in parts]), np.concatenate([b[1] for b in parts])
        lo = 0.0 if self.kind == "ident" else -np.inf
        return np.full(self.npar, lo), np.full(self.npar, np.inf)

    def log_sd(self, u: np.ndarray, fitted: np.ndarray | None) -> np.ndarray:
        """``log g_i`` for every (sorted) row at the unconstrained parameters ``u``."""
        u = np.asarray(u, float)
        if self.kind == "ident":
            return np.concatenate([[0.0], u])[self.codes]
        if self.kind == "comb":
            out, i = 0.0, 0
            for p in self.parts:
                out = out + p.log_sd(u[i : i + p.npar], fitted)
                i += p.npar
            return out
        v = self.covariate if self.covariate is not None else fitted
        if self.kind == "power":
            with np.errstate(divide="ignore"):
                return u[0] * np.log(np.abs(v))
        return u[0] * v


class varIdent(Variance):
    """nlme's ``varIdent("~ 1 | s")``: one residual SD ratio per stratum of s (the reference stratum has 1).

    The reference stratum is, as in nlme, the stratum of the first row after
    the rows are sorted by the random-effects groups.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.varIdent("~ 1 | Sex")
    varIdent('~ 1 | Sex')
    """

    nlme_class = "varIdent"

    def bind(self, data, order, ref_order) -> BoundVariance:
        where = repr(self)
        if self.form.covariate is not None or not self.form.groups:
            raise ArgumentError(f"{where} needs a form '~ 1 | stratum'")
        codes, labels = group_codes(data, self.form, where)
        counts = np.bincount(codes, minlength=len(labels))
        if len(labels) < 2:
            raise DataError(f"{where}: the stratum column has a single value ({labels[0]!r}): nothing to estimate")
        lonely = [lab for lab, c in zip(labels, counts, strict=True) if c < 2]
        if lonely:
            raise DataError(
                f"{where}: the stratum {lonely[0]!r} has a single row; its variance ratio cannot be estimated"
            )
        ref = int(codes[ref_order[0]])
        others = [i for i in range(len(labels)) if i != ref]
        remap = np.empty(len(labels), dtype=np.int64)
        remap[ref] = 0
        remap[others] = np.arange(1, len(labels))
        names = tuple(labels[i] for i in others)
        start = np.zeros(len(names)) if self.value is None else np.full(len(names), np.log(self.value))
        return BoundVariance(self, "ident", names, start, codes=remap[codes][order], label=labels[ref])


class varPower(Variance):
    """nlme's ``varPower``: residual SD ``sigma * |v|^power``; ``v`` a column or, by default, the fitted values.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.varPower(), hb.varPower("~ pressure")
    (varPower('~ fitted(.)'), varPower('~ pressure'))
    """

    nlme_class = "varPower"
    kind = "power"
    pname = "power"

    def __init__(self, form: str = "~ fitted(.)", value: float | None = None):
        super().__init__(form, value)

    def bind(self, data, order, ref_order) -> BoundVariance:
        where = repr(self)
        if self.form.groups:
            raise ArgumentError(f"{where}: strata ('| s') in the form of {type(self).__name__} are not supported")
        start = np.array([0.0 if self.value is None else float(self.value)])
        if self.form.covariate is None:
            raise ArgumentError(f"{where} needs a covariate: '~ x' or '~ fitted(.)'")
        if self.form.covariate == FITTED:
            return BoundVariance(self, self.kind, (self.pname,), start)
        v = numeric_covariate(data, self.form, where)
        if self.kind == "power" and np.any(v == 0):
            raise DataError(f"{where}: the covariate {self.form.covariate!r} is 0 in some rows, where |v|^power is 0")
        return BoundVariance(self, self.kind, (self.pname,), start, covariate=v[order])


class varExp(varPower):
    """nlme's ``varExp``: residual SD ``sigma * exp(expon * v)``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.varExp("~ pressure")
    varExp('~ pressure')
    """

    nlme_class = "varExp"
    kind = "exp"
    pname = "expon"


class varComb(Variance):
    """nlme's ``varComb(f1, f2, ...)``: the product of variance functions (parameters named ``A.``, ``B.``, ...).

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.varComb(hb.varIdent("~ 1 | QB"), hb.varPower("~ pressure"))
    varComb(varIdent('~ 1 | QB'), varPower('~ pressure'))
    """

    nlme_class = "varComb"

    def __init__(self, *parts: Variance):
        if len(parts) < 2 or not all(isinstance(p, Variance) and not isinstance(p, varComb) for p in parts):
            raise ArgumentError("varComb takes two or more variance functions (varIdent, varPower, varExp)")
        self.parts = parts
        self.form = parts[0].form
        self.value = None

    def __repr__(self) -> str:
        return f"varComb({', '.join(map(repr, self.parts))})"

    def bind(self, data, order, ref_order) -> BoundVariance:
        bound = tuple(p.bind(data, order, ref_order) for p in self.parts)
        names = tuple(f"{chr(65 + i)}.{n}" for i, b in enumerate(bound) for n in b.names)
        return BoundVariance(self, "comb", names, np.concatenate([b.start for b in bound]), parts=bound)
