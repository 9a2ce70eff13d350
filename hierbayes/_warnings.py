"""Issue warnings that point at the user's line, not at hierbayes internals."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)

#: Third-party warnings that ask nothing of a hierbayes user (issue 17: warnings that are not actionable are not
#: shown), as (message pattern, category). A pip-installed PyTensor finds no BLAS to link its C code against and
#: says so when it first compiles; it then uses NumPy's BLAS, which is what the small dense algebra here needs (a
#: conda install with MKL/OpenBLAS links and never warns).
NOT_ACTIONABLE: tuple[tuple[str, type[Warning]], ...] = (
    ("PyTensor could not link to a BLAS installation", UserWarning),
)


def ignore_not_actionable() -> None:
    """Filter out :data:`NOT_ACTIONABLE`; also after ``warnings.simplefilter("always")`` where warnings are recorded.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     ignore_not_actionable()
    ...     warnings.warn("PyTensor could not link to a BLAS installation. Operations ...", UserWarning)
    >>> caught
    []
    """
    for message, category in NOT_ACTIONABLE:
        warnings.filterwarnings("ignore", message=message, category=category)


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first caller outside hierbayes."""
    level = 2  # stacklevel 1 is this function; 2 is the frame below, our caller
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
