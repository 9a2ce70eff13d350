"""Bounded minimisation for every frequentist fit, with lme4's settings, and its record (``fit.optinfo``).

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

Who runs what (each set of settings is named here):

* ``lmer``: :data:`LMER` (lme4's ``nloptwrap``: BOBYQA, ``ftol_abs = xtol_abs = 1e-8``) over theta;
* ``glmer``: :data:`GLMM_STAGE1` (the same) over theta with beta in PIRLS, then :data:`GLMM_STAGE2`
  over c(theta, beta) with lme4's per-parameter initial steps (:func:`bobyqa`);
* profiles (:mod:`hierbayes.inference.profile`): :data:`PROFILE` over the other variance parameters.

:func:`run_optimizer` runs any optimizer lme4 names (``optimizer=``,
``control=``): see :mod:`hierbayes.optim.control` for the mapping. Every
run returns an :class:`OptSummary` (MixedModels.jl's ``OptSummary``, lme4's
``optinfo``), kept on the fit as ``fit.optinfo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from hierbayes.errors import ArgumentError
from hierbayes.optim.control import OptimizerSettings

try:  # NLopt's BOBYQA; L-BFGS-B is used when nlopt is not installed
    import nlopt
except ImportError:  # pragma: no cover - nlopt is a dependency
    nlopt = None


#: lmer's default: lme4's nloptwrap (BOBYQA, ftol_abs = xtol_abs = 1e-8, NLopt's default initial step)
LMER = OptimizerSettings()
#: glmer's first stage (nAGQ = 0, theta only): lme4's nloptwrap settings
GLMM_STAGE1 = OptimizerSettings()
#: glmer's second stage: BOBYQA, tighter than lme4 (whose Nelder-Mead stops ~1e-4 short of the optimum)
GLMM_STAGE2 = OptimizerSettings(name="bobyqa", algorithm="LN_BOBYQA", ftol_abs=None, ftol_rel=1e-12, xtol_abs=1e-9)
#: the variance parameters of a profile, minimised within their bounds at each fixed value
PROFILE = OptimizerSettings(name="bobyqa", algorithm="LN_BOBYQA", ftol_abs=1e-11, xtol_abs=None, xtol_rel=1e-10,
                            maxeval=20_000)  # fmt: skip


@dataclass(frozen=True)
class OptSummary:
    """The optimizer's record (MixedModels.jl's ``OptSummary``, lme4's ``optinfo``).

    Attributes
    ----------
    method
        Optimizer used (``"BOBYQA (NLopt)"``, ...).
    initial, final
        Starting and final parameters.
    lower
        Lower bounds.
    fmin
        Final objective (REML criterion, deviance, ...).
    feval
        Number of objective evaluations.
    converged
        Whether the optimizer reported success.
    message
        The optimizer's message (and what was done after it: a restart, Newton steps).
    seconds
        Wall time of the optimisation.
    settings
        The optimizer and tolerances it ran with.
    returncode
        The optimizer's return code (NLopt's, or SciPy's status); None when none ran.
    messages
        lme4's convergence messages at the optimum (``optinfo$conv$lme4$messages``); empty when all is well.
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
    settings: OptimizerSettings | None = None
    returncode: int | None = None
    messages: tuple[str, ...] = ()

    def __repr__(self) -> str:
        def vec(x) -> str:
            return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(x, float)) + "]"

        s = self.settings
        tol = ""
        if s is not None:
            parts = [f"{k}={getattr(s, k):g}" for k in ("ftol_abs", "ftol_rel", "xtol_abs", "xtol_rel")
                     if getattr(s, k) is not None]  # fmt: skip
            tol = f" [{s.name}: {', '.join([*parts, f'maxeval={s.maxeval}'])}]"
        code = "" if self.returncode is None else f"; code {self.returncode}"
        return "\n".join([
            f"Optimizer: {self.method}{tol}",
            f"Start:     {vec(self.initial)}",
            f"Final:     {vec(self.final)}",
            f"Objective: {self.fmin:.10g} after {self.feval} evaluations in {_duration(self.seconds)}",
            f"Return:    {self.message}{code}, {'converged' if self.converged else 'NOT converged'}",
            f"Checks:    {'; '.join(self.messages) if self.messages else 'none failed'}",
        ])  # fmt: skip


