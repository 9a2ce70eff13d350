"""Keep BLAS single-threaded where its threads only add overhead.

The engines factor many small or mid-sized dense matrices. OpenBLAS's worker
threads barely help there on two cores, and when the cores are busy (other
processes, PyMC's chains) they spin: measured here, an InstEval REML
evaluation took 19 ms with one thread and ~575 ms with two under load, and a
grouseticks GLMM fit 0.19 s against 2-6 s.
"""

from __future__ import annotations

import contextlib
import functools

import scipy.linalg  # noqa: F401  (SciPy's BLAS is loaded before threadpoolctl lists the libraries)
from threadpoolctl import ThreadpoolController


@functools.cache
def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once (finding them costs ~3 ms)."""
    return ThreadpoolController()


def single_thread_blas() -> contextlib.AbstractContextManager:
    """A context limiting BLAS to one thread (threadpoolctl)."""
    return _controller().limit(limits=1, user_api="blas")
