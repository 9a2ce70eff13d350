"""Fit a linear mixed model by REML or ML: the engine's entry point.

``LmmObjective`` is lme4's ``mkLmerDevfun``: the criterion at any theta,
callable on its own. ``fit_lmm`` optimises it and collects the estimates in a
frozen ``LmmEstimates``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hierbayes._threads import single_thread_blas
from hierbayes._warnings import warn
from hierbayes.errors import ArgumentError, ConvergenceWarning, EstimationError
from hierbayes.linalg import (
    BlockedFactor,
    CrossProducts,
    ThetaLayout,
    conditional_covariances,
    fixef_precision_factor,
    lower_inverse,
    solve,
)
from hierbayes.linalg.crossprod import crossproducts
from hierbayes.optim import (
    LMER,
    Control,
    OptimizerSettings,
    OptSummary,
    as_control,
    check_start,
    run_optimizer,
    with_optimizer,
)
from hierbayes.optim import check_boundary as _check_boundary
from hierbayes.optim.convergence import ConvergenceReport, check_derivatives, free_parameters, updated_gradient
from hierbayes.reml.objective import criterion, factorize, prior_weights

if TYPE_CHECKING:
    from hierbayes.design import Design

#: Rest (dense) dimension from which the optimisation runs with single-threaded BLAS (see hierbayes._threads).
DENSE_SINGLE_THREAD = 200
#: Check convergence with derivatives (lme4's checkConv) below this many observations, as lme4 does.
CHECK_MAX_NOBS = 10_000
#: lme4's ``isSingular`` tolerance on theta elements bounded below by zero.
SINGULAR_TOL = 1e-4


class LmmObjective:
    """The profiled deviance (ML) or REML criterion of a design, as a function of theta.

    Parameters
    ----------
    design
        A design from :func:`hierbayes.design.build_design`.
    reml
        REML criterion (True) or ML deviance (False).

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"))
    >>> round(LmmObjective(d, reml=False)([0.713]), 4)
    327.3422
    """

    def __init__(self, design: Design, reml: bool = True):
        self.design = design
        self.reml = reml
        self.layout = ThetaLayout(design.blocks)
        self.weights = prior_weights(design)
        streamed = getattr(design, "streamed", None)
        if streamed is not None:  # rows read in pieces (hierbayes.sources): their cross-products, the same shift
            self.beta0 = streamed.beta0
            self.cp = streamed.crossproducts
            return
        y = design.y if design.offset is None else design.y - design.offset
        sw = self.weights.sqrtw
        # The criterion is invariant to shifting y by any X @ b0 (beta absorbs it). Working with the OLS
        # residual keeps y'y in the stored cross-products on the scale of the residuals, so the penalized
        # RSS taken from the factor does not lose digits when y sits far from zero (e.g. mean 1e4 x sigma).
        if design.p:
            Xw, yw = (design.X, y) if sw is None else (design.X * sw[:, None], y * sw)
            self.beta0 = np.linalg.lstsq(Xw, yw, rcond=None)[0]
        else:
            self.beta0 = np.zeros(0)
        self.cp: CrossProducts = crossproducts(design.blocks, design.X, y - design.X @ self.beta0, sw)

    @property
    def n(self) -> int:
        """Observations the criterion counts (rows with a positive prior weight)."""
        return self.weights.n

    def __call__(self, theta) -> float:
        theta = np.asarray(theta, dtype=float)
        f = factorize(self.cp, self.layout, theta)
        return criterion(f, self.weights.n, self.design.p, self.reml, self.weights.ldw)

    def factor(self, theta) -> BlockedFactor | None:
        """The blocked Cholesky factor at theta."""
        return factorize(self.cp, self.layout, np.asarray(theta, dtype=float))


@dataclass(frozen=True)
class LmmEstimates:
    """Everything the REML/ML engine estimated (inputs to ``LmerFit``).

    Attributes
    ----------
    theta
        Relative covariance parameters at the optimum.
    beta
        Fixed effects.
    sigma
        Residual standard deviation.
    b
        Conditional modes of the random effects, per block (levels x k).
    condvar
        Conditional covariances of the random effects, per block (levels x k x k).
    vcov
        Covariance of the fixed effects.
    objective
        REML criterion or ML deviance at the optimum.
    pwrss, logdet_L, logdet_RX
        Pieces of the criterion at the optimum.
    opt
        The optimizer's record.
    convergence
        Derivatives at the optimum and lme4's convergence messages (None for
        a singular fit or when not computed).
    control
        The lme4 control the fit ran under (None: lme4's defaults).
    """

    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    b: list[np.ndarray]
    condvar: list[np.ndarray]
    vcov: np.ndarray
    objective: float
    pwrss: float
    logdet_L: float
    logdet_RX: float
    opt: OptSummary
    convergence: ConvergenceReport | None = None
    control: Control | None = None


def estimates_at(
    objective: LmmObjective,
    theta: np.ndarray,
    opt: OptSummary,
    convergence: ConvergenceReport | None = None,
    control: Control | None = None,
) -> LmmEstimates:
    """Estimates at a given theta (the optimum, or any theta for profiling).

    lme4's convergence messages of ``convergence`` go into the optimizer's record too.
    """
    if convergence is not None:
        opt = dataclasses.replace(opt, messages=tuple(convergence.messages))
    f = objective.factor(theta)
    if f is None:
        raise EstimationError(
            f"the penalized least-squares system is not positive definite at theta = {np.asarray(theta)}; "
            "the criterion is not finite there"
        )
    d = objective.design
    u1, ur, beta = solve(f)
    beta = beta + objective.beta0
    n = objective.n
    dof = n - d.p if objective.reml else n
    sigma = float(np.sqrt(f.r2 / dof))
    us = [u1, *_split(ur, d.blocks[1:])]
    b = [np.einsum("ij,lj->li", lam, u) for lam, u in zip(f.lambdas, us, strict=True)]
    RXinv = lower_inverse(fixef_precision_factor(f))
    vcov = sigma**2 * RXinv.T @ RXinv
    condvar = conditional_covariances(f, sigma)
    return LmmEstimates(
        reml=objective.reml, theta=np.array(theta, float), beta=beta, sigma=sigma, b=b, condvar=condvar, vcov=vcov,
        objective=criterion(f, n, d.p, objective.reml, objective.weights.ldw), pwrss=f.r2, logdet_L=f.logdet_L,
        logdet_RX=f.logdet_RX, opt=opt, convergence=convergence, control=control,
    )  # fmt: skip


def lme4_start(design: Design) -> np.ndarray:
    """lme4's starting theta for ``lmer``.

    Identity relative covariance factors (1 on the diagonal of each lambda,
    0 elsewhere), except when every random-effects term is the intercept of
    a factor of its own: then, as lme4's ``mkLmerDevfun`` does, each theta is
    ``sqrt(v_j / v_e)`` with ``v_j`` the variance of the factor's group means
    of y (R's ``var(ave(y, f))``) and ``v_e = var(y) - sum(v_j)``, when
    ``v_e > 0``. Starting where lme4 starts keeps the optimizer on lme4's
    path (InstEval: 81 evaluations, lme4 74, instead of 113 from the identity).

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> lme4_start(m.design).round(6)
    array([0.888682])
    """
    layout = ThetaLayout(design.blocks)
    blocks = design.blocks
    intercepts = all(b.terms == ("(Intercept)",) for b in blocks)
    if not intercepts or len({b.group for b in blocks}) != len(blocks) or design.n < 2:
        return layout.start
    streamed = getattr(design, "streamed", None)
    if streamed is not None:  # the same variances, from the per-level sums of the rows read in pieces
        s = streamed
        v = [float(np.sum(c * (np.divide(t, np.maximum(c, 1)) - s.y_mean) ** 2)) / (s.n - 1)
             for c, t in zip(s.level_counts, s.level_ysum, strict=True)]  # fmt: skip
        v_e = s.y_var - sum(v)
        return np.sqrt(np.asarray(v) / v_e) if np.isfinite(v_e) and v_e > 0 else layout.start
    y = np.asarray(design.y, float)
    v = []
    for b in blocks:
        means = np.bincount(b.codes, weights=y, minlength=b.nlevels) / np.maximum(
            np.bincount(b.codes, minlength=b.nlevels), 1
        )
        v.append(np.var(means[b.codes], ddof=1))
    v_e = np.var(y, ddof=1) - sum(v)
    if not np.isfinite(v_e) or v_e <= 0:
        return layout.start
    return np.sqrt(np.asarray(v) / v_e)


#: Newton steps on the finite-difference derivatives after the optimizer, at most (see :func:`polish`).
POLISH_STEPS = 3
#: A Newton step smaller than this (relative to theta) is not taken: the optimum is already that close.
POLISH_TOL = 1e-7
#: After a Newton step smaller than this (relative), only the gradient is recomputed (the Hessian is kept).
SMALL_STEP = 1e-3
#: After a Newton step smaller than this from a point that passed lme4's checks, nothing is recomputed.
TINY_STEP = 1e-5
#: Directions whose curvature is below this (relative to the largest) are left out of a Newton step: flat.
NEWTON_EIG_TOL = 1e-9
#: A response beyond this scale (or below its inverse) has squares that overflow (underflow) doubles.
SCALE_LIMIT = 1e150
#: lme4's ``restart_edge`` step and tolerance on the one-sided derivative at a bound.
EDGE_STEP = 1e-5


def start_theta(design: Design, start) -> np.ndarray:
    """The starting theta: lme4's default (:func:`lme4_start`) or ``start`` checked against the model.

    ``start`` may be a vector of theta (lme4's ``start = c(...)``), a dict
    ``{"theta": ...}`` (lme4's ``start = list(theta = ...)``; a ``"fixef"``
    entry is accepted and unused, beta being profiled out), or a pandas
    Series named like ``fit.theta``.

    Raises
    ------
    ArgumentError
        Wrong length, names or type, naming the expected theta.
    """
    layout = ThetaLayout(design.blocks)
    if start is None:
        return lme4_start(design)
    if isinstance(start, dict):
        bad = set(start) - {"theta", "fixef"}
        if bad:
            raise ArgumentError(
                f"start has {', '.join(sorted(map(str, bad)))}; lme4's start list takes 'theta' (and 'fixef') only"
            )
        if start.get("theta") is None:
            return lme4_start(design)
        start = start["theta"]
    return check_start(layout, start)


def check_estimable(objective: LmmObjective) -> None:
    """Raise an EstimationError when no theta gives a finite criterion: n <= p, or X fits y exactly."""
    d, n = objective.design, objective.n
    if n <= d.p:
        what = "observations with a positive weight" if d.weights is not None else "observations"
        raise EstimationError(
            f"{n} {what} for {d.p} fixed-effect coefficients ({', '.join(d.x_names)}): n <= p leaves nothing to "
            "estimate the residual variance; fit fewer fixed effects or use more data"
        )
    streamed = getattr(d, "streamed", None)
    if streamed is not None:  # rows read in pieces: the same checks on their sums
        _check_scale(d, streamed.y_maxabs)
        if streamed.crossproducts.Arr[-1, -1] <= 1e-20 * max(streamed.y_ss, np.finfo(float).tiny):
            if streamed.y_var <= 0:
                raise EstimationError(f"the response '{d.response_name}' is constant: there is no variation to "
                                      "estimate variances from")  # fmt: skip
            raise EstimationError(
                f"the fixed effects ({', '.join(d.x_names)}) fit the response '{d.response_name}' exactly "
                "(residual sum of squares 0): there is no variation left to estimate variances from"
            )
        return
    y = d.y if d.offset is None else d.y - d.offset
    sw = objective.weights.sqrtw
    yw = y if sw is None else y * sw
    _check_scale(d, float(np.max(np.abs(yw))) if len(yw) else 0.0)
    rw = (y - d.X @ objective.beta0) if sw is None else (y - d.X @ objective.beta0) * sw
    if float(rw @ rw) <= 1e-20 * max(float(yw @ yw), np.finfo(float).tiny):
        values = np.unique(y[sw > 0] if sw is not None else y)
        if len(values) == 1:
            raise EstimationError(
                f"the response '{d.response_name}' is constant (every value is {values[0]:g}): there is no "
                "variation to estimate variances from"
            )
        raise EstimationError(
            f"the fixed effects ({', '.join(d.x_names)}) fit the response '{d.response_name}' exactly "
            "(residual sum of squares 0): there is no variation left to estimate variances from"
        )


def _check_scale(d: Design, scale: float) -> None:
    """An EstimationError when the response's squares overflow or underflow doubles."""
    if scale > SCALE_LIMIT or 0.0 < scale < 1.0 / SCALE_LIMIT:
        raise EstimationError(
            f"the response '{d.response_name}' is on a scale (largest |value| {scale:.3g}) whose squares "
            f"{'overflow' if scale > 1 else 'underflow'} double precision, so the criterion cannot be computed "
            f"(lme4 returns an infinite one); rescale it, e.g. divide it by {10.0 ** np.floor(np.log10(scale)):.0e}"
        )


def fit_lmm(
    design: Design,
    reml: bool = True,
    start=None,
    optimizer: str | None = "default",
    control: Control | dict | None = None,
    verbose: int = 0,
) -> LmmEstimates:
    """Fit by REML (default) or ML.

    Parameters
    ----------
    design
        The model's design.
    reml
        REML (True) or maximum likelihood (False).
    start
        Starting theta (see :func:`start_theta`); lme4's default (:func:`lme4_start`) when None.
    optimizer
        An optimizer lme4 names (``"nloptwrap"``, ``"bobyqa"``, ``"Nelder_Mead"``,
        ``"nlminbwrap"``) or hierbayes' ``"lbfgsb"``; ``"default"`` keeps the
        control's (lme4's nloptwrap).
    control
        lme4's ``lmerControl`` settings (:mod:`hierbayes.optim.control`).
    verbose
        Print every evaluation when > 0.

    After the optimizer, as lme4 does: a restart when a parameter stopped on
    its bound while the criterion falls into the interior (``restart_edge``),
    and a move onto the bound of a parameter within ``boundary.tol`` of it.
    Then, when the derivatives are computed for the convergence checks
    (``calc.derivs``, fewer than 10,000 observations), up to three Newton
    steps on them (:func:`polish`): where lme4's BOBYQA stops early on a
    flat criterion (e.g. nlme's Machines with ``(0 + Machine | Worker)``:
    ~5e-3 in theta), the estimates reach the optimum that lme4 reaches only
    with tightened tolerances. A singular fit is polished in the parameters
    off the bound (lme4 checks no derivatives there, and neither does
    hierbayes' report): BOBYQA leaves a parameter whose optimum is on the
    bound a little above it (nlme's Wafer: 3e-5), and the others short of
    their optimum (orthodont with ``(0 + nsex | Subject)``: 4e-4).
    """
    control = as_control(control, "lmer")
    if optimizer != "default":
        control = with_optimizer(control, optimizer)
    objective = LmmObjective(design, reml)
    check_estimable(objective)
    layout = objective.layout
    x0 = start_theta(design, start)
    settings = control.settings(0, LMER)
    if verbose:
        settings = settings.updated(verbose=verbose)
    # a large dense part (crossed designs) is factored at every evaluation: keep BLAS on one thread
    threads = single_thread_blas() if objective.cp.qr >= DENSE_SINGLE_THREAD else contextlib.nullcontext()
    with threads:
        opt = run_optimizer(objective, x0, layout.lower, settings)
        if not np.isfinite(opt.fmin):
            raise EstimationError(
                f"the {'REML criterion' if reml else 'deviance'} is not finite at any theta the optimizer tried "
                f"(from {np.asarray(x0)}): the model cannot be fitted to these data"
            )
        if settings.name is not None:
            if not opt.converged:
                warn(f"convergence code from {settings.name}: {opt.message}", ConvergenceWarning)
            if control.restart_edge:
                opt = restart_edge(objective, opt, layout.lower, settings)
            if control.boundary_tol > 0:
                opt = check_boundary(objective, opt, layout.lower, control.boundary_tol)
        theta, report = opt.final, None
        singular = np.any(theta[layout.lower == 0] < control.check_conv_singular.tol)
        if control.calc_derivs and design.n < CHECK_MAX_NOBS and settings.name is not None:
            # lme4 does not check derivatives at a boundary fit: there the derivatives (in the parameters off
            # the bound) serve the polish only, and give no convergence messages
            checks = None if singular else control
            report = check_derivatives(objective, theta, layout.lower, checks, check=not singular)
            opt, report = polish(objective, opt, layout.lower, report, checks)
            if singular:
                report = None
    return estimates_at(objective, opt.final, opt, report, control)


def restart_edge(objective, opt: OptSummary, lower: np.ndarray, settings: OptimizerSettings) -> OptSummary:
    """lme4's ``restart_edge``: restart when a parameter on its bound has a negative one-sided derivative."""
    theta = opt.final
    on_bound = np.flatnonzero(np.isfinite(lower) & (theta == lower))
    if not len(on_bound):
        return opt
    d0 = objective(theta)
    for i in on_bound:
        trial = theta.copy()
        trial[i] = lower[i] + EDGE_STEP
        if (objective(trial) - d0) / EDGE_STEP < 0:
            again = run_optimizer(objective, theta, lower, settings)
            if again.fmin <= opt.fmin:
                return _merged(opt, again.final, again.fmin, again.feval, "; restarted from the boundary")
            return opt
    return opt


def check_boundary(objective, opt: OptSummary, lower: np.ndarray, tol: float) -> OptSummary:
    """lme4's ``check.boundary`` (:func:`hierbayes.optim.check_boundary`) on the optimizer's record."""
    x = _check_boundary(objective, opt.final, lower, opt.fmin, tol)
    if np.array_equal(x, opt.final):
        return opt
    return _merged(opt, x, objective(x), 0, "; moved onto the boundary (boundary.tol)")


def polish(objective, opt: OptSummary, lower: np.ndarray, report: ConvergenceReport, control: Control | None = None):
    """Newton steps on the finite-difference derivatives of the convergence check, kept while they lower the criterion.

    The derivatives (lme4's ``deriv12``, computed anyway for the checks) give
    the Newton step ``H^{-1} g`` in the free parameters; when it is larger
    than 1e-7 relative to theta, the step is tried and kept if the criterion
    decreases, and the derivatives are recomputed there (at most three
    times; after a step below 1e-3 relative only the gradient, 2 evaluations
    per parameter, with the Hessian kept; after a step below 1e-5 from a
    point that passed lme4's checks, nothing: the report then describes the
    optimizer's point, a step away, with the same verdict).

    BOBYQA with lme4's tolerances stops when the criterion changes by less
    than 1e-8, which on a flat optimum leaves theta up to ~1e-3 from the
    minimiser (nlme's Machines); Newton steps then land on it for a few
    evaluations. Returns the (possibly updated) optimizer record and report.
    """
    x, f0, steps = np.array(opt.final, float), opt.fmin, 0
    for _ in range(POLISH_STEPS):
        g, H, free = report.gradient, report.hessian, report.free
        if not len(free) or not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
            break
        step = newton_step(g, H)
        if step is None:
            break
        if np.max(np.abs(step)) <= POLISH_TOL * max(1.0, float(np.max(np.abs(x[free])))):
            break
        cand = x.copy()
        cand[free] = np.maximum(cand[free] - step, lower[free])
        f1 = objective(cand)
        if not f1 < f0:
            break
        size = np.max(np.abs(step)) / max(1.0, float(np.max(np.abs(x[free]))))
        x, f0, steps = cand, f1, steps + 1
        if size <= TINY_STEP and report.ok:
            break  # a step this small cannot change lme4's verdict: the report stays that of the optimizer's point
        if size <= SMALL_STEP and np.array_equal(free_parameters(x, lower), free):
            report = updated_gradient(objective, x, lower, report, control)  # the Hessian barely moves
        else:
            report = check_derivatives(objective, x, lower, control)
    if not steps:
        return opt, report
    return _merged(opt, x, f0, steps, f"; {steps} Newton step(s) on the derivatives"), report


def newton_step(g: np.ndarray, H: np.ndarray) -> np.ndarray | None:
    """``H^{-1} g`` in the directions of clear positive curvature (None when there is none).

    Where the criterion is flat in some direction (a theta lme4 cannot
    identify, such as MixedModels.jl's Oxide with ``(1 + Source | Lot)``,
    Source being a Lot-level variable), the finite-difference Hessian has
    eigenvalues near zero, of either sign; the step leaves those directions
    alone, as the criterion does not change along them.

    Examples
    --------
    >>> newton_step(np.array([2.0, 0.0]), np.diag([4.0, -1e-12])).tolist()
    [0.5, 0.0]
    """
    ev, vec = np.linalg.eigh((H + H.T) / 2)
    if not len(ev) or ev.max() <= 0:
        return None
    keep = ev > NEWTON_EIG_TOL * ev.max()
    basis = vec[:, keep]
    return basis @ ((basis.T @ g) / ev[keep])


def _merged(opt: OptSummary, x: np.ndarray, fmin: float, extra: int, note: str) -> OptSummary:
    return dataclasses.replace(opt, final=np.asarray(x, float), fmin=float(fmin), feval=opt.feval + int(extra),
                               message=opt.message + note)  # fmt: skip


def _split(u: np.ndarray, blocks) -> list[np.ndarray]:
    out, start = [], 0
    for b in blocks:
        out.append(u[start : start + b.q].reshape(b.nlevels, b.k))
        start += b.q
    return out