class OptStages(NamedTuple):
    """A glmer fit's optimizer records: the nAGQ = 0 stage over theta, then the stage over c(theta, beta).

    ``stage2`` is None for nAGQ = 0. Indexing works as on a pair: ``fit.optinfo[1]``.
    """

    stage1: OptSummary
    stage2: OptSummary | None

    def __repr__(self) -> str:
        def indent(opt) -> str:
            return "  " + repr(opt).replace("\n", "\n  ")

        two = " none (nAGQ = 0)" if self.stage2 is None else "\n" + indent(self.stage2)
        return f"Stage 1 (nAGQ = 0, theta):\n{indent(self.stage1)}\nStage 2 (theta, beta):{two}"


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


class _Counted:
    """Counts evaluations, remembers the best point seen, prints each evaluation when verbose."""

    def __init__(self, fun: Callable[[np.ndarray], float], verbose: int = 0):
        self.fun = fun
        self.count = 0
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self.verbose = verbose

    def __call__(self, x: np.ndarray) -> float:
        self.count += 1
        value = float(self.fun(x))
        if value < self.best_f:
            self.best_f, self.best_x = value, np.array(x, dtype=float)
        if self.verbose:
            print(f"iteration: {self.count}  f(x) = {value:.10g}  x = {np.array2string(np.asarray(x), precision=7)}")
        return value


def minimize_theta(
    fun: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    *,
    method: str = "bobyqa",
    maxeval: int = 100_000,
    settings: OptimizerSettings | None = None,
) -> OptSummary:
    """Minimise ``fun`` over theta subject to ``theta >= lower``.

    Parameters
    ----------
    fun
        The profiled criterion; returns ``inf`` where undefined.
    start
        Starting theta (lmer's: :func:`hierbayes.reml.fit.lme4_start`).
    lower
        Lower bounds (0 for diagonal elements, -inf otherwise).
    method
        ``"bobyqa"`` (default: lme4's nloptwrap settings) or ``"lbfgsb"``;
        ignored when ``settings`` is given.
    maxeval
        Maximum number of evaluations (when ``settings`` is None).
    settings
        Optimizer and tolerances (:class:`hierbayes.optim.control.OptimizerSettings`,
        from lme4's ``optimizer``/``optCtrl``).
    """
    if settings is None:
        if method not in ("bobyqa", "lbfgsb"):
            raise ArgumentError(f"optimizer must be 'bobyqa' or 'lbfgsb', not {method!r}")
        settings = OptimizerSettings(
            name="nloptwrap" if method == "bobyqa" else "lbfgsb",
            algorithm="LN_BOBYQA" if method == "bobyqa" else "lbfgsb",
            maxeval=maxeval,
        )
    return run_optimizer(fun, start, lower, settings)


