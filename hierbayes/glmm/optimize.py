"""BOBYQA over c(theta, beta) with per-parameter initial steps (the GLMM's second stage).

The REML engine's :func:`hierbayes.reml.minimize_theta` starts every
coordinate with the same step, which suits theta but not fixed effects on
arbitrary scales. This variant takes one initial step per parameter: like
lme4's second-stage Nelder-Mead (``xst = 0.2 * c(0.1 for theta, min(SE(beta),
10))``), steps follow the scale of each parameter. It returns the REML
engine's ``OptSummary`` record.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hierbayes.reml.control import OptimizerSettings
from hierbayes.reml.optimize import OptSummary, run_optimizer

#: The second stage's default: BOBYQA, tighter than lme4 (whose Nelder-Mead stops ~1e-4 short of the optimum).
STAGE2 = OptimizerSettings(name="bobyqa", algorithm="LN_BOBYQA", ftol_abs=None, ftol_rel=1e-12, xtol_abs=1e-9)


def bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    steps: np.ndarray,
    *,
    maxeval: int = 100_000,
    ftol_rel: float = 1e-12,
    xtol_abs: float = 1e-9,
    settings: OptimizerSettings | None = None,
) -> OptSummary:
    """Minimise ``fun`` subject to ``x >= lower`` by BOBYQA (or ``settings``' optimizer), starting with ``steps``.

    An initial step given in ``settings`` (lme4's ``rhobeg`` or ``xst``) replaces ``steps``.

    Examples
    --------
    >>> opt = bobyqa(lambda x: (x[0] - 1) ** 2 + (x[1] + 2) ** 2, np.zeros(2), np.array([0.0, -np.inf]),
    ...              np.array([0.1, 0.1]))
    >>> np.round(opt.final, 6).tolist()
    [1.0, -2.0]
    """
    if settings is None:
        settings = STAGE2.updated(maxeval=maxeval, ftol_rel=ftol_rel, xtol_abs=xtol_abs)
    if settings.initial_step is None and settings.algorithm != "lbfgsb":
        settings = settings.updated(initial_step=np.asarray(steps, float))
    return run_optimizer(fun, x0, lower, settings)
