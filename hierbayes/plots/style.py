"""Shared set-up and look of every hierbayes plot: one colour per engine, figures made without pyplot.

Every plot starts with :func:`plot_setup` (the fits checked, a label, colour and marker per fit)
and takes its panels from :meth:`PlotSetup.figure` (the user's ``ax=`` or a new figure). Figures
are :class:`hierbayes._figure.HierbayesFigure` objects created directly, never through
``pyplot``: a script never opens a window and nothing is left in pyplot's figure registry, while
Jupyter and VS Code display a returned figure by themselves (as a cell's last expression or as
``fig`` in a later cell); ``fig.savefig("x.png")`` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hierbayes._figure import new_figure
from hierbayes.fits.base import MixedFit
from hierbayes.tables.fitinfo import check_fits, check_same_data, engine, fit_labels

#: Okabe-Ito colours, colour-blind safe: the same colour for an engine in every plot
ENGINE_COLORS = {"reml": "#0072B2", "ml": "#56B4E9", "bayes": "#D55E00"}
#: further fits of an engine already used
EXTRA_COLORS = ("#009E73", "#CC79A7", "#E69F00", "#F0E442")
ENGINE_MARKERS = {"reml": "o", "ml": "s", "bayes": "D"}
NO_POOLING_COLOR = "#7F7F7F"
COMPLETE_POOLING_COLOR = "#000000"
DATA_COLOR = "#404040"
SMALL = 8


@dataclass(frozen=True)
class FitStyle:
    """How one fit is drawn."""

    label: str
    engine: str
    color: str
    marker: str


def fit_styles(fits: Sequence[MixedFit], labels: Sequence[str] | None = None) -> list[FitStyle]:
    """A label, colour and marker per fit: the engine's colour for its first fit, extra colours after."""
    names = fit_labels(fits, labels)
    used: set[str] = set()
    extra = iter(EXTRA_COLORS * 4)
    out = []
    for fit, name in zip(fits, names, strict=True):
        eng = engine(fit)
        color = ENGINE_COLORS.get(eng, "#333333")
        if color in used:
            color = next(extra)
        used.add(color)
        out.append(FitStyle(name, eng, color, ENGINE_MARKERS.get(eng, "o")))
    return out


@dataclass(frozen=True)
class PlotSetup:
    """The fits of a plot, checked, with their styles; :meth:`figure` gives the panels."""

    fits: list[MixedFit]
    styles: list[FitStyle]

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.styles]

    def figure(
        self,
        panels: int,
        width: float,
        height: float,
        ax: Axes | Sequence[Axes] | None = None,
        ncols: int | None = None,
        **subplots,
    ) -> tuple[Figure, list[Axes]]:
        """The user's axes (``ax=``, one per panel) or a new figure with ``panels`` panels.

        ``width`` and ``height`` are per panel; ``ncols`` panels a row (default all in one row);
        ``subplots`` go to ``Figure.subplots`` (``sharex``, ``sharey``). Unused cells of the grid
        are hidden. Returns the figure and the ``panels`` axes, row by row.
        """
        if ax is not None:
            axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
            if len(axes) != panels:
                raise ValueError(f"this plot draws {panels} panel(s); ax= got {len(axes)} axes")
            return axes[0].figure, axes
        ncols = ncols or panels
        nrows = int(np.ceil(panels / ncols))
        fig = new_figure(width * ncols, height * nrows)
        axes = list(fig.subplots(nrows, ncols, squeeze=False, **subplots).ravel())
        for extra_ax in axes[panels:]:
            extra_ax.set_visible(False)
        return fig, axes[:panels]


def plot_setup(
    fits: Sequence[MixedFit], what: str, labels: Sequence[str] | None = None, same_data: bool = False
) -> PlotSetup:
    """The shared start of every plot: at least one fit, all fits (of the same data when
    ``same_data``), and a label, colour and marker per fit.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> setup = plot_setup([fit], "example")
    >>> fig, axes = setup.figure(2, 3.0, 2.5)
    >>> setup.labels, type(fig).__name__, len(axes)
    (['REML'], 'HierbayesFigure', 2)
    """
    fits = check_fits(fits, what)
    if same_data:
        check_same_data(fits, what)
    return PlotSetup(fits, fit_styles(fits, labels))


def lowess(x: np.ndarray, y: np.ndarray, frac: float = 2 / 3, points: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A locally linear smoother with tricube weights (one pass of Cleveland's lowess) on a grid of x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    grid = np.linspace(x.min(), x.max(), points)
    k = max(3, int(np.ceil(frac * len(x))))
    out = np.empty(points)
    for i, g in enumerate(grid):
        d = np.abs(x - g)
        h = max(np.partition(d, k - 1)[k - 1], 1e-12)
        w = np.clip(1 - (d / h) ** 3, 0, None) ** 3
        sw = w.sum()
        mx, my = (w @ x) / sw, (w @ y) / sw
        sxx = w @ (x - mx) ** 2
        slope = (w @ ((x - mx) * (y - my))) / sxx if sxx > 1e-12 * max(sw, 1) else 0.0
        out[i] = my + slope * (g - mx)
    return grid, out


def thin_labels(ax: Axes, positions: np.ndarray, names: Sequence[str], max_labels: int, axis: str = "y") -> None:
    """Label every level when there are few; otherwise about ``max_labels`` evenly spaced ones."""
    step = max(1, int(np.ceil(len(names) / max_labels)))
    idx = np.arange(0, len(names), step)
    set_ticks = ax.set_yticks if axis == "y" else ax.set_xticks
    set_ticks(np.asarray(positions)[idx], [str(names[i]) for i in idx])
    ax.tick_params(axis=axis, labelsize=SMALL if len(names) > 25 else 9)
