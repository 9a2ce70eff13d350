"""Read back what a Figure draws: errorbars, scatter offsets, lines, quiver arrows (no pixels)."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.quiver import Quiver


def errorbars(ax) -> list[dict]:
    """Per ErrorbarContainer: label, x, y, and the interval ends (lo, hi) along x."""
    out = []
    for c in ax.containers:
        if not isinstance(c, ErrorbarContainer):
            continue
        data, _, bars = c.lines
        segs = bars[0].get_segments()
        lo = np.array([min(s[0][0], s[1][0]) for s in segs])
        hi = np.array([max(s[0][0], s[1][0]) for s in segs])
        out.append({"label": c.get_label(), "x": np.asarray(data.get_xdata(), float),
                    "y": np.asarray(data.get_ydata(), float), "lo": lo, "hi": hi,
                    "color": data.get_color()})  # fmt: skip
    return out


def scatters(ax) -> dict[str, np.ndarray]:
    """label -> offsets (n x 2) of every scatter."""
    return {c.get_label(): np.asarray(c.get_offsets(), float) for c in ax.collections if isinstance(c, PathCollection)}


def lines(ax) -> dict[str, list]:
    """label -> Line2D objects with that label."""
    out: dict[str, list] = {}
    for ln in ax.get_lines():
        out.setdefault(ln.get_label(), []).append(ln)
    return out


def quivers(ax) -> list[Quiver]:
    return [c for c in ax.collections if isinstance(c, Quiver)]