def run_optimizer(
    fun: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    settings: OptimizerSettings,
    upper: np.ndarray | None = None,
) -> OptSummary:
    """Minimise ``fun`` subject to ``x >= lower`` with the optimizer and tolerances of ``settings``.

    NLopt's derivative-free algorithms (BOBYQA, Nelder-Mead, ...) or SciPy's
    L-BFGS-B with central-difference gradients. ``settings.name`` None
    evaluates ``fun`` at ``start`` only (lme4's ``optimizer = NULL``).
    ``upper``: upper bounds (NLopt's algorithms; None for none).

    Examples
    --------
    >>> from hierbayes.optim.control import OptimizerSettings
    >>> s = OptimizerSettings(name="Nelder_Mead", algorithm="LN_NELDERMEAD", ftol_abs=1e-14, xtol_abs=1e-10)
    >>> opt = run_optimizer(lambda x: (x[0] - 1) ** 2 + (x[1] + 2) ** 2, np.zeros(2), np.array([0.0, -np.inf]), s)
    >>> np.round(opt.final, 5).tolist(), opt.method
    ([1.0, -2.0], 'Nelder-Mead (NLopt)')
    """
    t0 = time.perf_counter()
    f = _Counted(fun, settings.verbose)
    lower = np.asarray(lower, float)
    x0 = np.maximum(np.asarray(start, float), lower)
    if settings.name is None:
        f(x0)
        name, converged, message, code = "none", False, "no optimization (optimizer = None)", None
    elif settings.algorithm == "lbfgsb" or nlopt is None or len(x0) == 0:
        name, converged, message, code = _lbfgsb(f, x0, lower, settings)
    else:
        name, converged, message, code = _nlopt(f, x0, lower, settings, upper)
    x = f.best_x if f.best_x is not None else x0
    return OptSummary(
        method=name,
        initial=np.asarray(start, float).copy(),
        final=x,
        lower=lower.copy(),
        fmin=f.best_f,
        feval=f.count,
        converged=converged and np.isfinite(f.best_f),
        message=message,
        seconds=time.perf_counter() - t0,
        settings=settings,
        returncode=code,
    )


_NLOPT_NAMES = {"LN_BOBYQA": "BOBYQA", "LN_NELDERMEAD": "Nelder-Mead", "LN_SBPLX": "Subplex", "LN_COBYLA": "COBYLA",
                "LN_NEWUOA_BOUND": "NEWUOA", "LN_PRAXIS": "PRAXIS"}  # fmt: skip
_CODES = {1: "success", 2: "stopval reached", 3: "ftol reached", 4: "xtol reached", 5: "maxeval reached",
          6: "maxtime reached"}  # fmt: skip


def _nlopt(f: _Counted, x0: np.ndarray, lower: np.ndarray, s: OptimizerSettings, upper=None):
    # The default settings are exactly lme4's nloptwrap (BOBYQA, ftol_abs = xtol_abs = 1e-8, NLopt's default
    # initial step): with the same algorithm, start and criterion, the optimizer retraces lme4's path and
    # stops where lme4 stops, so estimates agree with lme4's printed numbers (to ~1e-7 in theta in most cases).
    n = len(x0)
    opt = nlopt.opt(getattr(nlopt, s.algorithm), n)
    opt.set_min_objective(lambda x, grad: _finite(f(x)))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    if upper is not None:
        opt.set_upper_bounds(np.asarray(upper, float))
    if s.ftol_abs is not None:
        opt.set_ftol_abs(s.ftol_abs)
    if s.ftol_rel is not None:
        opt.set_ftol_rel(s.ftol_rel)
    if s.xtol_abs is not None:
        opt.set_xtol_abs(s.xtol_abs)
    if s.xtol_rel is not None:
        opt.set_xtol_rel(s.xtol_rel)
    if s.initial_step is not None:
        opt.set_initial_step(np.broadcast_to(np.asarray(s.initial_step, float), (n,)).copy())
    if s.maxtime is not None:
        opt.set_maxtime(s.maxtime)
    opt.set_maxeval(int(s.maxeval))
    name = f"{_NLOPT_NAMES.get(s.algorithm, s.algorithm)} (NLopt)"
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
        return name, code in (1, 2, 3, 4), f"NLOPT {_CODES.get(code, code)}", int(code)
    except nlopt.RoundoffLimited:
        return name, True, "NLOPT roundoff-limited (best point kept)", -4


def _finite(value: float) -> float:
    """NLopt's algorithms need finite values: an undefined criterion is a very large one."""
    return value if np.isfinite(value) else 1e300


