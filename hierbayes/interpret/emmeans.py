"""Estimated marginal means (R's ``emmeans``) and trends (``emtrends``) of any fit.

The reference grid (:func:`hierbayes.interpret.grid.reference_grid`) crosses
every level of every factor of the fixed part with each covariate at its
mean. The marginal mean of a combination of the ``specs`` variables is the
equally weighted average of the grid's predictions over the other variables
(emmeans' default ``weights = "equal"``): a linear function ``L beta`` of the
fixed effects, with its standard error ``sqrt(L V L')`` and, for lmer fits,
Kenward-Roger's df and adjusted ``V`` (or Satterthwaite's df), as emmeans 1.8
computes them. On ``type="response"`` the means and interval ends are
back-transformed through the link (or the response's transformation) and the
standard errors by the delta method; tests stay on the link scale.

A posterior fit gets the same grid and linear functions, applied to each
draw of the fixed effects: the table gives the posterior median and a
highest-density (or equal-tailed) interval, as emmeans summarises Bayesian
fits.

The result is an :class:`EmmeansTable`: a pandas DataFrame with emmeans'
columns (``emmean`` or ``prob``/``rate``/``response``, ``SE``, ``df``,
``lower.CL``, ``upper.CL``, or ``asymp.LCL``/``asymp.UCL`` with infinite df)
that :func:`hierbayes.interpret.contrast.contrast` takes, and that prints
emmeans' notes under the table.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, DataError
from hierbayes.interpret import adjust as adj
from hierbayes.interpret.basis import Basis, check_fit, fit_basis, regridded
from hierbayes.interpret.grid import (
    _SAFE,
    ReferenceGrid,
    Variable,
    cross,
    estimable,
    find_variable,
    full_matrix,
    nonestimable_basis,
    reference_grid,
)
from hierbayes.interpret.scale import Scale

if TYPE_CHECKING:
    from hierbayes.fits.base import MixedFit

TYPES = ("link", "response")
CI_KINDS = ("hdi", "eti")


# --------------------------------------------------------------------------------------------------------------------
# the grid of means (emmeans' emmGrid)
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmmGrid:
    """Linear functions of a basis, with the labels and settings their summaries need.

    Attributes
    ----------
    basis
        Coefficients with their covariance (or draws) and df rule.
    linfct
        One linear function per row, shape (m, len(basis.coef)).
    offset
        A known constant added to each row's estimate (the model's offset).
    labels
        The rows' labels: one column per variable (``pri`` then ``by``).
    pri, by
        Primary and ``by`` variables (names of ``labels``' columns).
    numeric
        Names of primary variables whose labels are numbers (emmeans prefixes them with the name in contrasts).
    scale
        The scale the estimates are on (None: no back-transformation).
    type
        ``"link"`` or ``"response"``: the scale of the summary.
    est_name
        Column name of the estimates on the link scale (``emmean``, ``estimate``, ``Days.trend``).
    est_type
        emmeans' ``estType``: ``"prediction"``, ``"contrast"`` or ``"pairs"``.
    fam_size
        The number of means in each family of comparisons.
    adjust
        The default multiplicity adjustment.
    log_contrast
        Contrasts of a log-type scale, shown as ratios on the response scale.
    level
        Confidence level.
    ci_kind
        Interval of a posterior: ``"hdi"`` or ``"eti"``.
    messages
        Lines emmeans prints under the table (averaging, a scale note).
    notes
        What emmeans says on the console besides (interactions, a changed adjustment, a fallback df method).
    linfct_full, nonest
        With a rank-deficient design: the rows in every column of X (aliased ones too) and a basis of
        X's null space, which tell the estimable rows from the others (emmeans' ``nonEst``).
    """

    basis: Basis
    linfct: np.ndarray
    offset: np.ndarray
    labels: pd.DataFrame
    pri: tuple[str, ...]
    by: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    scale: Scale | None = None
    type: str = "link"
    est_name: str = "emmean"
    est_type: str = "prediction"
    fam_size: int = 0
    adjust: str = "none"
    log_contrast: bool = False
    level: float = 0.95
    ci_kind: str = "hdi"
    messages: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    linfct_full: np.ndarray | None = field(default=None, repr=False)
    nonest: np.ndarray | None = field(default=None, repr=False)

    @property
    def estimable(self) -> np.ndarray:
        """Rows that are estimable (all, unless the design dropped aliased columns)."""

        if self.linfct_full is None:
            return np.ones(len(self.linfct), dtype=bool)
        return estimable(self.linfct_full, self.nonest)

    @property
    def zflag(self) -> bool:
        return bool(np.all(~np.isfinite(self.df)))

    @property
    def estimates(self) -> np.ndarray:
        """Estimates on the link scale (posterior means of the draws for a posterior)."""
        return self.basis.estimate(self.linfct) + self.offset

    @property
    def df(self) -> np.ndarray:
        if self.basis.bayes:
            return np.full(len(self.linfct), np.inf)
        return self.basis.df(self.linfct)

    def draws(self) -> np.ndarray:
        """Posterior draws of the rows on the link scale, shape (S, m)."""
        return self.basis.draws @ self.linfct.T + self.offset

    @property
    def inverse(self) -> bool:
        """Whether the summary back-transforms (``type="response"`` with a transformation)."""
        return self.type == "response" and self.scale is not None and not self.scale.is_identity

    def response_name(self) -> str:
        """The estimates' column name on the summary's scale."""
        return self.scale.response_label if self.inverse else self.est_name

    def by_rows(self) -> list[np.ndarray]:
        """Row positions of each ``by`` group, in order of first appearance."""
        if not self.by:
            return [np.arange(len(self.labels))]
        keys = list(zip(*(self.labels[b].tolist() for b in self.by), strict=True))
        groups: dict = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        return [np.asarray(v) for v in groups.values()]


# --------------------------------------------------------------------------------------------------------------------
# the table (a DataFrame that remembers its grid)
# --------------------------------------------------------------------------------------------------------------------
class EmmeansTable(pd.DataFrame):
    """A table of marginal means or contrasts: a DataFrame with emmeans' columns, and its :class:`EmmGrid`.

    Behaves as a DataFrame (anything derived from it is a plain DataFrame);
    :func:`hierbayes.contrast` takes it; ``print`` shows emmeans' notes under it.
    """

    _metadata: ClassVar[list[str]] = ["_emm_grid"]

    @property
    def _constructor(self):
        return pd.DataFrame

    @property
    def grid(self) -> EmmGrid:
        """The linear functions behind the table (for :func:`hierbayes.contrast`)."""
        return self._emm_grid

    @property
    def messages(self) -> list[str]:
        """The lines emmeans prints under the table: averaging, df method, scale, confidence level, adjustment."""
        return list(self.attrs.get("messages", []))

    @property
    def notes(self) -> list[str]:
        """What emmeans says on the console besides: interactions, a changed adjustment, a fallback df method."""
        return list(self.attrs.get("notes", []))

    def confint(self, level: float | None = None, adjust: str | None = None) -> pd.DataFrame:
        """Confidence intervals of the rows (emmeans' ``confint``), adjusted for multiplicity as emmeans does."""
        return _summary_frame(self._emm_grid, intervals=True, tests=False, level=level, adjust=adjust)

    def test(self, adjust: str | None = None) -> pd.DataFrame:
        """t (or z) tests of each row against zero (one on a ratio scale), emmeans' ``test``."""
        return _summary_frame(self._emm_grid, intervals=False, tests=True, adjust=adjust)

    def __repr__(self) -> str:
        text = pd.DataFrame(self).to_string()
        notes = self.messages + self.notes
        return text + ("\n\n" + "\n".join(notes) if notes else "")

    def _repr_html_(self) -> str:
        html = pd.DataFrame(self)._repr_html_() or ""
        notes = self.messages + self.notes
        if notes:
            html += "<p>" + "<br>".join(notes) + "</p>"
        return html


def make_table(grid: EmmGrid, frame: pd.DataFrame) -> EmmeansTable:
    table = EmmeansTable(frame)
    object.__setattr__(table, "_emm_grid", grid)
    table.attrs["messages"] = list(frame.attrs.get("messages", []))
    notes = list(grid.notes)
    if not grid.estimable.all():
        notes.append("Rows with NaN are not estimable: the design dropped aliased columns (emmeans' nonEst)")
    table.attrs["notes"] = notes
    return table


# --------------------------------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------------------------------
def _bayes_interval(draws: np.ndarray, level: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(draws.shape[1], np.nan), np.full(draws.shape[1], np.nan)
    ok = ~np.isnan(draws).any(axis=0)
    if not ok.any():
        return lo, hi
    if kind == "hdi":
        from arviz_stats.base import array_stats  # ArviZ only for HPD intervals: import hierbayes stays light

        hdi = np.asarray(array_stats.hdi(draws[:, ok], level, axis=0))
        lo[ok], hi[ok] = hdi[..., 0], hdi[..., 1]
    else:
        lo[ok], hi[ok] = np.quantile(draws[:, ok], [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def _summary_frame(
    grid: EmmGrid, intervals: bool, tests: bool, level: float | None = None, adjust: str | None = None
) -> pd.DataFrame:
    """emmeans' ``summary(object, infer = c(intervals, tests))`` as a DataFrame, its notes in ``attrs``."""

    level = grid.level if level is None else _check_level(level)
    adjust_name = adj.method_name(grid.adjust if adjust is None else adjust)
    out = grid.labels.reset_index(drop=True).copy()
    notes: list[str] = list(grid.messages)
    pairs = grid.est_type == "pairs"
    by_rows = grid.by_rows()
    families = [adj.Family(rows, grid.fam_size or len(rows)) for rows in by_rows]
    name = grid.response_name()
    ok = grid.estimable
    if grid.basis.bayes:
        draws = grid.draws()
        if grid.inverse:
            draws = grid.scale.inverse(draws)
        draws[:, ~ok] = np.nan
        out[name] = np.median(draws, axis=0)
        lo, hi = _bayes_interval(draws, level, grid.ci_kind)
        tag = "HPD" if grid.ci_kind == "hdi" else "ETI"  # emmeans' name of a highest-density interval
        out[f"lower.{tag}"], out[f"upper.{tag}"] = lo, hi
        notes += ["Point estimate displayed: median", f"{tag} interval probability: {level:g}"]
        if grid.scale is not None and not grid.scale.is_identity:
            notes.append(
                f"Results are back-transformed from the {_scale_name(grid)} scale"
                if grid.inverse
                else f"Results are given on the {_scale_name(grid)} (not the response) scale."
            )
        frame = pd.DataFrame(out)
        frame.attrs["messages"] = _unique(notes)
        return frame
    est = np.where(ok, grid.estimates, np.nan)
    se = np.where(ok, grid.basis.se(grid.linfct), np.nan)
    df = np.where(ok, grid.df, np.nan)
    zflag = bool(np.all(np.isinf(df[ok]))) if ok.any() else bool(np.all(np.isinf(grid.df)))
    out[name] = est
    out["SE"] = se
    out["df"] = df
    if grid.basis.df_method:
        notes.append(f"Degrees-of-freedom method: {grid.basis.df_method}")
    if not grid.inverse and grid.scale is not None and not grid.scale.is_identity:
        notes.append(f"Results are given on the {_scale_name(grid)} (not the response) scale.")
    if intervals:
        cv = adj.critical_values(level, df, adjust_name, families, pairs)
        lo, hi = est - cv * se, est + cv * se
        names = ("asymp.LCL", "asymp.UCL") if zflag else ("lower.CL", "upper.CL")
        if grid.inverse:
            lo, hi = grid.scale.inverse(lo), grid.scale.inverse(hi)
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        out[names[0]], out[names[1]] = lo, hi
        notes.append(f"Confidence level used: {level:g}")
        msg = adj.adjustment_message(adjust_name, families, pairs, what="Conf-level")
        if msg:
            notes.append(msg)
        if grid.inverse:
            notes.append(f"Intervals are back-transformed from the {_scale_name(grid)} scale")
    if tests:
        t = est / se
        if grid.inverse:
            out["null"] = float(grid.scale.inverse(np.array(0.0)))
            if np.all(out["null"] == 0):
                del out["null"]
        out["z.ratio" if zflag else "t.ratio"] = t
        out["p.value"] = adj.adjusted_p(t, df, adjust_name, families, pairs)
        msg = adj.adjustment_message(adjust_name, families, pairs)
        if msg:
            notes.append(msg)
        if grid.inverse:
            notes.append(f"Tests are performed on the {_scale_name(grid)} scale")
    if grid.inverse:
        out["SE"] = np.abs(grid.scale.mu_eta(est)) * se
        out[name] = grid.scale.inverse(est)
    frame = pd.DataFrame(out)
    frame.attrs["messages"] = _unique(notes)
    return frame


def _scale_name(grid: EmmGrid) -> str:
    if grid.log_contrast and grid.scale.response_label == "odds.ratio":
        return "log odds ratio"
    return grid.scale.name


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_level(level: float) -> float:
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise ArgumentError(f"level must be a number in (0, 1), not {level!r}") from None
    if not 0 < level < 1:
        raise ArgumentError(f"level must be in (0, 1), not {level}")
    return level


def check_type(type: str) -> str:
    if type not in TYPES:
        raise ArgumentError(f"type must be 'link' or 'response', not {type!r}")
    return type


# --------------------------------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------------------------------
_SPLIT = re.compile(r"\s*[*:+]\s*")


def parse_specs(specs: Any, by: Any = None) -> tuple[list[str], list[str]]:
    """emmeans' ``specs`` and ``by``: ``"N"``, ``["N", "Variety"]``, ``"~ N | Variety"``, ``"N * Variety"``, ``"1"``.

    Examples
    --------
    >>> parse_specs("~ N | Variety")
    (['N'], ['Variety'])
    >>> parse_specs(["N", "Variety"], by=None)
    (['N', 'Variety'], [])
    """
    if isinstance(specs, str):
        text = specs.strip()
        if "~" in text:
            left, _, text = text.partition("~")
            if left.strip():
                raise ArgumentError(
                    f"specs {specs!r}: a two-sided spec ('{left.strip()} ~ ...') asks emmeans for contrasts too; "
                    f"call hb.contrast(hb.emmeans(fit, '{text.strip()}'), method='{left.strip()}') instead"
                )
        main, bar, cond = text.partition("|")
        pri = [p for p in _SPLIT.split(main.strip()) if p]
        by_spec = [p for p in _SPLIT.split(cond.strip()) if p] if bar else []
    elif isinstance(specs, (list, tuple)):
        if not specs or not all(isinstance(s, str) for s in specs):
            raise ArgumentError(f"specs must be a variable name, a list of names or a formula, not {specs!r}")
        pri, by_spec = [s.strip() for s in specs], []
    else:
        raise ArgumentError(
            f"specs must be a variable name, a list of names or a formula such as '~ N | Variety', not {specs!r}"
        )
    if by is not None:
        extra = [by] if isinstance(by, str) else list(by)
        if not all(isinstance(b, str) for b in extra):
            raise ArgumentError(f"by must be a variable name or a list of names, not {by!r}")
        by_spec += [b for b in extra if b not in by_spec]
    if not pri:
        raise ArgumentError(f"specs {specs!r} names no variable (use '1' for the overall mean)")
    pri = [p for p in pri if p not in by_spec] or pri
    return pri, by_spec


def _interaction_note(fit: MixedFit, spec_vars: list[Variable], averaged: list[Variable]) -> str | None:
    """emmeans' "NOTE: Results may be misleading due to involvement in interactions"."""

    safe = {c.label: c.safe for c in fit.design.columns}
    spec_safe = {safe[v.label] for v in spec_vars}
    avg_safe = {safe[v.label] for v in averaged}
    for st in fit.design.fixed_spec.structure:
        used = set(_SAFE.findall(str(st.term)))
        if used & spec_safe and used & avg_safe:
            return "NOTE: Results may be misleading due to involvement in interactions"
    return None


# --------------------------------------------------------------------------------------------------------------------
# emmeans and emtrends
# --------------------------------------------------------------------------------------------------------------------
def _combine(rg: ReferenceGrid, spec: list[Variable]) -> tuple[np.ndarray, pd.DataFrame]:
    """Equal-weight averaging matrix (combinations x grid rows) over the variables not in ``spec``, and the labels."""
    n = len(rg.data)
    code = np.zeros(n, dtype=np.int64)
    stride = 1
    for v in spec:
        vals = rg.values[v.label]
        index = {val: i for i, val in enumerate(vals)}
        code += stride * np.array([index[x] for x in rg.data[v.label].tolist()], dtype=np.int64)
        stride *= len(vals)
    ncomb = stride
    A = np.zeros((ncomb, n))
    A[code, np.arange(n)] = 1.0
    A /= A.sum(axis=1, keepdims=True)
    labels = _cross_labels(rg, spec)
    return A, labels


def _cross_labels(rg: ReferenceGrid, spec: list[Variable]) -> pd.DataFrame:

    if not spec:
        return pd.DataFrame({"1": ["overall"]})
    return cross({v.name: rg.labels(v) for v in spec}).reset_index(drop=True)


def _grid_for(
    fit: MixedFit,
    specs: Any,
    by: Any,
    at: Mapping | None,
    type: str,
    df: str | None,
    level: float,
    regrid: str | None,
    ci_kind: str,
    trend: str | None = None,
    delta_var: float | None = None,
) -> EmmGrid:
    check_fit(fit, "emtrends" if trend is not None else "emmeans")
    check_type(type)
    level = _check_level(level)
    if ci_kind not in CI_KINDS:
        raise ArgumentError(f"ci_kind must be 'hdi' or 'eti', not {ci_kind!r}")
    if regrid not in (None, "response", "none"):
        raise ArgumentError(f"regrid must be None or 'response', not {regrid!r}")
    pri_names, by_names = parse_specs(specs, by)
    rg = reference_grid(fit, at)
    variables = list(rg.variables)
    overall = pri_names == ["1"]
    spec_vars = [] if overall else [find_variable(variables, n, "specs", fit) for n in pri_names]
    by_vars = [find_variable(variables, n, "by", fit) for n in by_names]
    if len({v.label for v in spec_vars + by_vars}) < len(spec_vars + by_vars):
        raise ArgumentError(f"specs {specs!r} and by {by!r} name a variable twice")
    basis = fit_basis(fit, df)
    design = fit.design
    X = design.fixed_matrix(rg.data)

    nonest = nonestimable_basis(fit)
    X_full = full_matrix(fit, rg.data) if nonest is not None else None
    # emmeans 1.8 reduces the offset like a covariate: the mean of the fitting rows' offsets, whatever the grid
    off = np.full(len(rg.data), 0.0 if design.offset is None else float(np.mean(design.offset)))
    scale = basis.scale
    est_name = "emmean"
    if trend is not None:
        var = find_variable(variables, trend, "var", fit)
        if var.kind != "numeric":
            raise ArgumentError(f"emtrends: var '{var.name}' is a factor; trends need a numeric variable")
        x = np.asarray(var.data, dtype=float)
        h = delta_var if delta_var is not None else 0.001 * float(np.ptp(x))
        if not h > 0:
            raise DataError(f"emtrends: '{var.name}' takes a single value in the data; there is no trend to estimate")
        shifted = rg.data.copy()
        shifted[var.label] = shifted[var.label].astype(float) + h
        X = (design.fixed_matrix(shifted) - X) / h
        if X_full is not None:
            X_full = (full_matrix(fit, shifted) - X_full) / h
        off = np.zeros(len(rg.data))
        scale = None
        est_name = f"{var.name}.trend"
    if regrid == "response":
        if basis.bayes or scale is not None:
            basis = regridded(replace(basis, scale=scale), X, off)
        X = np.eye(len(rg.data))
        X_full, nonest = None, None
        off = np.zeros(len(rg.data))
        scale = None
        est_name = basis.label
    spec_all = spec_vars + by_vars
    A, labels = _combine(rg, spec_all)
    L = A @ X
    L_full = None if X_full is None else A @ X_full
    offset = A @ off
    in_specs = {v.label for v in spec_all}
    averaged = [v for v in variables if v.label not in in_specs and len(rg.values[v.label]) > 1]
    messages: list[str] = []
    notes = list(basis.messages)
    if trend is not None:
        averaged = [v for v in averaged if v.name != str(trend)]
    if averaged:
        messages.insert(0, f"Results are averaged over the levels of: {', '.join(v.name for v in averaged)}")
        note = _interaction_note(fit, spec_all, [v for v in averaged if v.kind == "factor"])
        if note:
            notes.append(note)
    numeric = tuple(v.name for v in spec_vars if v.kind == "numeric" or all(_is_number(x) for x in rg.labels(v)))
    return EmmGrid(
        basis=basis, linfct=L, offset=offset, labels=labels,
        pri=tuple(labels.columns[: len(labels.columns) - len(by_vars)]), by=tuple(v.name for v in by_vars),
        numeric=numeric, scale=scale, type=type, est_name=est_name, est_type="prediction",
        fam_size=0, adjust="none", level=level, ci_kind=ci_kind, messages=tuple(messages), notes=tuple(notes),
        linfct_full=L_full, nonest=nonest,
    )  # fmt: skip


def _is_number(x: Any) -> bool:
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True


def emmeans(
    fit: MixedFit,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    at: Mapping[Hashable, Any] | None = None,
    type: str = "link",
    df: str | None = None,
    level: float = 0.95,
    regrid: str | None = None,
    ci_kind: str = "hdi",
) -> EmmeansTable:
    """Estimated marginal means of one-sided ``specs`` (the engine of :func:`hierbayes.emmeans`, which documents
    the arguments and adds R's two-sided specs and spellings).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> emmeans(fit, "period", type="response")["prob"].round(3).tolist()
    [0.198, 0.084, 0.074, 0.048]
    """
    grid = _grid_for(fit, specs, by, at, type, df, level, regrid, ci_kind)
    return make_table(grid, _summary_frame(grid, intervals=True, tests=False))


def emtrends(
    fit: MixedFit,
    specs: str | Sequence[str],
    var: str,
    by: str | Sequence[str] | None = None,
    at: Mapping[Hashable, Any] | None = None,
    df: str | None = None,
    level: float = 0.95,
    delta_var: float | None = None,
    ci_kind: str = "hdi",
) -> EmmeansTable:
    """Estimated marginal trends of one-sided ``specs`` (the engine of :func:`hierbayes.emtrends`, documented there).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> emtrends(fit, "1", var="Days")["Days.trend"].round(4).tolist()
    [10.4673]
    """
    grid = _grid_for(fit, specs, by, at, "link", df, level, None, ci_kind, trend=var, delta_var=delta_var)
    return make_table(grid, _summary_frame(grid, intervals=True, tests=False))
