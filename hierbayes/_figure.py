"""The Figure class every hierbayes plot returns: shown by Jupyter by itself, never a window.

hierbayes makes its figures without pyplot, so a script never opens a window and nothing is
left open in pyplot's registry. A plain ``matplotlib.figure.Figure`` made that way is shown by
Jupyter only once pyplot's inline backend has registered its display formatter (after
``import matplotlib.pyplot`` or ``%matplotlib inline``); before that a notebook prints
``<Figure size ...>``. :class:`HierbayesFigure` renders itself as PNG (``_repr_png_``), so a
figure shows as the last expression of a cell, or as ``fig`` in a later cell, in Jupyter and
VS Code, with or without the inline backend, and exactly once: when the inline backend is
active its registered formatter is used instead, and the figure is not in pyplot's registry,
so the backend does not show it a second time at the end of the cell.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class HierbayesFigure(Figure):
    """A ``matplotlib.figure.Figure`` that Jupyter displays as a PNG image.

    Everything else is matplotlib's: ``fig.savefig("x.png")``, ``fig.axes``, ``fig.suptitle``.

    Examples
    --------
    >>> fig = HierbayesFigure(figsize=(2, 1))
    >>> fig._repr_png_()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def new_figure(width: float, height: float) -> HierbayesFigure:
    """A figure of ``width`` x ``height`` inches, constrained layout, not registered with pyplot."""
    return HierbayesFigure(figsize=(width, height), layout="constrained")
