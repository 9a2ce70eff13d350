"""Shrinkage plot: each group's no-pooling estimate with an arrow to its partial-pooling estimate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from hierbayes.errors import ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.plots.style import (
    COMPLETE_POOLING_COLOR,
    NO_POOLING_COLOR,
    SMALL,
    FitStyle,
    plot_setup,
    thin_labels,
)
from hierbayes.tables.fitinfo import is_bayes
from hierbayes.tables.pooling import COMPLETE, NONE, partial_label, pooling, pooling_block

KINDS = ("auto", "2d", "1d")


def shrinkage(
    *fits: MixedFit,
    group: str | None = None,
    terms: Sequence[str] | None = None,
    kind: str = "auto",
    x: str = "auto",
    ellipse_levels: Sequence[float] = (0.5, 0.95),
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """No pooling -> partial pooling for every level of a grouping factor.

    Parameters
    ----------
    *fits
        Fits of one model and data (REML and/or Bayes): an arrow per fit from
        each level's no-pooling estimate to that fit's partial-pooling one.
    group
        Grouping factor; default the one with the most levels.
    terms
        Coefficients to show: two for the 2D plot (default the factor's first
        two terms), one for the 1D plot (default its first term).
    kind
        ``"2d"`` (first term against second, with each fit's random-effects
        covariance ellipse around its fixed effects), ``"1d"`` (one
        coefficient against group size), or ``"auto"`` (2D when the factor
        has two or more terms).
    x
        1D only: ``"n"`` (group size), ``"rank"`` (levels ordered by their
        no-pooling estimate), or ``"auto"`` (size unless all groups are the same size).
    ellipse_levels
        2D only: probability contours of the fitted random-effects distribution.
    labels
        Fit names.
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fig = hb.plots.shrinkage(fit)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('(Intercept): Reaction at Days = 0', 'Days: change in Reaction per unit of Days')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    setup = plot_setup(fits, "shrinkage", labels)
    fits, styles = setup.fits, setup.styles
    block = pooling_block(fits[0].design, group)
    table = pooling(*fits, group=block.group, labels=labels)
    if kind == "auto":
        kind = "2d" if (terms is not None and len(terms) >= 2) or (terms is None and block.k >= 2) else "1d"
    want = 2 if kind == "2d" else 1
    terms = list(block.terms[:want]) if terms is None else list(terms)
    if len(terms) != want:
        raise ValueError(f"a {kind} shrinkage plot shows {want} term(s), got {terms}")
    have = list(table[NONE].columns)
    for t in terms:
        if t not in have:
            raise ValueError(f"no coefficient '{t}' for {block.group}; there are {have}")
    if kind == "2d" and any(t not in block.terms for t in terms):
        raise ModelError(
            f"a 2D shrinkage plot needs two random-effect terms of {block.group} (it has {list(block.terms)})"
        )
    fig, (a,) = setup.figure(1, 8.5, 5.5, ax=ax)
    if kind == "2d":
        _draw_2d(a, fits, table, styles, block.group, terms, ellipse_levels)
    else:
        _draw_1d(a, fits, table, styles, block.group, terms[0], x)
    a.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def _arrows(a: Axes, x0, y0, x1, y1, color: str, label: str) -> None:
    ok = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
    a.quiver(x0[ok], y0[ok], (x1 - x0)[ok], (y1 - y0)[ok], angles="xy", scale_units="xy", scale=1, color=color,
             width=0.0035, headwidth=4, headlength=5, alpha=0.6, label=f"_{label} shrinkage")  # fmt: skip


def axis_label(fit: MixedFit, term: str) -> str:
    """A coefficient's axis label in the response's terms: what the number is a value of.

    ``(Intercept): Reaction at Days = 0``, ``Days: change in Reaction per unit of Days``;
    on the link scale for non-identity links (``(Intercept): log of the mean of TICKS ...``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> axis_label(fit, "(Intercept)"), axis_label(fit, "Days")
    ('(Intercept): Reaction at Days = 0', 'Days: change in Reaction per unit of Days')
    """
    design = fit.design
    link = fit.model.family.link.name
    response = design.response_name
    if link != "identity":
        response = f"{link} of the mean of {response}"
    others = [t for t in design.x_names if t not in ("(Intercept)", term)]
    if term == "(Intercept)":
        if not others:
            return f"(Intercept): {response}"
        at = ", ".join(f"{t} = 0" for t in others[:2]) + (", ..." if len(others) > 2 else "")
        return f"(Intercept): {response} at {at}"
    return f"{term}: change in {response} per unit of {term}"


def _points(a: Axes, x, y, st: FitStyle, j: int, big: bool) -> None:
    """Partial-pooling estimates: the first fit's filled, later fits' hollow and larger, so coinciding points show."""
    size = (10 if big else 20) * (1 if j == 0 else 2)
    face = st.color if j == 0 else "none"
    a.scatter(x, y, s=size, marker=st.marker, facecolors=face, edgecolors=st.color, linewidths=1.1, zorder=4 + j,
              label=f"partial pooling ({st.label})")  # fmt: skip


