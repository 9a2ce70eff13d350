"""Predictions, comparisons and slopes of several fits in one figure (bambi's ``plot_predictions`` and kin).

Each function computes :func:`hierbayes.predictions` (or ``comparisons``,
``slopes``) for every fit with the same arguments and draws them together,
one colour per fit (REML and Bayes side by side):

* the first ``conditional`` variable (or the first ``average_by`` one) is on
  the x axis: a line with an interval band when it is numeric, points with
  interval bars (fits side by side) when it is a factor;
* a second variable gives one panel per value (bambi colours it instead;
  here colour is the fit's);
* comparisons get one panel per compared pair (``value``), with a reference
  line at no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hierbayes.errors import ArgumentError
from hierbayes.fits.base import MixedFit
from hierbayes.interpret import comparisons as interpret_comparisons
from hierbayes.interpret import predictions as interpret_predictions
from hierbayes.interpret import slopes as interpret_slopes
from hierbayes.interpret.scale import fit_scale
from hierbayes.plots.style import SMALL, PlotSetup, plot_setup

MAX_PANELS = 24


def _names(spec: Any) -> list[str]:
    if spec is None or spec is False:
        return []
    if isinstance(spec, str):
        return [] if spec == "all" else [spec]
    if isinstance(spec, dict):
        return [str(k) for k in spec]
    return [str(s) for s in spec]


def _layout(conditional: Any, average_by: Any, what: str) -> tuple[str | None, str | None]:
    """The x-axis variable and the panel variable."""
    names = _names(conditional) if conditional is not None else _names(average_by)
    if conditional is None and average_by is None:
        raise ArgumentError(f"{what}: give conditional= (the variables to plot) or average_by=")
    if len(names) > 2:
        raise ArgumentError(
            f"{what}: at most two variables can be plotted (x axis and panels), got {len(names)}: {', '.join(names)}; "
            "average over the others with average_by"
        )
    return (names[0] if names else None), (names[1] if len(names) > 1 else None)


def _draw(ax: Axes, frame: pd.DataFrame, x: str | None, style, offset: float, positions: dict | None,
          label: str) -> None:  # fmt: skip
    est, lo, hi = (frame[c].to_numpy(float) for c in ("estimate", "lower", "upper"))
    if x is not None and positions is None:
        xv = frame[x].to_numpy(float)
        order = np.argsort(xv, kind="stable")
        ax.plot(xv[order], est[order], color=style.color, lw=1.8, label=label)
        ax.fill_between(xv[order], lo[order], hi[order], color=style.color, alpha=0.15, lw=0)
        for edge in (lo, hi):  # the band's edges, so overlapping bands stay readable
            ax.plot(xv[order], edge[order], color=style.color, lw=0.7, alpha=0.7, ls="--")
        return
    pos = np.zeros(len(frame)) if x is None else np.array([positions[v] for v in frame[x].astype(str)])
    ax.errorbar(pos + offset, est, yerr=[est - lo, hi - est], fmt=style.marker, color=style.color, ms=5, capsize=3,
                lw=1.4, label=label)  # fmt: skip


def _is_numeric(frames: list[pd.DataFrame], x: str | None) -> bool:
    return x is not None and all(pd.api.types.is_numeric_dtype(f[x]) for f in frames)


def _figure(
    frames: list[pd.DataFrame],
    fits: list[MixedFit],
    styles,
    x: str | None,
    panel: str | None,
    ylabel: str,
    title: str,
    ax: Axes | Sequence[Axes] | None,
    reference: float | None = None,
) -> Figure:
    levels = list(dict.fromkeys(v for f in frames for v in f[panel].astype(str))) if panel else [None]
    if len(levels) > MAX_PANELS:
        raise ArgumentError(f"'{panel}' has {len(levels)} values: too many panels (at most {MAX_PANELS}); give fewer")
    n = len(levels)
    ncols = min(n, 4)
    cats = None if _is_numeric(frames, x) else len({v for f in frames for v in (f[x] if x else [0])})
    width = 4.2 if n > 1 else max(6.0, 0.35 * (cats or 0) * len(fits) + 2.5)
    fig, axes = PlotSetup(fits, styles).figure(n, width, 3.4, ax=ax, ncols=ncols)
    numeric = _is_numeric(frames, x)
    positions = None
    if not numeric:
        cats = list(dict.fromkeys(v for f in frames for v in (f[x].astype(str) if x else ["all"])))
        positions = {c: i for i, c in enumerate(cats)}
    m = len(fits)
    offsets = (np.arange(m) - (m - 1) / 2) * (0.8 / max(m, 1)) * 0.6
    for a, level in zip(axes, levels, strict=True):
        for j, (frame, st) in enumerate(zip(frames, styles, strict=True)):
            sub = frame if level is None else frame[frame[panel].astype(str) == level]
            if len(sub):
                _draw(a, sub, x, st, 0.0 if numeric else offsets[j], positions, st.label)
        if reference is not None:
            a.axhline(reference, color="0.6", lw=0.8, zorder=0)
        if positions is not None:
            longest = max(len(c) for c in positions)
            rotation = 90 if len(positions) * max(longest, 3) > 40 else 30 if longest > 6 else 0
            a.set_xticks(list(positions.values()), list(positions), fontsize=SMALL + 1, rotation=rotation)
            a.set_xlim(-0.6, len(positions) - 0.4)
        a.set_xlabel(x or "", fontsize=SMALL + 1)
        a.set_ylabel(ylabel, fontsize=SMALL + 1)
        a.tick_params(labelsize=SMALL)
        a.grid(axis="y", color="0.92")
        if level is not None:
            a.set_title(f"{panel} = {level}", fontsize=SMALL + 2)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)), fontsize=SMALL + 1,
                   frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return fig


def _interval_label(fit: MixedFit, style, level: float, kind: str, ci_kind: str) -> str:
    """The legend entry: the fit and its interval, e.g. ``REML (95% CI)``, ``Bayes (95% ETI)``."""
    if getattr(fit, "method", "") == "bayes":
        what = ci_kind.upper() + (", predictive" if kind == "prediction" else "")
    else:
        what = "PI" if kind == "prediction" else "CI"
    return f"{style.label} ({100 * level:g}% {what})"


def _relabel(fits, styles, level: float, kind: str, kwargs: dict) -> list:
    ci_kind = kwargs.get("ci_kind", "eti")
    return [s.__class__(_interval_label(f, s, level, kind, ci_kind), s.engine, s.color, s.marker)
            for f, s in zip(fits, styles, strict=True)]  # fmt: skip


def _quantity(fit: MixedFit, type: str) -> str:
    """What the y axis measures: the response's name, a probability, a rate, or the link."""

    scale = fit_scale(fit)
    if type == "link" and not scale.is_identity:
        return f"linear predictor ({scale.name})"
    return {"prob": "probability", "rate": "rate"}.get(scale.response_label, fit.design.response_name) if (
        scale.kind == "link" and not scale.is_identity) else fit.design.response_name  # fmt: skip


