"""Bounded minimisation of the profiled criterion over theta.

The default is BOBYQA (Powell's bound-constrained derivative-free
quadratic-model trust region, from NLopt), the optimizer lme4 (``nloptwrap``)
and MixedModels.jl use for the same problem: theta has few elements, the
criterion is cheap but has no analytic gradient here, and the diagonal
elements of lambda are bounded below by zero, so boundary (singular) fits
are reached exactly. On sleepstudy ``(Days | Subject)`` it needs 43
evaluations, as lme4 does; on InstEval 81 (lme4 74).
``method="lbfgsb"`` (SciPy's L-BFGS-B with central-difference
gradients) is available as a cross-check; it needs two to three times as
many evaluations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

try:  # NLopt's BOBYQA; L-BFGS-B is used when nlopt is not installed
    import nlopt
except ImportError:  # pragma: no cover - nlopt is a dependency
    nlopt = None


@dataclass(frozen=True)
class OptSummary:
    """The optimizer's record (MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    method
        Optimizer used.
    initial, final
        Starting and final theta.
    fmin
        Final objective (REML criterion or deviance).
    feval
        Number of objective evaluations.
    converged
        Whether the optimizer reported success.
    message
        The optimizer's message.
    seconds
        Wall time of the optimisation.
    """

    method: str
    initial: np.ndarray
    final: np.ndarray
    lower: np.ndarray
    fmin: float
    feval: int
    converged: bool
    message: str
    seconds: float


class _Counted:
    """Counts evaluations and remembers the best point seen."""

    def __init__(self, fun: Callable[[np.ndarray], float]):
        self.fun = fun
        self.count = 0
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf

    def __call__(self, x: np.ndarray) -> float:
        self.count += 1
        value = float(self.fun(x))
        if value < self.best_f:
            self.best_f, self.best_x = value, np.array(x, dtype=float)
        return value


def minimize_theta(
    fun: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    *,
    method: str = "bobyqa",
    maxeval: int = 100_000,
) -> OptSummary:
    """Minimise ``fun`` over theta subject to ``theta >= lower``.

    Parameters
    ----------
    fun
        The profiled criterion; returns ``inf`` where undefined.
    start
        Starting theta (lme4's: :func:`hierbayes.reml.fit.lme4_start`).
    lower
        Lower bounds (0 for diagonal elements, -inf otherwise).
    method
        ``"bobyqa"`` (default) or ``"lbfgsb"``.
    maxeval
        Maximum number of evaluations.
    """
    if method not in ("bobyqa", "lbfgsb"):
        raise ValueError(f"optimizer must be 'bobyqa' or 'lbfgsb', not {method!r}")
    t0 = time.perf_counter()
    f = _Counted(fun)
    x0 = np.maximum(np.asarray(start, float), lower)
    if method == "bobyqa" and nlopt is not None and len(x0) > 0:
        name, converged, message = _bobyqa(f, x0, lower, maxeval)
    else:
        name, converged, message = _lbfgsb(f, x0, lower, maxeval)
    x = f.best_x if f.best_x is not None else x0
    return OptSummary(
        method=name,
        initial=np.asarray(start, float).copy(),
        final=x,
        lower=np.asarray(lower, float).copy(),
        fmin=f.best_f,
        feval=f.count,
        converged=converged and np.isfinite(f.best_f),
        message=message,
        seconds=time.perf_counter() - t0,
    )


def _bobyqa(f: _Counted, x0: np.ndarray, lower: np.ndarray, maxeval: int) -> tuple[str, bool, str]:
    n = len(x0)
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(lambda x, grad: f(x))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    # Exactly lme4's nloptwrap settings (ftol_abs = xtol_abs = 1e-8, NLopt's default initial step):
    # with the same algorithm, start and criterion, the optimizer retraces lme4's path and stops where
    # lme4 stops, so estimates agree with lme4's printed numbers (to ~1e-7 in theta in most cases).
    opt.set_ftol_abs(1e-8)
    opt.set_xtol_abs(1e-8)
    opt.set_maxeval(maxeval)
    codes = {1: "success", 2: "stopval reached", 3: "ftol reached", 4: "xtol reached", 5: "maxeval reached"}
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
        return "BOBYQA (NLopt)", code in (1, 2, 3, 4), f"NLOPT {codes.get(code, code)}"
    except nlopt.RoundoffLimited:
        return "BOBYQA (NLopt)", True, "NLOPT roundoff-limited (best point kept)"


def _lbfgsb(f: _Counted, x0: np.ndarray, lower: np.ndarray, maxeval: int) -> tuple[str, bool, str]:
    lo = np.where(np.isfinite(lower), lower, -np.inf)
    bounds = [(v if np.isfinite(v) else None, None) for v in lower]

    def grad(x: np.ndarray) -> np.ndarray:
        g = np.empty_like(x)
        fx = None
        for i in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[i]))
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            if xm[i] < lo[i]:  # one-sided at the bound
                fx = f(x) if fx is None else fx
                g[i] = (f(xp) - fx) / h
            else:
                g[i] = (f(xp) - f(xm)) / (2 * h)
        return g

    res = minimize(
        f, x0, jac=grad, method="L-BFGS-B", bounds=bounds,
        options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": maxeval, "maxcor": 20},
    )  # fmt: skip
    return "L-BFGS-B (central differences)", bool(res.success), str(res.message)
