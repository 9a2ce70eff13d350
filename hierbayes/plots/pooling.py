"""Pooling plot: the data of each group with its complete, no and partial pooling lines.

The figures of Barr's *Learning Statistical Models Through Simulation in R* (ch. 5) for sleep2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from hierbayes.errors import ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.plots.style import COMPLETE_POOLING_COLOR, DATA_COLOR, NO_POOLING_COLOR, SMALL, plot_setup
from hierbayes.tables.pooling import COMPLETE, NONE, coefficient_terms, partial_label, pooling, pooling_block

INTERCEPT = "(Intercept)"


def pooling_plot(
    *fits: MixedFit,
    group: str | None = None,
    levels: Sequence[str] | None = None,
    max_panels: int = 20,
    ncols: int | None = None,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Small multiples, one per level: the data with complete, no and partial pooling lines.

    For a model with one continuous predictor, e.g. ``Reaction ~ Days + (Days | Subject)``
    or ``mathach ~ cses + (1 | school)``. Every panel shows the level's rows, the
    single complete-pooling line (``lm`` ignoring groups), the level's
    no-pooling line (its own least squares) and each fit's partial-pooling
    line (its ``coef``), in the engine's colour.

    Parameters
    ----------
    *fits
        Fits of one model and data (REML and/or Bayes).
    group
        Grouping factor; default the one with the most levels.
    levels
        Levels to draw; default all when there are at most ``max_panels``,
        else ``max_panels`` levels spread over the range of group sizes
        (smallest to largest, where shrinkage differs most).
    max_panels
        Largest number of panels drawn when ``levels`` is not given.
    ncols
        Panels per row (default about 1.5 times as many columns as rows, up to 6).
    labels
        Fit names.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ days_deprived + (days_deprived | Subject)", hb.datasets.load("sleep2"))
    >>> fig = hb.plots.pooling(fit)
    >>> len([a for a in fig.axes if a.get_visible()])
    18
    """
    setup = plot_setup(fits, "pooling plot", labels)
    fits, styles = setup.fits, setup.styles
    design = fits[0].design
    block = pooling_block(design, group)
    predictor, xvals = _predictor(design, block)
    table = pooling(*fits, group=block.group, labels=labels)
    chosen = _choose_levels(table, levels, max_panels)
    npan = len(chosen)
    ncols = ncols or int(min(6, max(1, np.ceil(np.sqrt(npan * 1.5)))))
    nrows = int(np.ceil(npan / ncols))
    fig, axes = setup.figure(npan, 2.3, 2.0 + 1.0 / nrows, ncols=ncols, sharex=True, sharey=True)
    y = np.asarray(design.y, dtype=float)
    grid = np.linspace(np.nanmin(xvals), np.nanmax(xvals), 2)
    codes = block.codes
    index = {lvl: i for i, lvl in enumerate(block.levels)}
    lines = [(COMPLETE, COMPLETE_POOLING_COLOR, "--", "complete pooling"),
             (NONE, NO_POOLING_COLOR, "-", "no pooling")]  # fmt: skip
    dashes = ["-", (0, (5, 2)), (0, (1, 1.5)), "-."]
    for i, st in enumerate(styles):
        lines.append((partial_label(st.label), st.color, dashes[i % 4], partial_label(st.label)))
    for a, lvl in zip(axes, chosen, strict=False):
        rows = codes == index[lvl]
        a.scatter(xvals[rows], y[rows], s=10, color=DATA_COLOR, zorder=3, label="data")
        for key, color, ls, label in lines:
            coef = table.loc[lvl, key]
            b0 = coef[INTERCEPT] if INTERCEPT in coef.index else 0.0
            b1 = coef[predictor]
            if np.isfinite(b0) and np.isfinite(b1):
                a.plot(grid, b0 + b1 * grid, color=color, ls=ls, lw=1.5, label=label)
        a.set_title(f"{lvl} (n={int(rows.sum())})", fontsize=SMALL + 1)
        a.tick_params(labelsize=SMALL)
    for col in range(min(ncols, npan)):
        bottom = axes[col + ncols * ((npan - 1 - col) // ncols)]
        bottom.xaxis.set_tick_params(labelbottom=True)
        bottom.set_xlabel(predictor, fontsize=SMALL + 1)
    for a in axes[:npan:ncols]:
        a.set_ylabel(design.response_name, fontsize=SMALL + 1)
    shown = f"{npan} of {block.nlevels} {block.group}s, chosen across group sizes" if npan < block.nlevels else ""
    title = f"{design.response_name} against {predictor} per {block.group}: complete, no and partial pooling"
    fig.suptitle(title + (f"\n({shown})" if shown else ""), fontsize=11)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 5), fontsize=SMALL + 1, frameon=False)
    return fig


def _predictor(design, block) -> tuple[str, np.ndarray]:
    """The one non-intercept coefficient and its values per row."""
    terms = [t for t in coefficient_terms(design, block) if t != INTERCEPT]
    if len(terms) != 1:
        raise ModelError(
            "the pooling plot draws one line per group against one predictor; "
            + (f"this model has {len(terms)}: {', '.join(terms)}" if terms else "this model has none")
        )
    t = terms[0]
    if t in design.x_names:
        return t, np.asarray(design.X[:, list(design.x_names).index(t)], dtype=float)
    return t, np.asarray(block.Z[:, list(block.terms).index(t)], dtype=float)


def _choose_levels(table, levels, max_panels: int) -> list[str]:
    names = [str(x) for x in table.index]
    if levels is not None:
        levels = [str(x) for x in levels]
        unknown = [x for x in levels if x not in names]
        if unknown:
            raise ValueError(f"unknown level(s) {unknown[:5]} of {table.index.name}")
        return levels
    if len(names) <= max_panels:
        return names
    sizes = table[("n", "")].to_numpy()
    order = np.lexsort((np.arange(len(names)), sizes))
    pick = np.unique(np.round(np.linspace(0, len(names) - 1, max_panels)).astype(int))
    return [names[i] for i in order[pick]]
