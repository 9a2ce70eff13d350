"""Conditional and average predictions on the scale of the data, with intervals (bambi's ``interpret.predictions``).

``hb.predictions(fit, conditional=..., average_by=...)`` has bambi 0.21's
meanings:

* ``conditional=None``: a prediction for every row the model was fitted to
  ("unit level"); ``average_by`` then averages them within the levels of the
  variables named (``"all"``: over every row);
* ``conditional="x"``, ``["x", "g"]`` or ``{"x": [..], "g": [..]}``: a grid of
  those variables (at the values given, or at bambi's defaults: every level
  of a factor, every distinct value of an integer column, 50 values from the
  minimum to the maximum of a float column), crossed (first variable
  slowest), with every other variable of the model at its typical value (the
  mean of a float column, the mode of an integer column or a factor);
* ``target="mean"``: the expected response; the response's name (or
  ``interval="prediction"``): a new observation;
* grouping factors are variables like the others: with ``re_form=None``
  (lme4's: condition on every random effect) a grid row predicts for the
  typical (modal) level, as bambi does; ``re_form="~0"`` (or ``"NA"``)
  predicts at the population level and leaves the grouping factors out of the grid.

Intervals: for REML/ML and GLMM fits the delta method on the fixed effects
(conditional on the random effects' modes), normal quantiles, on the link
scale mapped through the inverse link for single rows and on the scale of the
estimate for averages (``std_error`` is given); prediction intervals of an
``LmerFit`` by simulation (:mod:`hierbayes.interpret.intervals`). For a
posterior, equal-tailed (``ci_kind="eti"``, hierbayes' default) or
highest-density (``"hdi"``, bambi's default) intervals of the draws; the
estimate is the posterior mean. ``average_by`` averages the quantity (each
draw, or the estimate and its gradient) and then summarises it, so an
average gets the interval of the average. (bambi 0.21 averages the rows'
interval bounds instead; the estimates agree.)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import is_float_dtype, is_integer_dtype
from scipy import stats

from hierbayes.design.names import r_label, r_labels
from hierbayes.design.newdata import included_terms
from hierbayes.errors import ArgumentError, DataError
from hierbayes.fits.posterior import PosteriorFit
from hierbayes.interpret.basis import check_fit
from hierbayes.interpret.grid import Variable, check_values, find_variable, model_variables
from hierbayes.interpret.intervals import linear_rows, posterior_new_groups, simulate_new
from hierbayes.interpret.scale import fit_scale

if TYPE_CHECKING:
    from hierbayes.fits.base import MixedFit

CI_KINDS = ("eti", "hdi")
N_FLOAT_GRID = 50


# --------------------------------------------------------------------------------------------------------------------
# values of the variables (bambi's defaults)
# --------------------------------------------------------------------------------------------------------------------
def _numeric_kind(v: Variable) -> str:
    dtype = v.data.dtype
    if is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return "integer"
    if is_float_dtype(dtype):
        return "float"
    return "float"


def typical(v: Variable) -> Any:
    """bambi's default value of a variable not in the grid: mean of a float column, mode otherwise."""
    if v.kind == "factor":
        counts = pd.Series(_level_codes(v)).value_counts()
        best = counts[counts == counts.max()].index.min()
        return v.levels[int(best)]
    if _numeric_kind(v) == "integer":
        return _mode(v.data)
    return v.mean


def _level_codes(v: Variable) -> np.ndarray:

    labels = np.asarray(r_labels(v.data.to_numpy(dtype=object)), dtype=object)
    index = {lab: i for i, lab in enumerate(v.labels)}
    return np.array([index[x] for x in labels])


def _mode(data: pd.Series) -> Any:
    m = data.mode()
    return m.iloc[0].item() if hasattr(m.iloc[0], "item") else m.iloc[0]


def conditional_values(v: Variable) -> list:
    """bambi's default values of a conditional variable."""
    if v.kind == "factor":
        return list(v.levels)
    if _numeric_kind(v) == "integer":
        return [x.item() if hasattr(x, "item") else x for x in pd.unique(v.data)]
    x = np.asarray(v.data, dtype=float)
    return list(np.linspace(x.min(), x.max(), N_FLOAT_GRID))


