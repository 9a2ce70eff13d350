"""BOBYQA over c(theta, beta) with per-parameter initial steps (the GLMM's second stage).

The REML engine's :func:`hierbayes.reml.minimize_theta` starts every
coordinate with the same step, which suits theta but not fixed effects on
arbitrary scales. This variant takes one initial step per parameter: like
lme4's second-stage Nelder-Mead (``xst = 0.2 * c(0.1 for theta, min(SE(beta),
10))``), steps follow the scale of each parameter. It returns the REML
engine's ``OptSummary`` record.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import nlopt
import numpy as np

from hierbayes.reml.optimize import OptSummary

_CODES = {1: "success", 2: "stopval reached", 3: "ftol reached", 4: "xtol reached", 5: "maxeval reached"}


def bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    steps: np.ndarray,
    *,
    maxeval: int = 100_000,
    ftol_rel: float = 1e-12,
    xtol_abs: float = 1e-9,
) -> OptSummary:
    """Minimise ``fun`` subject to ``x >= lower`` by BOBYQA, starting with ``steps``.

    Examples
    --------
    >>> opt = bobyqa(lambda x: (x[0] - 1) ** 2 + (x[1] + 2) ** 2, np.zeros(2), np.array([0.0, -np.inf]),
    ...              np.array([0.1, 0.1]))
    >>> np.round(opt.final, 6).tolist()
    [1.0, -2.0]
    """
    t0 = time.perf_counter()
    x0 = np.maximum(np.asarray(x0, float), lower)
    best = {"f": np.inf, "x": x0.copy(), "n": 0}

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        best["n"] += 1
        value = float(fun(x))
        if value < best["f"]:
            best["f"], best["x"] = value, np.array(x, float)
        return value if np.isfinite(value) else 1e300

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_min_objective(objective)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_ftol_rel(ftol_rel)
    opt.set_xtol_abs(xtol_abs)
    opt.set_initial_step(np.asarray(steps, float))
    opt.set_maxeval(maxeval)
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
        converged, message = code in (1, 2, 3, 4), f"NLOPT {_CODES.get(code, code)}"
    except nlopt.RoundoffLimited:
        converged, message = True, "NLOPT roundoff-limited (best point kept)"
    return OptSummary(
        method="BOBYQA (NLopt)", initial=np.asarray(x0, float).copy(), final=best["x"],
        lower=np.asarray(lower, float).copy(), fmin=best["f"], feval=best["n"],
        converged=converged and np.isfinite(best["f"]), message=message, seconds=time.perf_counter() - t0,
    )  # fmt: skip
