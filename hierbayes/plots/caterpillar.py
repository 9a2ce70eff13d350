"""Caterpillar plot: each level's random effects, sorted, with intervals.

The picture of lme4's ``dotplot(ranef(m, condVar = TRUE))``, for REML and Bayes fits together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from hierbayes.fits.base import MixedFit
from hierbayes.plots.style import SMALL, plot_setup, thin_labels
from hierbayes.tables.params import ranef_table
from hierbayes.tables.pooling import pooling_block

#: label every level up to this many; beyond it, about this many evenly spaced labels
MAX_LABELS = 40


def caterpillar(
    *fits: MixedFit,
    group: str | None = None,
    terms: Sequence[str] | None = None,
    prob: float = 0.95,
    labels: Sequence[str] | None = None,
    max_labels: int = MAX_LABELS,
    extremes: int | None = None,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Random effects of one grouping factor, one panel per term, levels sorted, with intervals.

    REML/ML/GLMM fits show conditional modes +- z conditional SDs (lme4's
    ``condVar``); posterior fits show posterior means with equal-tailed
    credible intervals. Several fits are drawn side by side on each level's
    row, each in its engine's colour. Levels are sorted by the first fit's
    estimate of the first term, the same order in every panel, with a line
    at zero (as lme4's ``dotplot.ranef.mer``). With many levels the tick
    labels are thinned (``max_labels``), or ``extremes=k`` draws only the k
    lowest and k highest levels, every one labelled.

    Parameters
    ----------
    *fits
        Fits of the same model (REML and/or Bayes).
    group
        Grouping factor; default the one with the most levels.
    terms
        Terms to draw (default all of the factor's terms).
    prob
        Interval probability.
    labels
        Fit names for the legend.
    max_labels
        Levels beyond this number get about this many evenly spaced tick labels.
    extremes
        Draw only this many levels at each end of the order (lowest and
        highest), separated by a dashed line; all levels when None or when
        there are no more than ``2 * extremes``.
    ax
        Axes to draw on, one per term.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fig = hb.plots.caterpillar(fit)
    >>> [a.get_title() for a in fig.axes]
    ['(Intercept)', 'Days']
    """
    setup = plot_setup(fits, "caterpillar", labels, same_data=True)
    fits, styles = setup.fits, setup.styles
    block = pooling_block(fits[0].design, group)
    terms = list(block.terms) if terms is None else list(terms)
    unknown = [t for t in terms if t not in block.terms]
    if unknown:
        raise ValueError(f"'{block.group}' has no random-effect term(s) {unknown}; it has {list(block.terms)}")
    tables = [ranef_table(f, block.group, prob) for f in fits]
    first = tables[0][tables[0]["term"] == terms[0]].set_index("level")["estimate"]
    order = list(first.sort_values(kind="stable").index)
    total = len(order)
    if extremes is not None:
        if isinstance(extremes, bool) or not isinstance(extremes, int | np.integer) or extremes < 1:
            raise ValueError(f"extremes must be a whole number >= 1 or None, not {extremes!r}")
        if 2 * extremes < total:
            order = order[:extremes] + order[-extremes:]
        else:
            extremes = None
    pos = {lvl: i for i, lvl in enumerate(order)}
    nlev = len(order)
    height = float(np.clip(0.22 * nlev + 1.4, 3.0, 14.0)) if nlev <= 60 else float(np.clip(0.07 * nlev, 8.0, 14.0))
    fig, axes = setup.figure(len(terms), max(4.2, 7.0 / len(terms)), height, ax=ax)
    m = len(fits)
    dodge = 0.0 if m == 1 else min(0.5, 0.8 / m)
    small = nlev > 60
    for a, term in zip(axes, terms, strict=True):
        for j, (table, st) in enumerate(zip(tables, styles, strict=True)):
            t = table[(table["term"] == term) & table["level"].isin(pos)]
            y = np.array([pos[lvl] for lvl in t["level"]], dtype=float) + (j - (m - 1) / 2) * dodge
            est = t["estimate"].to_numpy()
            err = np.vstack([est - t["conf.low"].to_numpy(), t["conf.high"].to_numpy() - est])
            a.errorbar(est, y, xerr=err, fmt=st.marker, color=st.color, ms=2.5 if small else 4,
                       elinewidth=0.7 if small else 1.1, capsize=0, label=st.label)  # fmt: skip
        a.axvline(0.0, color="0.45", lw=0.9, zorder=0, label="_zero")  # lme4's dotplot line at zero
        if extremes is not None:
            a.axhline(extremes - 0.5, color="0.5", lw=0.8, ls="--", label="_gap")
        a.set_title(term)
        a.set_ylim(-0.8, nlev - 0.2)
        a.set_xlabel(f"random effect ({100 * prob:g}% interval)")
        a.grid(axis="x", color="0.92")
        if a is axes[0]:
            thin_labels(a, np.arange(nlev), order, max_labels)
            shown = f"{nlev} levels" if extremes is None else f"the {extremes} lowest and highest of {total} levels"
            a.set_ylabel(f"{block.group} ({shown}, sorted by {styles[0].label} {terms[0]})", fontsize=9)
        else:
            a.set_yticks(np.arange(nlev), [])
    if m > 1 or ax is None:
        axes[0].legend(loc="lower right", fontsize=SMALL, frameon=True)
    if ax is None:
        how = "\n".join(_how(st.engine, st.label, prob) for st in styles)
        fig.suptitle(f"Random effects of {block.group}\n{how}", fontsize=10)
    return fig


def _how(eng: str, label: str, prob: float) -> str:
    if eng == "bayes":
        return f"{label} posterior mean, {100 * prob:g}% CrI"
    return f"{label} conditional mode ± {_z(prob):.2f} conditional SD"


def _z(prob: float) -> float:

    return float(stats.norm.ppf(0.5 + prob / 2))