def contrast_values(v: Variable) -> list:
    """bambi's default values of a contrast variable: every level, mean -+ 0.5 (float), mode -+ 1 (integer)."""
    if v.kind == "factor":
        return list(v.levels)
    if _numeric_kind(v) == "integer":
        m = _mode(v.data)
        return [m - 1, m + 1]
    m = v.mean
    return [m - 0.5, m + 0.5]


def slope_point(v: Variable) -> float:
    """bambi's default point of a slope: the mean of a float column, the mode of an integer one."""
    if v.kind == "factor":
        raise ArgumentError(f"slopes need a numeric variable; '{v.name}' is a factor (use hb.comparisons)")
    return float(_mode(v.data)) if _numeric_kind(v) == "integer" else v.mean


def user_values(v: Variable, values: Any, what: str) -> list:
    """Values a user gives for a variable (levels of a factor, numbers of a numeric one), order kept."""
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
        values = [values]
    vals = list(values.tolist() if isinstance(values, (np.ndarray, pd.Series, pd.Index)) else values)
    if not vals:
        raise DataError(f"{what}: no values given for '{v.name}'")
    out = check_values(v, vals, what)
    if v.kind == "numeric" and _numeric_kind(v) == "integer" and all(float(x).is_integer() for x in out):
        out = [int(x) for x in out]
    return out


# --------------------------------------------------------------------------------------------------------------------
# quantities at rows
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantity:
    """A quantity at each row: draws (posterior or simulated), or an estimate with its gradient in beta.

    Attributes
    ----------
    draws
        (S, n) draws, or None.
    est
        (n,) point values (the plug-in estimate; for draws the mean unless a plug-in is known).
    jac
        (n, p) gradient of ``est`` in the fixed effects (delta method), or None.
    eta, eta_jac
        For plain predictions on a transformed scale: the linear predictor and its gradient,
        so that single rows get intervals mapped through the inverse link.
    """

    draws: np.ndarray | None = None
    est: np.ndarray | None = None
    jac: np.ndarray | None = None
    eta: np.ndarray | None = None
    eta_jac: np.ndarray | None = None
    inverse: Callable | None = None

    def average(self, groups: list[np.ndarray]) -> Quantity:
        """The mean over the rows of each group (a new quantity with one row per group)."""
        if self.draws is not None:
            draws = np.stack([self.draws[:, g].mean(axis=1) for g in groups], axis=1)
            est = None if self.est is None else np.array([self.est[g].mean() for g in groups])
            return Quantity(draws=draws, est=est)
        est = np.array([self.est[g].mean() for g in groups])
        jac = np.stack([self.jac[g].mean(axis=0) for g in groups])
        return Quantity(est=est, jac=jac)

    def take(self, rows: np.ndarray) -> Quantity:
        def sub(a, axis=0):
            return None if a is None else np.take(a, rows, axis=axis)

        return Quantity(sub(self.draws, 1), sub(self.est), sub(self.jac), sub(self.eta), sub(self.eta_jac),
                        self.inverse)  # fmt: skip


def _target_kind(fit: MixedFit, target: str, interval: str) -> str:
    """``"mean"`` or ``"prediction"``."""
    if interval not in ("confidence", "prediction"):
        raise ArgumentError(f"interval must be 'confidence' or 'prediction', not {interval!r}")
    names = {fit.design.response_name, *map(str, _response_columns(fit)), "response"}
    if target == "mean":
        return "prediction" if interval == "prediction" else "mean"
    if isinstance(target, str) and target in names:
        return "prediction"
    raise ArgumentError(
        f"target must be 'mean' (the expected response) or the response, {fit.design.response_name!r} (new "
        f"observations), not {target!r}"
    )


def _response_columns(fit: MixedFit) -> list[Hashable]:
    fixed = set(fit.design.fixed_labels)
    blocks = {c for b in fit.design.blocks for c in b.columns}
    return [c.label for c in fit.design.columns if c.label not in fixed and c.label not in blocks]