def _ylabel(fit: MixedFit, type: str, target: str, interval: str, what: str) -> str:
    quantity = _quantity(fit, type)
    if what == "predictions":
        kind = "new observation" if (target != "mean" or interval == "prediction") else "mean"
        return f"{quantity} ({kind})"
    return f"{what} of {quantity}"


def predictions(
    *fits: MixedFit,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | None = None,
    target: str = "mean",
    type: str = "response",
    interval: str = "confidence",
    level: float = 0.95,
    re_form: str | None = None,
    labels: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    **kwargs: Any,
) -> Figure:
    """Predictions of one or more fits against the conditional variables, with intervals.

    Parameters
    ----------
    *fits
        Fits of one model by any engines (``LmerFit``, ``GlmerFit``, ``PosteriorFit``).
    conditional, average_by, target, type, interval, level, re_form
        As in :func:`hierbayes.predictions`; one or two variables (x axis, panels).
    labels
        The fits' names in the legend (the engine's by default).
    ax
        Axes to draw on (one per panel); a new figure by default.
    **kwargs
        Passed to :func:`hierbayes.predictions` (``ci_kind``, ``nsim``, ``random_seed``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fig = hb.plots.predictions(fit, conditional="Days", re_form="~0")
    >>> fig.axes[0].get_lines()[0].get_label()
    'REML (95% CI)'
    """
    setup = plot_setup(fits, "predictions", labels)
    fits, styles = setup.fits, setup.styles
    x, panel = _layout(conditional, average_by, "predictions")
    compute = interpret_predictions
    frames = [compute(f, conditional=conditional, average_by=average_by, target=target, type=type, interval=interval,
                      level=level, re_form=re_form, **kwargs) for f in fits]  # fmt: skip
    kind = "prediction" if (target != "mean" or interval == "prediction") else "mean"
    styles = _relabel(fits, styles, level, kind, kwargs)
    title = f"Predictions: {fits[0].formula}" + ("" if re_form is None else f" (re_form = {re_form})")
    return _figure(frames, fits, styles, x, panel, _ylabel(fits[0], type, target, interval, "predictions"), title, ax)


