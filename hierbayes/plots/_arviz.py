"""arviz-plots drawing into hierbayes' figures.

arviz-plots' matplotlib backend makes its own figures through pyplot. hierbayes'
figures are made without pyplot (:mod:`hierbayes.plots.style`) and may hold
several fits side by side, so the ArviZ plots (``plot_ppc_dist``,
``plot_trace_dist``, ``plot_rank``) are given a ``PlotCollection`` whose plots
are Axes of a hierbayes figure: ArviZ draws, hierbayes lays out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr


def _cell(obj: Any) -> np.ndarray:
    """A 0-d object array holding ``obj`` (``np.array`` would try to iterate some objects)."""
    out = np.empty((), dtype=object)
    out[()] = obj
    return out


def plot_collection(
    fig: Any,
    axes: Mapping[str, Any],
    data: xr.Dataset,
    aes: Mapping[str, Sequence[str]] | None = None,
    column: Sequence[str] | None = None,
):
    """A ``PlotCollection`` that draws variable ``v`` of ``data`` into ``axes[v]``.

    Parameters
    ----------
    fig
        The matplotlib Figure the axes belong to.
    axes
        Variable name -> one Axes, or (with ``column``) a sequence of Axes, one per column.
    data
        The data the aesthetics are generated from (as the ArviZ plot would pass it).
    aes
        ArviZ aesthetic mappings, e.g. ``{"color": ["chain"], "overlay": ["chain"]}``.
    column
        Coordinates of a ``column`` dimension (``plot_trace_dist``'s ``["dist", "trace"]``).
    """
    from arviz_plots import PlotCollection  # arviz-plots only when drawing: import hierbayes stays light

    plots, rows, cols = {}, {}, {}
    for i, (var, ax) in enumerate(axes.items()):
        if column is None:
            plots[var], rows[var], cols[var] = _cell(ax), i, 0
        else:
            arr = np.empty(len(column), dtype=object)
            arr[:] = list(ax)
            plots[var] = xr.DataArray(arr, dims="column", coords={"column": list(column)})
            rows[var] = xr.DataArray(np.full(len(column), i), dims="column", coords={"column": list(column)})
            cols[var] = xr.DataArray(np.arange(len(column)), dims="column", coords={"column": list(column)})
    viz = xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"figure": _cell(fig)}),
            "plot": xr.Dataset(plots),
            "row_index": xr.Dataset(rows),
            "col_index": xr.Dataset(cols),
        }
    )
    if column is not None:  # the plot loops over the column dimension of its data, as over any facet
        data = data.expand_dims(column=len(column)).assign_coords(column=list(column))
    return PlotCollection(data, viz, aes=dict(aes or {}), backend="matplotlib")