def _lbfgsb(f: _Counted, x0: np.ndarray, lower: np.ndarray, s: OptimizerSettings):
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

    if len(x0) == 0:
        f(x0)
        return "none (no parameters)", True, "nothing to optimise", None
    options = {"ftol": 1e-13 if s.ftol_rel is None else s.ftol_rel, "gtol": 1e-9, "maxcor": 20,
               "maxiter": s.maxiter or s.maxeval, "maxfun": s.maxeval}  # fmt: skip
    res = minimize(f, x0, jac=grad, method="L-BFGS-B", bounds=bounds, options=options)
    return "L-BFGS-B (central differences)", bool(res.success), str(res.message), int(res.status)


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
    """BOBYQA (or ``settings``' optimizer) subject to ``x >= lower``, starting with one step per parameter.

    :func:`run_optimizer` starts every coordinate with the same step, which
    suits theta but not fixed effects on arbitrary scales. Like lme4's
    second-stage Nelder-Mead (``xst = 0.2 * c(0.1 for theta, min(SE(beta),
    10))``), the steps here follow the scale of each parameter. An initial
    step given in ``settings`` (lme4's ``rhobeg`` or ``xst``) replaces ``steps``.

    Examples
    --------
    >>> opt = bobyqa(lambda x: (x[0] - 1) ** 2 + (x[1] + 2) ** 2, np.zeros(2), np.array([0.0, -np.inf]),
    ...              np.array([0.1, 0.1]))
    >>> np.round(opt.final, 6).tolist()
    [1.0, -2.0]
    """
    if settings is None:
        settings = GLMM_STAGE2.updated(maxeval=maxeval, ftol_rel=ftol_rel, xtol_abs=xtol_abs)
    if settings.initial_step is None and settings.algorithm != "lbfgsb":
        settings = settings.updated(initial_step=np.asarray(steps, float))
    return run_optimizer(fun, x0, lower, settings)


def check_boundary(fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, fmin: float,
                   tol: float) -> np.ndarray:  # fmt: skip
    """lme4's ``check.boundary``: a parameter within ``tol`` of its bound goes there if that is below ``fmin``."""
    x = np.array(x, float)
    for i in np.flatnonzero(np.isfinite(lower) & (x - lower > 0) & (x - lower < tol)):
        trial = x.copy()
        trial[i] = lower[i]
        if fun(trial) < fmin:
            x = trial
    return x


def labelled(values) -> bool:
    """Whether ``values`` is a pandas Series with labels (not the default 0, 1, ... RangeIndex).

    Read without importing pandas (the engines below the model are NumPy/SciPy).
    """
    return hasattr(values, "to_numpy") and type(getattr(values, "index", None)).__name__ not in (
        "RangeIndex",
        "NoneType",
    )


def check_start(layout, start) -> np.ndarray:
    """A starting theta given by the user (lme4's ``start``), checked against the model's theta.

    ``start``: a vector, or a pandas Series named like ``fit.theta`` (its
    order is then the names'). ``layout``: the model's
    :class:`~hierbayes.linalg.ThetaLayout`.

    Raises
    ------
    ArgumentError
        Wrong length, names or type, naming the expected theta.
    """
    names = layout.names
    expect = f"{layout.size} value(s): {', '.join(names)}"
    if labelled(start):
        unknown = [str(k) for k in start.index if k not in names]
        if unknown or len(start) != layout.size:
            raise ArgumentError(f"start names {', '.join(map(str, start.index))}; the model's theta has {expect}")
        start = start[names]
    if isinstance(start, (str, bytes)) or not np.ndim(start) <= 1:
        raise ArgumentError(f"start must be a vector of theta ({expect}), not {type(start).__name__}")
    try:
        theta = np.atleast_1d(np.asarray(start, dtype=float))
    except (TypeError, ValueError):
        raise ArgumentError(f"start must be numbers (theta: {expect}), got {start!r}") from None
    if theta.shape != (layout.size,):
        raise ArgumentError(f"start has {theta.size} value(s); the model's theta has {expect}")
    if not np.all(np.isfinite(theta)):
        raise ArgumentError(f"start must be finite numbers, got {theta.tolist()}")
    return theta