def evaluate(
    fit: MixedFit,
    frame: pd.DataFrame,
    kind: str,
    type: str,
    re_form: Any,
    nsim: int,
    random_seed: int | None,
) -> Quantity:
    """The mean (or new observations) at the rows of ``frame`` on the ``type`` scale."""

    scale = fit_scale(fit)
    back = type == "response" and not scale.is_identity
    if isinstance(fit, PosteriorFit):
        if kind == "prediction":
            if fit.model.family.has_trials:
                raise ArgumentError(
                    "new observations of a binomial model need their numbers of trials; predict the mean "
                    "(target='mean'), a probability"
                )
            data, form, policy = posterior_new_groups(fit, frame, re_form, "error")
            da = fit.predict(data, re_form=form, new_levels=policy, kind="predictive", random_seed=random_seed)
            draws = np.asarray(da.values, dtype=float).reshape(-1, len(frame))
            if back and scale.kind == "response":  # new observations of a transformed response, back-transformed
                draws = scale.inverse(draws)
            return Quantity(draws=draws, est=draws.mean(axis=0))
        link_scale = "link" if (type == "link" or scale.kind == "response") else "response"
        da = fit.predict(frame, re_form=re_form, kind="draws", scale=link_scale)
        draws = np.asarray(da.values, dtype=float).reshape(-1, len(frame))
        if back and scale.kind == "response":
            draws = scale.inverse(draws)
        return Quantity(draws=draws, est=draws.mean(axis=0))
    if kind == "prediction":
        sims = simulate_new(fit, frame, re_form, "error", nsim, random_seed)
        eta, _ = linear_rows(fit, frame, re_form, "error")
        if back:
            sims, eta = scale.inverse(sims), scale.inverse(eta)
        return Quantity(draws=sims, est=eta)
    eta, X = linear_rows(fit, frame, re_form, "error")
    if not back:
        return Quantity(est=eta, jac=X)
    d = scale.mu_eta(eta)
    return Quantity(est=scale.inverse(eta), jac=d[:, None] * X, eta=eta, eta_jac=X, inverse=scale.inverse)


def summarise(fit: MixedFit, q: Quantity, level: float, ci_kind: str) -> pd.DataFrame:
    """estimate, (std_error,) lower, upper of each row of a quantity."""
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    if q.draws is not None:
        est = q.draws.mean(axis=0) if (_is_bayes(fit) or q.est is None) else q.est
        if ci_kind == "hdi":
            from arviz_stats.base import array_stats  # ArviZ only for HDIs: import hierbayes stays light

            hdi = np.asarray(array_stats.hdi(q.draws, level, axis=0))
            lo, hi = hdi[..., 0], hdi[..., 1]
        else:
            lo, hi = np.quantile(q.draws, [lo_q, hi_q], axis=0)
        return pd.DataFrame({"estimate": est, "lower": lo, "upper": hi})
    V = fit.vcov.to_numpy()
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", q.jac, V, q.jac), 0.0))
    z = stats.norm.ppf(hi_q)
    if q.eta is not None:
        se_eta = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", q.eta_jac, V, q.eta_jac), 0.0))
        a, b = q.inverse(q.eta - z * se_eta), q.inverse(q.eta + z * se_eta)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
    else:
        lo, hi = q.est - z * se, q.est + z * se
    return pd.DataFrame({"estimate": q.est, "std_error": se, "lower": lo, "upper": hi})


def _is_bayes(fit: MixedFit) -> bool:
    return getattr(fit, "method", "") == "bayes"


# --------------------------------------------------------------------------------------------------------------------
# grids and averaging
# --------------------------------------------------------------------------------------------------------------------
def grid_variables(fit: MixedFit, re_form: Any) -> list[Variable]:
    """The variables a prediction needs: the fixed part's, and the grouping and slope variables of the random
    terms ``re_form`` keeps."""

    kept = included_terms(fit.design, re_form)
    wanted = set(fit.design.fixed_labels)
    for b in fit.design.blocks:
        if b.group in kept:
            wanted.update(b.columns)
    return [v for v in model_variables(fit, random=True) if v.label in wanted]


