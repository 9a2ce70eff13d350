"""Profile zeta plots (lme4's ``xyplot(profile(m))``).

One panel per parameter: the signed square root of the deviance change,
zeta, against the parameter -- a straight line when the likelihood is
quadratic (Wald intervals exact), curved when it is not. Horizontal lines mark
the normal quantiles of common confidence levels and vertical segments drop
to the profile interval ends. ``absolute=True`` plots ``|zeta|`` (lme4's
``absVal = TRUE``), where the intervals read off as in a V.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from hierbayes.errors import UnknownParameterError

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # matplotlib only for the plot: import hierbayes stays light

    from hierbayes._types import Profile  # a Protocol: profile.py imports this module

LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)


def plot_profile(
    profile: Profile,
    which: Sequence[str] | None = None,
    levels: Sequence[float] = LEVELS,
    absolute: bool = False,
    ncols: int | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Plot zeta against each profiled parameter.

    Parameters
    ----------
    profile
        From ``fit.profile()``.
    which
        Parameters to show (all profiled ones by default).
    levels
        Confidence levels marked on the zeta axis.
    absolute
        Plot ``|zeta|`` instead of zeta.
    ncols
        Panels per row (default: up to 3).
    figsize
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"))
    >>> fig = plot_profile(fit.profile())
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['.sig01', '.sigma', '(Intercept)']
    """
    from hierbayes._figure import HierbayesFigure  # matplotlib only for the plot: import hierbayes stays light

    names = list(which) if which is not None else list(profile.backward)
    missing = [n for n in names if n not in profile.backward]
    if missing:
        raise UnknownParameterError(f"{', '.join(missing)} not profiled; profiled: {', '.join(profile.backward)}")
    ncols = ncols or min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig = HierbayesFigure(figsize=figsize or (3.3 * ncols, 2.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    zq = stats.norm.ppf(0.5 + np.asarray(levels) / 2)
    for ax, name in zip(axes, names, strict=False):
        _panel(ax, profile, name, zq, levels, absolute)
    for ax in axes[len(names) :]:
        fig.delaxes(ax)
    marks = "/".join(f"{100 * lev:g}" for lev in levels)
    what = "|zeta|" if absolute else "zeta (signed sqrt of the ML deviance change)"
    fig.suptitle(f"Profile {what}\nlines: {marks}% levels; dotted: interval ends; red: estimate", fontsize="small")
    return fig


def _panel(ax, profile: Profile, name: str, zq: np.ndarray, levels: Sequence[float], absolute: bool) -> None:
    pts = profile.table[profile.table[".par"] == name].dropna(subset=[".zeta"])
    x, z = pts[name].to_numpy(), pts[".zeta"].to_numpy()
    fwd, bak = profile.forward.get(name), profile.backward.get(name)
    if fwd is not None:
        grid = np.linspace(x.min(), x.max(), 200)
        zz = fwd(grid)
        ax.plot(grid, np.abs(zz) if absolute else zz, color="C0", lw=1.5, label="spline")
    ax.plot(x, np.abs(z) if absolute else z, "o", ms=3, color="C0", alpha=0.7, label="profiled points")
    x_lo, x_hi = ax.get_xlim()
    for q, lev in zip(zq, levels, strict=True):
        ends = bak(np.array([-q, q])) if bak is not None else np.array([np.nan, np.nan])
        for sign, end in zip((-1, 1), ends, strict=True):
            y = q if absolute else sign * q
            if np.isfinite(end):
                ax.plot([end, end], [0, y], color="0.55", lw=0.8, ls=":")
            ax.axhline(y, color="0.75", lw=0.6, zorder=0)
        if np.isclose(lev, 0.95):
            ax.annotate("95%", xy=(0.01, q), xycoords=("axes fraction", "data"), fontsize=7, color="0.35",
                        ha="left", va="bottom")  # fmt: skip
    ax.set_xlim(x_lo, x_hi)
    est = profile.estimates.get(name)
    if est is not None:
        ax.axvline(est, color="C3", lw=0.8, alpha=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel(name)
    ax.set_ylabel("|zeta|" if absolute else "zeta")