def _draw_2d(a, fits, table: pd.DataFrame, styles: list[FitStyle], group: str, terms, levels) -> None:
    t1, t2 = terms
    x0, y0 = table[(NONE, t1)].to_numpy(), table[(NONE, t2)].to_numpy()
    a.scatter(x0, y0, s=28, facecolors="none", edgecolors=NO_POOLING_COLOR, linewidths=1.2,
              label=f"no pooling (each {group} alone)", zorder=3)  # fmt: skip
    for j, (fit, st) in enumerate(zip(fits, styles, strict=True)):
        part = partial_label(st.label)
        x1, y1 = table[(part, t1)].to_numpy(), table[(part, t2)].to_numpy()
        _arrows(a, x0, y0, x1, y1, st.color, st.label)
        _points(a, x1, y1, st, j, big=False)
        center, cov = _population(fit, group, terms)
        for lvl, ls in zip(levels, ["-", "--", ":", "-."] * 3, strict=False):
            ex, ey = ellipse(center, cov, lvl)
            a.plot(ex, ey, color=st.color, lw=1.0, ls=ls, alpha=0.8, label=f"{st.label} {100 * lvl:g}% of {group}s")
    cx, cy = table[(COMPLETE, t1)].iloc[0], table[(COMPLETE, t2)].iloc[0]
    if np.isfinite(cx) and np.isfinite(cy):
        a.scatter([cx], [cy], marker="X", s=90, color=COMPLETE_POOLING_COLOR, label="complete pooling", zorder=5)
    a.set_xlabel(axis_label(fits[0], t1))
    a.set_ylabel(axis_label(fits[0], t2))
    a.set_title(f"Shrinkage of {group} coefficients: no pooling → partial pooling", fontsize=10)
    a.grid(color="0.93")


def _population(fit: MixedFit, group: str, terms) -> tuple[np.ndarray, np.ndarray]:
    """Centre (fixed effects, 0 for random-only terms) and covariance of the random effects of ``terms``."""
    block = fit.design.block(group)
    idx = [block.terms.index(t) for t in terms]
    fe = fit.fixef
    center = np.array([fe.get(t, 0.0) for t in terms], dtype=float)
    if is_bayes(fit):
        cov = np.asarray(fit.cov_draws(group).mean(("chain", "draw")).values)
    else:
        cov = np.asarray(fit.covariances[group])
    return center, cov[np.ix_(idx, idx)]


def ellipse(center: np.ndarray, cov: np.ndarray, level: float, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The contour of a bivariate normal holding probability ``level``: (x - c)' cov^-1 (x - c) = chi2_2(level)."""
    r = np.sqrt(stats.chi2.ppf(level, 2))
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, points)
    circle = np.vstack([np.cos(t), np.sin(t)]) * r
    pts = vecs @ (np.sqrt(np.clip(vals, 0, None))[:, None] * circle) + center[:, None]
    return pts[0], pts[1]


def _draw_1d(a, fits, table: pd.DataFrame, styles: list[FitStyle], group: str, term: str, x: str) -> None:
    design = fits[0].design
    n = table[("n", "")].to_numpy().astype(float)
    unit = "rows"
    if design.trials is not None:  # binomial counts: the information is in the trials, not the rows
        block = design.block(group)
        n = np.bincount(block.codes, weights=design.trials, minlength=block.nlevels).astype(float)
        unit = "trials"
    y0 = table[(NONE, term)].to_numpy()
    if x not in ("auto", "n", "rank"):
        raise ValueError(f"x must be 'auto', 'n' or 'rank', not {x!r}")
    if x == "auto":
        x = "rank" if np.unique(n).size == 1 else "n"
    if x == "rank":
        order = np.argsort(np.where(np.isfinite(y0), y0, np.inf), kind="stable")
        xs = np.empty(len(n))
        xs[order] = np.arange(len(n), dtype=float)
    else:
        xs = n
    span = np.ptp(xs) if np.ptp(xs) > 0 else 1.0
    m = len(fits)
    dodge = 0.006 * span if m > 1 else 0.0
    big = len(n) > 60
    a.scatter(xs, y0, s=14 if big else 26, facecolors="none", edgecolors=NO_POOLING_COLOR, linewidths=1.0,
              label=f"no pooling ({group} alone)", zorder=3)  # fmt: skip
    for j, (fit, st) in enumerate(zip(fits, styles, strict=True)):
        y1 = table[(partial_label(st.label), term)].to_numpy()
        x1 = xs + (j - (m - 1) / 2) * dodge
        _arrows(a, x1, y0, x1, y1, st.color, st.label)
        _points(a, x1, y1, st, j, big)
        if term in fit.fixef.index:
            a.axhline(fit.fixef[term], color=st.color, lw=1.0, ls="--", label=f"{st.label} fixed effect {term}")
    cp = table[(COMPLETE, term)].iloc[0]
    if np.isfinite(cp):
        a.axhline(cp, color=COMPLETE_POOLING_COLOR, lw=1.0, ls=":", label="complete pooling")
    if x == "rank":
        names = list(table.index)
        order = np.argsort(xs)
        thin_labels(a, xs[order], [names[i] for i in order], 30, axis="x")
        a.tick_params(axis="x", labelrotation=90)
        a.set_xlabel(f"{group} (ordered by no-pooling estimate; all groups have {int(n[0])} {unit})")
    else:
        a.set_xlabel(f"{unit} per {group} (group size)")
    identity = fits[0].model.family.link.name == "identity"
    only_mean = list(design.x_names) == ["(Intercept)"] and term == "(Intercept)" and identity
    a.set_ylabel(f"mean {design.response_name} per {group}" if only_mean else axis_label(fits[0], term))
    hint = ": small groups move most" if x == "n" else ""
    a.set_title(f"Shrinkage of {group} {term} toward the population value{hint}", fontsize=10)
    a.grid(color="0.93")
