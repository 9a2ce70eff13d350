"""Comparisons and slopes of predictions (bambi's ``interpret.comparisons`` and ``interpret.slopes``).

``hb.comparisons(fit, contrast="x")`` predicts at each value of ``x`` (every
level of a factor; the mean -+ 0.5 of a float column; the mode -+ 1 of an
integer column; or the values given in ``{"x": [a, b]}``) with everything
else as in :func:`hierbayes.predictions` (a grid of ``conditional``, or every
fitted row), and compares every pair of values, later against earlier:
``"diff"`` (``y_b - y_a``), ``"ratio"`` (``y_b / y_a``) or ``"lift"``
(``(y_b - y_a) / y_a``). The pair is labelled ``"a_vs_b"`` in ``value``.

``hb.slopes(fit, wrt="x")`` is the derivative of the prediction in ``x`` by
bambi's forward difference ``(y(x + eps) - y(x)) / eps`` at the mean of a
float column or the mode of an integer one (or at ``{"x": value}``), as
``"dydx"``, or as an elasticity ``"eyex"`` (``dydx x / y``), ``"eydx"``
(``dydx / y``) or ``"dyex"`` (``dydx x``).

Intervals and ``average_by`` are those of :func:`hierbayes.predictions`: the
delta method (through the gradients of the compared predictions) for
REML/ML and GLMM fits, the draws for a posterior.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, DataError
from hierbayes.interpret.basis import check_fit
from hierbayes.interpret.grid import find_variable
from hierbayes.interpret.predictions import (
    Quantity,
    _target_kind,
    average_groups,
    build_grid,
    check_common,
    contrast_values,
    display,
    evaluate,
    grid_variables,
    interval_note,
    resolve_conditional,
    slope_point,
    summarise,
    unit_data,
    user_values,
)

if TYPE_CHECKING:
    from hierbayes.fits.base import MixedFit

COMPARISONS = ("diff", "ratio", "lift")
SLOPES = ("dydx", "eyex", "eydx", "dyex")


def _stacked_frames(fit, variables, focal, focal_values, conditional) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Rows to predict: one block per focal value (the grid, or the fitting rows, with the focal variable set).

    Returns the stacked frame, the context (the rows of one block, without the focal variable), and the block size.
    """
    others = [v for v in variables if v.label != focal.label]
    if conditional is None:
        base = unit_data(fit, others)
    else:
        chosen = resolve_conditional(others, conditional, fit)
        base = build_grid(others, chosen)
    blocks = [base.assign(**{"__focal__": val}) for val in focal_values]
    frame = pd.concat(blocks, ignore_index=True).rename(columns={"__focal__": focal.label})
    frame = frame[[v.label for v in variables if v.label in frame.columns]]
    context = base[[v.label for v in others if v.label in base.columns]].reset_index(drop=True)
    return frame, context, len(base)


def _combine(qa: Quantity, qb: Quantity, how: str) -> Quantity:
    """``how`` of b against a (draws one by one, or estimates with their gradients)."""
    if qa.draws is not None:
        a, b = qa.draws, qb.draws
        draws = b - a if how == "diff" else b / a if how == "ratio" else (b - a) / a
        est = None
        if qa.est is not None and qb.est is not None:
            ea, eb = qa.est, qb.est
            est = eb - ea if how == "diff" else eb / ea if how == "ratio" else (eb - ea) / ea
        return Quantity(draws=draws, est=est)
    a, b, ja, jb = qa.est, qb.est, qa.jac, qb.jac
    if how == "diff":
        return Quantity(est=b - a, jac=jb - ja)
    r = b / a
    jac = jb / a[:, None] - (b / a**2)[:, None] * ja
    return Quantity(est=r if how == "ratio" else r - 1.0, jac=jac)