def resolve_conditional(variables: list[Variable], conditional: Any, fit: MixedFit) -> dict[Hashable, list]:
    """bambi's conditional variables with their values: a name, a list of names, or a dict of name -> values."""
    if conditional is None:
        return {}
    if isinstance(conditional, str):
        conditional = [conditional]
    if isinstance(conditional, dict):
        out = {}
        for name, values in conditional.items():
            v = find_variable(variables, name, "conditional", fit)
            out[v.label] = conditional_values(v) if values is None else user_values(v, values, "conditional")
        return out
    if isinstance(conditional, (list, tuple)):
        out = {}
        for name in conditional:
            v = find_variable(variables, name, "conditional", fit)
            out[v.label] = conditional_values(v)
        return out
    raise ArgumentError(
        f"conditional must be a variable name, a list of names or a dict of name -> values, not {conditional!r}"
    )


def product(values: dict[Hashable, list]) -> pd.DataFrame:
    """Every combination, the first variable slowest (bambi's ``create_grid``)."""
    if not values:
        return pd.DataFrame(index=pd.RangeIndex(1))
    idx = pd.MultiIndex.from_product([list(v) for v in values.values()], names=list(values))
    return idx.to_frame(index=False)


def build_grid(variables: list[Variable], chosen: dict[Hashable, list]) -> pd.DataFrame:
    """The chosen variables crossed, every other variable at its typical value."""
    values = dict(chosen)
    for v in variables:
        if v.label not in values:
            values[v.label] = [typical(v)]
    return product(values)


def unit_data(fit: MixedFit, variables: list[Variable]) -> pd.DataFrame:
    """The fitting rows' values of the variables (bambi's unit-level data)."""
    frame = fit.design.frame.data
    return frame[[v.label for v in variables]].reset_index(drop=True)


def display(frame: pd.DataFrame, variables: list[Variable]) -> pd.DataFrame:
    """Condition columns as users read them: a factor's level labels, numbers as numbers."""
    out = pd.DataFrame(index=frame.index)
    for v in variables:
        if v.label not in frame.columns:
            continue
        col = frame[v.label]
        if v.kind == "factor":
            index = {lv: lab for lv, lab in zip(v.levels, v.labels, strict=True)}

            out[v.name] = [index.get(x, r_label(x)) for x in col.tolist()]
        else:
            out[v.name] = col.to_numpy()
    return out


def average_groups(labels: pd.DataFrame, average_by: Any, keep: Sequence[str] = ()) -> tuple[list, pd.DataFrame]:
    """Row groups and their labels for bambi's ``average_by`` (a name, names, ``"all"``/True, or None)."""
    if average_by is None or average_by is False:
        return [np.array([i]) for i in range(len(labels))], labels
    if average_by is True or average_by == "all":
        by: list[str] = []
    elif isinstance(average_by, str):
        by = [average_by]
    elif isinstance(average_by, (list, tuple)):
        by = [str(b) for b in average_by]
    else:
        raise ArgumentError(f"average_by must be a variable name, a list of names, 'all' or None, not {average_by!r}")
    cols = list(dict.fromkeys([*keep, *by]))
    missing = [c for c in cols if c not in labels.columns]
    if missing:
        raise ArgumentError(
            f"average_by: {', '.join(map(repr, missing))} is not a variable of the predictions "
            f"(their variables: {', '.join(c for c in labels.columns if c not in keep)})"
        )
    if not cols:
        return [np.arange(len(labels))], pd.DataFrame(index=pd.RangeIndex(1))
    keys = pd.MultiIndex.from_frame(labels[cols])
    codes, uniques = pd.factorize(keys, sort=True)
    groups = [np.flatnonzero(codes == i) for i in range(len(uniques))]
    out = pd.DataFrame(list(uniques), columns=cols)
    return groups, out


def check_common(level: float, ci_kind: str, type: str) -> float:
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise ArgumentError(f"level must be a number in (0, 1), not {level!r}") from None
    if not 0 < level < 1:
        raise ArgumentError(f"level must be in (0, 1), not {level}")
    if ci_kind not in CI_KINDS:
        raise ArgumentError(f"ci_kind must be 'eti' (equal-tailed) or 'hdi' (highest density), not {ci_kind!r}")
    if type not in ("response", "link"):
        raise ArgumentError(f"type must be 'response' or 'link', not {type!r}")
    return level