def comparisons(
    *fits: MixedFit,
    contrast: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | None = None,
    comparison: str = "diff",
    type: str = "response",
    level: float = 0.95,
    re_form: str | None = None,
    labels: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    **kwargs: Any,
) -> Figure:
    """Comparisons of one or more fits (one panel per compared pair), against a conditional variable.

    Parameters are those of :func:`hierbayes.comparisons` and :func:`predictions`; the
    first ``conditional`` (or ``average_by``) variable is on the x axis. A reference line marks
    no difference (0 for ``"diff"`` and ``"lift"``, 1 for ``"ratio"``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> fig = hb.plots.comparisons(fit, contrast={"period": ["1", "4"]}, average_by="all", re_form="~0")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['1_vs_4']
    """
    setup = plot_setup(fits, "comparisons", labels)
    fits, styles = setup.fits, setup.styles
    x, panel = _layout(conditional, average_by, "comparisons")
    if panel is not None:
        raise ArgumentError("comparisons: plot one variable (the x axis); the compared pairs make the panels")
    compute = interpret_comparisons
    frames = [compute(f, contrast, conditional=conditional, average_by=average_by, comparison=comparison, type=type,
                      level=level, re_form=re_form, **kwargs) for f in fits]  # fmt: skip
    styles = _relabel(fits, styles, level, "mean", kwargs)
    term = frames[0]["term"].iloc[0]
    title = f"Comparisons of {term} ({comparison}): {fits[0].formula}"
    ref = 1.0 if comparison == "ratio" else 0.0
    # no variable to plot against: the compared pairs on the x axis; otherwise one panel per pair
    x_axis, panels = ("value", None) if x is None else (x, "value")
    return _figure(frames, fits, styles, x_axis, panels, _ylabel(fits[0], type, "mean", "confidence", comparison),
                   title, ax, reference=ref)  # fmt: skip


def slopes(
    *fits: MixedFit,
    wrt: str | dict,
    conditional: str | Sequence[str] | dict | None = None,
    average_by: str | Sequence[str] | None = None,
    slope: str = "dydx",
    type: str = "response",
    level: float = 0.95,
    re_form: str | None = None,
    labels: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    **kwargs: Any,
) -> Figure:
    """Slopes of one or more fits against the conditional variables (x axis, panels), with intervals.

    Parameters are those of :func:`hierbayes.slopes` and :func:`predictions`. A reference
    line marks a zero slope.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fig = hb.plots.slopes(fit, wrt="Days", conditional="Subject")
    >>> fig.axes[0].get_xlabel()
    'Subject'
    """
    setup = plot_setup(fits, "slopes", labels)
    fits, styles = setup.fits, setup.styles
    x, panel = _layout(conditional, average_by, "slopes")
    compute = interpret_slopes
    frames = [compute(f, wrt, conditional=conditional, average_by=average_by, slope=slope, type=type, level=level,
                      re_form=re_form, **kwargs) for f in fits]  # fmt: skip
    styles = _relabel(fits, styles, level, "mean", kwargs)
    term = frames[0]["term"].iloc[0]
    title = f"Slopes in {term} ({slope}): {fits[0].formula}"
    return _figure(frames, fits, styles, x, panel, _ylabel(fits[0], type, "mean", "confidence", slope), title, ax,
                   reference=0.0)  # fmt: skip