def comparisons(
    fit: MixedFit,
    contrast: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    comparison: str = "diff",
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
    """Comparisons of predictions between values of one variable, for any engine (bambi's ``comparisons``).

    Parameters
    ----------
    fit
        An ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``.
    contrast
        The variable compared: a name (bambi's default values) or ``{name: [values]}`` (at least two).
    conditional, average_by, target, type, interval, level, re_form, ci_kind, nsim, random_seed
        As in :func:`hierbayes.predictions`.
    comparison
        ``"diff"``, ``"ratio"`` or ``"lift"``.

    Returns
    -------
    pandas.DataFrame
        ``term`` (the variable), ``estimate_type`` (the comparison), ``value``
        (``"a_vs_b"``), the condition columns, ``estimate``, ``std_error``
        (REML/ML and GLMM fits), ``lower``, ``upper``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> c = hb.comparisons(fit, {"period": ["1", "4"]}, average_by="all", re_form="~0")
    >>> c[["term", "value", "estimate"]].round(3).values.tolist()
    [['period', '1_vs_4', -0.15]]
    """
    return comparisons_with_draws(
        fit=fit,
        contrast=contrast,
        conditional=conditional,
        average_by=average_by,
        comparison=comparison,
        target=target,
        type=type,
        interval=interval,
        level=level,
        re_form=re_form,
        ci_kind=ci_kind,
        nsim=nsim,
        random_seed=random_seed,
    )[0]


def comparisons_with_draws(
    fit: MixedFit,
    contrast: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    comparison: str = "diff",
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
    """:func:`comparisons` with the quantity behind its table: draws (posterior or simulated), or estimates with
    their gradients in the fixed effects (one row per table row)."""
    check_fit(fit, "comparisons")
    level = check_common(level, ci_kind, type)
    if comparison not in COMPARISONS:
        raise ArgumentError(f"comparison must be one of {', '.join(COMPARISONS)}, not {comparison!r}")
    kind = _target_kind(fit, target, interval)
    variables = grid_variables(fit, re_form)
    if isinstance(contrast, dict):
        if len(contrast) != 1:
            raise ArgumentError(f"contrast takes one variable ({{name: values}}), got {len(contrast)}")
        name, values = next(iter(contrast.items()))
        focal = find_variable(variables, name, "contrast", fit)
        vals = user_values(focal, values, "contrast")
    elif isinstance(contrast, str):
        focal = find_variable(variables, contrast, "contrast", fit)
        vals = contrast_values(focal)
    else:
        raise ArgumentError(f"contrast must be a variable name or {{name: values}}, not {contrast!r}")
    if len(vals) < 2:
        why = "; the factor has a single level" if focal.kind == "factor" and len(focal.levels) < 2 else ""
        raise DataError(f"contrast: '{focal.name}' needs at least two values to compare, got {len(vals)} ({vals}){why}")
    if conditional is not None and _names(conditional) & {focal.name}:
        conditional = _drop(conditional, focal.name)
        conditional = conditional or None
    frame, context, m = _stacked_frames(fit, variables, focal, vals, conditional)
    q = evaluate(fit, frame, kind, type, re_form, nsim, random_seed)
    labels = _value_labels(focal, vals)
    pairs = [(i, j) for i in range(len(vals)) for j in range(i + 1, len(vals))]
    parts = [_combine(q.take(np.arange(i * m, (i + 1) * m)), q.take(np.arange(j * m, (j + 1) * m)), comparison)
             for i, j in pairs]  # fmt: skip
    order = np.array([(r, p) for r in range(m) for p in range(len(pairs))])  # each context row, then every pair
    q_all = _concat(parts)
    q_all = q_all.take(order[:, 1] * m + order[:, 0])
    others = [v for v in variables if v.label != focal.label]
    ctx = display(context, others).iloc[order[:, 0]].reset_index(drop=True)
    ctx.insert(0, "value", [f"{labels[i]}_vs_{labels[j]}" for i, j in (pairs[p] for p in order[:, 1])])
    groups, ctx = average_groups(ctx, average_by, keep=["value"])
    if average_by is not None and average_by is not False:
        q_all = q_all.average(groups)
    out = pd.concat([ctx.reset_index(drop=True), summarise(fit, q_all, level, ci_kind)], axis=1)
    out.insert(0, "estimate_type", comparison)
    out.insert(0, "term", focal.name)
    out.attrs["interval"] = interval_note(fit, level, ci_kind, kind)
    return out, q_all


def slopes(
    fit: MixedFit,
    wrt: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    slope: str = "dydx",
    eps: float = 1e-4,
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
    """Slopes of predictions in one numeric variable, for any engine (bambi's ``slopes``).

    Parameters
    ----------
    fit
        An ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``.
    wrt
        The variable: a name (at its mean, or its mode for an integer column)
        or ``{name: value}``.
    slope
        ``"dydx"``, ``"eyex"``, ``"eydx"`` or ``"dyex"``.
    eps
        Step of the forward difference.
    conditional, average_by, target, type, interval, level, re_form, ci_kind, nsim, random_seed
        As in :func:`hierbayes.predictions`.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``estimate_type``, ``value`` (where the slope is taken), the
        condition columns, ``estimate``, ``std_error`` (REML/ML and GLMM fits), ``lower``, ``upper``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> s = hb.slopes(fit, "Days", average_by="all", re_form="~0")
    >>> s[["term", "estimate_type", "estimate", "std_error"]].round(3).values.tolist()
    [['Days', 'dydx', 10.467, 1.546]]
    """
    return slopes_with_draws(
        fit=fit,
        wrt=wrt,
        conditional=conditional,
        average_by=average_by,
        slope=slope,
        eps=eps,
        target=target,
        type=type,
        interval=interval,
        level=level,
        re_form=re_form,
        ci_kind=ci_kind,
        nsim=nsim,
        random_seed=random_seed,
    )[0]


def slopes_with_draws(
    fit: MixedFit,
    wrt: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | bool | None = None,
    slope: str = "dydx",
    eps: float = 1e-4,
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
    """:func:`slopes` with the quantity behind its table: draws (posterior or simulated), or estimates with
    their gradients in the fixed effects (one row per table row)."""
    check_fit(fit, "slopes")
    level = check_common(level, ci_kind, type)
    if slope not in SLOPES:
        raise ArgumentError(f"slope must be one of {', '.join(SLOPES)}, not {slope!r}")
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ArgumentError(f"eps must be a positive number, not {eps!r}") from None
    if not eps > 0:
        raise ArgumentError(f"eps must be a positive number, not {eps!r}")
    kind = _target_kind(fit, target, interval)
    variables = grid_variables(fit, re_form)
    if isinstance(wrt, dict):
        if len(wrt) != 1:
            raise ArgumentError(f"wrt takes one variable ({{name: value}}), got {len(wrt)}")
        name, value = next(iter(wrt.items()))
        focal = find_variable(variables, name, "wrt", fit)
        if focal.kind == "factor":
            raise ArgumentError(f"slopes need a numeric variable; '{focal.name}' is a factor (use hb.comparisons)")
        x0 = user_values(focal, [value], "wrt")[0] if np.ndim(value) == 0 else None
        if x0 is None:
            raise ArgumentError(f"wrt: give one value of '{focal.name}', not {value!r}")
        x0 = float(x0)
    elif isinstance(wrt, str):
        focal = find_variable(variables, wrt, "wrt", fit)
        x0 = slope_point(focal)
    else:
        raise ArgumentError(f"wrt must be a variable name or {{name: value}}, not {wrt!r}")
    if conditional is not None and _names(conditional) & {focal.name}:
        raise ArgumentError(f"'{focal.name}' is the slope's variable; it cannot also be conditional")
    frame, context, m = _stacked_frames(fit, variables, focal, [x0, x0 + eps], conditional)
    frame[focal.label] = frame[focal.label].astype(float)
    q = evaluate(fit, frame, kind, type, re_form, nsim, random_seed)
    q0, q1 = q.take(np.arange(m)), q.take(np.arange(m, 2 * m))
    d = _combine(q0, q1, "diff")
    d = Quantity(draws=None if d.draws is None else d.draws / eps, est=None if d.est is None else d.est / eps,
                 jac=None if d.jac is None else d.jac / eps)  # fmt: skip
    d = _scaled(d, q0, x0, slope)
    others = [v for v in variables if v.label != focal.label]
    ctx = display(context, others).reset_index(drop=True)
    groups, ctx = average_groups(ctx, average_by)
    if average_by is not None and average_by is not False:
        d = d.average(groups)
    out = pd.concat([ctx.reset_index(drop=True), summarise(fit, d, level, ci_kind)], axis=1)
    out.insert(0, "value", x0)
    out.insert(0, "estimate_type", slope)
    out.insert(0, "term", focal.name)
    out.attrs["interval"] = interval_note(fit, level, ci_kind, kind)
    return out, d


def _scaled(d: Quantity, y: Quantity, x: float, slope: str) -> Quantity:
    """bambi's slope types from the derivative ``d`` and the prediction ``y`` at x."""
    if slope == "dydx":
        return d
    if d.draws is not None:
        yd = y.draws
        draws = d.draws * x / yd if slope == "eyex" else d.draws / yd if slope == "eydx" else d.draws * x
        est = None
        if d.est is not None and y.est is not None:
            est = d.est * x / y.est if slope == "eyex" else d.est / y.est if slope == "eydx" else d.est * x
        return Quantity(draws=draws, est=est)
    if slope == "dyex":
        return Quantity(est=d.est * x, jac=d.jac * x)
    f = x if slope == "eyex" else 1.0
    est = f * d.est / y.est
    jac = f * (d.jac / y.est[:, None] - (d.est / y.est**2)[:, None] * y.jac)
    return Quantity(est=est, jac=jac)


def _concat(parts: list[Quantity]) -> Quantity:
    def cat(name, axis):
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else np.concatenate(vals, axis=axis)

    return Quantity(draws=cat("draws", 1), est=cat("est", 0), jac=cat("jac", 0))


def _value_labels(focal, vals: list) -> list[str]:
    if focal.kind == "factor":
        return [focal.labels[focal.levels.index(v)] for v in vals]
    return [str(v) for v in vals]


def _names(conditional: Any) -> set[str]:
    if isinstance(conditional, str):
        return {conditional}
    if isinstance(conditional, dict):
        return {str(k) for k in conditional}
    return {str(c) for c in conditional}


def _drop(conditional: Any, name: str) -> Any:
    if isinstance(conditional, str):
        return None if conditional == name else conditional
    if isinstance(conditional, dict):
        return {k: v for k, v in conditional.items() if str(k) != name}
    return [c for c in conditional if str(c) != name]