def interval_note(fit: MixedFit, level: float, ci_kind: str, kind: str) -> str:
    what = "prediction" if kind == "prediction" else "confidence"
    if _is_bayes(fit):
        name = "highest-density" if ci_kind == "hdi" else "equal-tailed"
        source = "posterior predictive" if kind == "prediction" else "posterior"
        return f"{100 * level:g}% {name} {source} intervals ({ci_kind})"
    if kind == "prediction":
        return f"{100 * level:g}% prediction intervals by simulation"
    return f"{100 * level:g}% {what} intervals (delta method, normal quantiles)"


def predictions(
    fit: MixedFit,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    target: str = "mean",
    type: str = "response",
    interval: str = "confidence",
    level: float = 0.95,
    re_form: str | None = None,
    *,
    ci_kind: str = "eti",
    nsim: int = 1000,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Predictions at a grid of conditions (or at every fitted row), with intervals, for any engine.

    Parameters
    ----------
    fit
        An ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``.
    conditional
        Variables to condition on: a name, a list of names (bambi's default
        values), or a dict of name -> values; None for every row of the data.
    average_by
        Average the predictions within the levels of these variables (``"all"``: over everything).
    target
        ``"mean"`` (the expected response) or the response's name (a new observation).
    type
        ``"response"`` (the data's scale: probabilities, rates; a ``log(y)``
        response back-transformed) or ``"link"``.
    interval
        ``"confidence"`` (of the mean) or ``"prediction"`` (of a new observation, as ``target=<response>``).
    level
        Interval level.
    re_form
        Random effects to condition on: None (all, lme4's default; grouping
        factors at their modal level unless given), ``"~0"``/``"NA"`` (none), or a
        formula of bars.
    ci_kind
        For a posterior: ``"eti"`` (equal-tailed) or ``"hdi"`` (highest density, bambi's default).
    nsim, random_seed
        Simulations of new observations for prediction intervals of an ``LmerFit``.

    Returns
    -------
    pandas.DataFrame
        The condition columns, ``estimate``, ``std_error`` (REML/ML and GLMM
        fits, not for prediction intervals), ``lower``, ``upper``; the kind of
        interval in ``attrs["interval"]``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> p = hb.predictions(fit, conditional={"Days": [0, 9]}, re_form="~0")
    >>> p.round(2).values.tolist()
    [[0.0, 251.41, 6.82, 238.03, 264.78], [9.0, 345.61, 14.63, 316.94, 374.28]]
    """
    return predictions_with_draws(
        fit=fit,
        conditional=conditional,
        average_by=average_by,
        target=target,
        type=type,
        interval=interval,
        level=level,
        re_form=re_form,
        ci_kind=ci_kind,
        nsim=nsim,
        random_seed=random_seed,
    )[0]


def predictions_with_draws(
    fit: MixedFit,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    target: str = "mean",
    type: str = "response",
    interval: str = "confidence",
    level: float = 0.95,
    re_form: str | None = None,
    *,
    ci_kind: str = "eti",
    nsim: int = 1000,
    random_seed: int | None = None,
) -> tuple[pd.DataFrame, Quantity]:
    """:func:`predictions` with the quantity behind its table: draws (posterior or simulated), or estimates with
    their gradients in the fixed effects (one row per table row)."""
    check_fit(fit, "predictions")
    level = check_common(level, ci_kind, type)
    kind = _target_kind(fit, target, interval)
    variables = grid_variables(fit, re_form)
    chosen = resolve_conditional(variables, conditional, fit)
    frame = unit_data(fit, variables) if conditional is None else build_grid(variables, chosen)
    q = evaluate(fit, frame, kind, type, re_form, nsim, random_seed)
    labels = display(frame, variables)
    groups, labels = average_groups(labels, average_by)
    if average_by is not None and average_by is not False:
        q = q.average(groups)
    out = pd.concat([labels.reset_index(drop=True), summarise(fit, q, level, ci_kind)], axis=1)
    out.attrs["interval"] = interval_note(fit, level, ci_kind, kind)
    return out, q
