"""Progress bars, one convention for every long computation (sampling, bootstrap, profile).

The argument is ``progressbar`` (PyMC's name), as in :func:`hierbayes.bayes`:

* ``None`` (the default): a bar in Jupyter (notebook, lab, VS Code; an ipywidgets bar, so it
  needs ``ipywidgets``, the ``notebook`` extra) and in an interactive Python or IPython session;
  nothing in a plain script, so a script prints nothing but warnings worth reading;
* ``True``: a bar anywhere (in a terminal, tqdm's text bar on stderr);
* ``False``: no bar.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from tqdm.std import tqdm as text_bar

from hierbayes.errors import ArgumentError


def in_jupyter() -> bool:
    """Inside a Jupyter kernel (notebook, lab, VS Code), where a progress bar is an ipywidget."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def in_interactive_session() -> bool:
    """An interactive Python prompt or an IPython shell (terminal or kernel)."""
    ipython = sys.modules.get("IPython")
    return hasattr(sys, "ps1") or (ipython is not None and ipython.get_ipython() is not None)


def has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def show_progress(progressbar: bool | None) -> bool:
    """Whether to show a bar: the user's ``True``/``False``, or the default described in the module docstring.

    Examples
    --------
    >>> show_progress(None)  # a script (or a doctest): no bar
    False
    >>> show_progress(False), show_progress(True)
    (False, True)
    """
    if progressbar is None:
        return has_widgets() if in_jupyter() else in_interactive_session()
    if not isinstance(progressbar, bool | int):
        raise ArgumentError(f"progressbar must be True, False or None, not {progressbar!r}")
    return bool(progressbar)


def resolve(progressbar: bool | None, progress: bool | None = None, where: str = "") -> bool:
    """``progressbar``, or the older spelling ``progress`` when only that is given; then :func:`show_progress`."""
    if progress is not None:
        if progressbar is not None and bool(progressbar) != bool(progress):
            raise ArgumentError(f"{where}: give progressbar= or its older spelling progress=, not both")
        progressbar = progress
    return show_progress(progressbar)


def progress_bar(total: int, desc: str, show: bool, unit: str = "it") -> Any:
    """A tqdm bar (an ipywidgets bar in Jupyter when ipywidgets is installed, else text on stderr), or a no-op."""
    if show and in_jupyter() and has_widgets():
        from tqdm.notebook import tqdm  # Jupyter's bar loads IPython and ipywidgets: import hierbayes stays light

        return tqdm(total=total, desc=desc, unit=unit, disable=not show, leave=True)
    return text_bar(total=total, desc=desc, unit=unit, disable=not show, leave=True)
