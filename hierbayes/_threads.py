"""Keep BLAS single-threaded where its threads only add overhead.

The engines factor many small or mid-sized dense matrices. OpenBLAS's worker
threads barely help there on two cores, and when the cores are busy (other
processes, PyMC's chains) they spin: measured here, an InstEval REML
evaluation took 19 ms with one thread and ~575 ms with two under load, and a
grouseticks GLMM fit 0.19 s against 2-6 s.
"""

from __future__ import annotations

import contextlib


def single_thread_blas():
    """A context limiting BLAS to one thread (threadpoolctl, installed with PyMC), or a no-op without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
