"""Fit a GLMM by maximum likelihood in lme4's two stages.

1. nAGQ = 0: minimise the Laplace deviance over theta alone, with beta
   estimated by PIRLS together with the random effects (fast, slightly
   approximate) -- BOBYQA from lme4's start (identity lambda).
2. nAGQ >= 1: minimise the Laplace (nAGQ = 1) or adaptive Gauss-Hermite
   (nAGQ > 1) deviance over c(theta, beta), starting from stage 1 -- BOBYQA
   with lme4's step sizes (lme4 uses Nelder-Mead here), then Newton steps
   on finite-difference derivatives to land on the optimum.

As lme4 does, the covariance of the fixed effects is taken from the
finite-difference Hessian H of the deviance in c(theta, beta) (step 1e-4,
lme4's ``deriv12``): ``vcov = 2 H^{-1}[beta, beta]`` (``use.hessian =
TRUE``), falling back to the PIRLS factor ``(R_X' R_X)^{-1}`` when H is not
positive definite, and always for nAGQ = 0. The same derivatives drive
lme4's convergence checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hierbayes._warnings import warn
from hierbayes.errors import ArgumentError, ConvergenceWarning, EstimationError, ModelError, SeparationWarning
from hierbayes.families import Family
from hierbayes.glmm.agq import MAX_NAGQ, AgqDeviance, check_agq
from hierbayes.glmm.laplace import LaplaceDeviance, ThetaDeviance
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse, glm_response
from hierbayes.glmm.separation import saturated, separated_effects
from hierbayes.linalg import ThetaLayout, conditional_covariances, factorize, fixef_precision_factor, lower_inverse
from hierbayes.linalg.crossprod import crossproducts
from hierbayes.optim import (
    GLMM_STAGE1,
    GLMM_STAGE2,
    Control,
    OptSummary,
    as_control,
    bobyqa,
    check_boundary,
    check_start,
    labelled,
    run_optimizer,
)
from hierbayes.optim.convergence import ConvergenceReport, controlled_messages, derivatives

if TYPE_CHECKING:
    from hierbayes.design import Design

#: lme4's ``isSingular`` tolerance
SINGULAR_TOL = 1e-4
#: lme4's ``deriv12`` step
DERIV_STEP = 1e-4


@dataclass(frozen=True)
class GlmmEstimates:
    """Everything the GLMM engine estimated (inputs to ``GlmerFit``).

    Attributes
    ----------
    nAGQ
        0 (stage 1 only), 1 (Laplace) or the number of quadrature nodes.
    theta, beta
        Relative covariance parameters and fixed effects.
    u, b
        Spherical and unscaled (``b = Lambda u``) conditional modes per block.
    condvar
        Conditional covariances of b per block (levels x k x k; lme4's condVar).
    vcov, vcov_source
        Covariance of beta, from ``"hessian"`` or ``"RX"``.
    objective
        The minimised deviance, lme4's -2 logLik.
    eta, mu
        Linear predictor and fitted means at the modes.
    hessian, gradient
        Finite-difference derivatives of the deviance in c(theta, beta) (None for nAGQ = 0).
    opt_stage1, opt
        Optimizer records of the two stages (``opt`` None for nAGQ = 0).
    convergence
        lme4's convergence checks (None when skipped: singular fits, nAGQ = 0).
    control
        The lme4 control the fit ran under (None: lme4's defaults).
    family_par_free
        The family's own parameter (``response.family``: the negative
        binomial's theta, a dispersion) was estimated (:mod:`hierbayes.glmm.family_par`).
    """

    nAGQ: int
    theta: np.ndarray
    beta: np.ndarray
    u: list[np.ndarray]
    b: list[np.ndarray]
    condvar: list[np.ndarray]
    vcov: np.ndarray
    vcov_source: str
    objective: float
    eta: np.ndarray
    mu: np.ndarray
    response: GlmResponse
    opt_stage1: OptSummary
    opt: OptSummary | None
    hessian: np.ndarray | None
    gradient: np.ndarray | None
    convergence: ConvergenceReport | None
    control: Control | None = None
    family_par_free: bool = False

    @property
    def pars(self) -> np.ndarray:
        return np.concatenate([self.theta, self.beta])


def make_devfun(design: Design, response: GlmResponse, nAGQ: int = 1, pirls: Pirls | None = None) -> LaplaceDeviance:
    """lme4's second-stage ``devfun``: the deviance as a function of c(theta, beta).

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> f = make_devfun(m.design, glm_response(m.design, m.family))
    >>> round(float(f([1.0, -1.398343, -0.991925, -1.128216, -1.579745])), 3)
    186.715
    """
    check_agq(design, nAGQ)
    if nAGQ > 1:
        return AgqDeviance(design, response, nAGQ, pirls)
    return LaplaceDeviance(design, response, pirls)


def check_nagq(nAGQ: Any) -> int:
    """nAGQ as an int, or an ArgumentError naming what is allowed (lme4 also takes 0 to 25; here up to 100)."""
    if isinstance(nAGQ, (bool, np.bool_)) or not isinstance(nAGQ, (int, np.integer, float, np.floating)):
        raise ArgumentError(f"nAGQ must be a whole number from 0 to {MAX_NAGQ}, not {nAGQ!r}")
    if not np.isfinite(nAGQ) or float(nAGQ) != int(nAGQ) or not 0 <= nAGQ <= MAX_NAGQ:
        raise ArgumentError(f"nAGQ must be a whole number from 0 to {MAX_NAGQ}, not {nAGQ!r}")
    return int(nAGQ)


def check_response(design: Design, response: GlmResponse, action: str) -> None:
    """lme4's ``check.response.not.const``: a constant response is an error (or a warning, or nothing)."""
    y = response.y[response.wt > 0]
    if action == "ignore" or (len(y) and y.min() < y.max()):
        return
    value = float(y[0]) if len(y) else float("nan")
    kind = "proportion" if response.binomial and design.trials is not None else "value"
    msg = (
        f"Response is constant: every {kind} of '{design.response_name}' is {value:g}, so the fixed effects "
        "would run off to infinity (lme4's check.response.not.const)"
    )
    if action == "stop":
        raise EstimationError(msg)
    warn(msg, SeparationWarning)


def deviance_function(design: Design, family: Family, nAGQ: int = 1) -> ThetaDeviance | LaplaceDeviance:
    """lme4's ``glmer(devFunOnly = TRUE)``: the deviance of theta (nAGQ = 0) or of c(theta, beta).

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> round(float(deviance_function(m.design, m.family, 0)([0.64])), 3)
    184.109
    """
    nAGQ = check_nagq(nAGQ)
    check_agq(design, nAGQ)
    response = glm_response(design, family)
    return ThetaDeviance(design, response) if nAGQ == 0 else make_devfun(design, response, nAGQ)


def glmm_start(design: Design, start: Any, nAGQ: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """lme4's ``start`` for glmer: ``{"theta", "fixef"}`` or a vector of theta; checked against the model."""
    if start is None:
        return None, None
    fixef = None
    if isinstance(start, dict):
        bad = set(start) - {"theta", "fixef"}
        if bad:
            raise ArgumentError(
                f"bad name(s) for start ({', '.join(sorted(map(str, bad)))}); lme4's start takes 'theta' and 'fixef'"
            )
        fixef = start.get("fixef")
        start = start.get("theta")
    theta = None if start is None else check_start(ThetaLayout(design.blocks), start)
    if fixef is not None:
        if nAGQ == 0:
            raise ArgumentError("start['fixef'] cannot be used with nAGQ=0 (beta is estimated inside PIRLS there)")
        if labelled(fixef):
            missing = [n for n in design.x_names if n not in fixef.index]
            if missing or len(fixef) != design.p:
                raise ArgumentError(f"start['fixef'] names {', '.join(map(str, fixef.index))}; the model's fixed "
                                    f"effects are {', '.join(design.x_names)}")  # fmt: skip
            fixef = fixef[list(design.x_names)]
        fixef = _vector(fixef, design.p, "start['fixef']", design.x_names)
    return theta, fixef


def prepare_stages(design: Design, family: Family, start: Any, nAGQ: int, control: Any, verbose: int,
                   calc_derivs: bool) -> tuple:  # fmt: skip
    """What every GLMM estimator does before its two optimizer stages.

    Returns lme4's control, whether to compute the derivatives at the end,
    the response (checked as lme4 checks it), theta's layout, the starts of
    theta and of the fixed effects (None: from stage 1), and the settings of
    stage 1 (theta) and stage 2 (theta, beta).
    """
    control = as_control(control, "glmer")
    response = glm_response(design, family)
    check_response(design, response, control.check_response_not_const)
    layout = ThetaLayout(design.blocks)
    theta_start, fixef_start = glmm_start(design, start, nAGQ)
    theta0 = layout.start if theta_start is None else theta_start
    s1, s2 = control.settings(0, GLMM_STAGE1), control.settings(1, GLMM_STAGE2)
    if verbose:
        s1, s2 = s1.updated(verbose=verbose), s2.updated(verbose=verbose)
    return control, calc_derivs and control.calc_derivs, response, layout, theta0, fixef_start, s1, s2


def estimate_glmm(
    design: Design,
    family: Family,
    nAGQ: int = 1,
    start: Any = None,
    calc_derivs: bool = True,
    control: Control | None = None,
    verbose: int = 0,
) -> GlmmEstimates:
    """Fit a GLMM by maximum likelihood in lme4's two stages (lme4's ``glmer``); returns the estimates.

    Parameters
    ----------
    design, family
        The model's design and a family that ``glmer`` fits (binomial, bernoulli, Poisson).
    nAGQ
        0 (stage 1 only: beta estimated inside PIRLS), 1 (Laplace, default),
        or the number of adaptive Gauss-Hermite nodes for a model with a
        single scalar random effect.
    start
        ``{"theta": ..., "fixef": ...}`` starting values (lme4's ``start``), or a vector of theta.
    calc_derivs
        Compute the Hessian (vcov, convergence checks, Newton polish).
    control
        lme4's ``glmerControl`` settings (:mod:`hierbayes.optim.control`).
    verbose
        Print every evaluation when > 0.

    With ``calc_derivs=False`` (bootstrap refits, or lme4's ``calc.derivs =
    FALSE``) the Hessian, the Newton polish and the convergence checks are
    skipped and vcov comes from R_X.

    Separated data (:mod:`hierbayes.glmm.separation`) give a fit with a
    SeparationWarning naming the diverging fixed effects, as lme4 returns
    one, instead of a PIRLS failure.
    """
    nAGQ = check_nagq(nAGQ)
    check_agq(design, nAGQ)
    control = as_control(control, "glmer")
    if control.restart_edge:
        raise ArgumentError("restart_edge is not available for glmer (lme4: not implemented for optimizeGlmer)")
    control, calc_derivs, response, layout, theta0, fixef_start, s1, s2 = prepare_stages(
        design, family, start, nAGQ, control, verbose, calc_derivs
    )
    btol = control.boundary_tol
    separated: list[str] = []
    try:
        pirls, stage1, opt1, theta1, res1 = _stage1(design, response, layout, theta0, s1, control, None)
    except (ModelError, FloatingPointError):
        separated = separated_effects(design.X, response, design.x_names)
        if not separated:
            raise
        pirls, stage1, opt1, theta1, res1 = _stage1(design, response, layout, theta0, s1, control, SEPARATED_PDEV)
    if nAGQ == 0:
        est = _estimates(design, response, layout, 0, theta1, res1.beta, stage1(theta1), opt1, None, None, None,
                         control, pirls.pdev_tol)  # fmt: skip
        return _separation_checked(est, design, response, separated)
    devfun = make_devfun(design, response, nAGQ, pirls)
    beta0 = res1.beta if fixef_start is None else fixef_start
    se1 = np.sqrt(np.diag(_unscaled_vcov(res1)))
    steps = 0.2 * np.concatenate([np.full(layout.size, 0.1), np.minimum(se1, 10.0)])
    lower = np.concatenate([layout.lower, np.full(design.p, -np.inf)])
    opt = bobyqa(devfun, np.concatenate([theta1, beta0]), lower, np.maximum(steps, 1e-4), settings=s2)
    if not np.isfinite(opt.fmin):
        raise EstimationError("the deviance is not finite at any (theta, beta) the optimizer tried")
    if s2.name is not None and not opt.converged:
        warn(f"convergence code from {s2.name}: {opt.message}", ConvergenceWarning)
    pars = check_boundary(devfun, opt.final, lower, opt.fmin, btol) if btol > 0 else opt.final
    free_theta = pars[: layout.size][layout.lower == 0]
    singular = bool(np.any(free_theta < control.check_conv_singular.tol))
    if not calc_derivs or s2.name is None:
        fmin = opt.fmin if pars is opt.final else devfun(pars)
        est = _estimates(design, response, layout, nAGQ, pars[: layout.size], pars[layout.size :], fmin, opt1, opt,
                         None, None, control, pirls.pdev_tol)  # fmt: skip
        return _separation_checked(est, design, response, separated)
    g, H = derivatives(devfun, pars, np.full(len(pars), -np.inf), h=DERIV_STEP)  # lme4's deriv12
    polished, evals = _polish(devfun, pars, lower, g, H, opt.fmin if pars is opt.final else None)
    if evals and not np.array_equal(polished, pars):
        delta = polished - pars
        moved = float(np.sqrt(max(delta @ H @ delta, 0.0)))  # in standardized units (curvature 1)
        pars = polished
        opt = dataclasses.replace(opt, final=pars.copy(), feval=opt.feval + evals,
                                  message=opt.message + "; polished by Newton steps")  # fmt: skip
        if moved > REDERIVE:  # vcov and lme4's checks belong to the final point (lme4 computes them there)
            g, H = derivatives(devfun, pars, np.full(len(pars), -np.inf), h=DERIV_STEP)
    report = None
    if not singular:  # lme4 skips the gradient checks on a boundary fit
        report = ConvergenceReport(g, H, np.arange(len(pars)), controlled_messages(g, H, pars, control))
        opt = dataclasses.replace(opt, messages=tuple(report.messages))
    objective = devfun(pars)
    est = _estimates(design, response, layout, nAGQ, pars[: layout.size], pars[layout.size :], objective, opt1,
                     opt, (g, H), report, control, pirls.pdev_tol)  # fmt: skip
    return _separation_checked(est, design, response, separated)


#: PIRLS' tolerance on the relative change of the penalized deviance for separated data (see Pirls).
SEPARATED_PDEV = 1e-12


def _stage1(design, response, layout, theta0, settings, control, pdev_tol, maxit: int = 100):
    """lme4's nAGQ = 0 stage (or, with ``nAGQ0initStep = False``, its start alone)."""
    pirls = Pirls(design, response, pdev_tol=pdev_tol, maxit=maxit)
    stage1 = ThetaDeviance(design, response, pirls)
    if not control.nAGQ0initStep:
        res1 = pirls.run(theta0, None)
        opt1 = OptSummary(method="none", initial=theta0.copy(), final=theta0.copy(), lower=layout.lower.copy(),
                          fmin=stage1(theta0), feval=1, converged=True, message="nAGQ0initStep = False: no first stage",
                          seconds=0.0)  # fmt: skip
        return pirls, stage1, opt1, theta0, res1
    opt1 = run_optimizer(stage1, theta0, layout.lower, settings)
    if not np.isfinite(opt1.fmin):
        raise FloatingPointError("the nAGQ = 0 deviance is not finite at any theta tried")
    theta1 = check_boundary(stage1, opt1.final, layout.lower, opt1.fmin, control.boundary_tol)
    res1 = pirls.run(theta1, None)
    return pirls, stage1, opt1, theta1, res1


def _separation_checked(est: GlmmEstimates, design: Design, response: GlmResponse, separated: list[str]):
    """Warn when the data are separated: known from a PIRLS failure, or checked when the fitted eta saturates."""
    if not separated and saturated(est.eta, response):
        separated = separated_effects(design.X, response, design.x_names)
    _warn_separation(separated)
    return est


def _warn_separation(effects: list[str]) -> None:
    if effects:
        warn(
            f"complete or quasi-complete separation: the estimate(s) of {', '.join(repr(e) for e in effects)} "
            "diverge (the likelihood keeps increasing as they grow); their estimates and standard errors are "
            "where the optimizer stopped and are not meaningful. Drop or merge the level(s) that separate the "
            "outcome, or fit with method='bayes', where a prior keeps them finite.",
            SeparationWarning,
        )


#: A Newton step (on lme4's finite-difference derivatives) below this, in standard errors, is not taken.
POLISH_STEP_TOL = 1e-6
#: lme4's derivatives are trusted for the Newton step when their step (1e-4) moves along no coordinate more
#: than this far in standardized units (``1e-4 sqrt(H_ii)``): beyond it their gradient is biased.
DERIV_TRUST = 0.1
#: Finite-difference step of the polish, in standardized coordinates (one unit: curvature 1 of the deviance).
POLISH_H = 1e-3
#: Steps of the polish in standardized coordinates, at most (each costs two evaluations per free parameter).
POLISH_ITERATIONS = 4
#: After a polish that moved this far (standardized units), lme4's derivatives are taken again at the final
#: point for vcov and the checks: SEs change by up to ~1e-4 (relative) per 1e-3 units on curved deviances.
REDERIVE = 1e-4
#: A step of at most this many standardized units is kept when the deviance rises by no more than its
#: rounding noise (the quadratic model is exact there, and the deviance no longer resolves the change).
POLISH_TRUST = 1e-3


def _polish(
    devfun, x: np.ndarray, lower: np.ndarray, g: np.ndarray, H: np.ndarray, f0: float | None = None
) -> tuple[np.ndarray, int]:
    """Newton steps from lme4's derivatives at the optimizer's point, kept when the deviance agrees.

    BOBYQA stops when the deviance improves by less than 1e-12 relative,
    which leaves c(theta, beta) some 1e-5 to 1e-3 standard errors from the
    minimiser (and, on a badly scaled model such as grouseticks with an
    uncentred covariate, cond(H) ~ 4e7, the deviance 1e-6 above its
    minimum). lme4's derivatives (``deriv12``: steps of 1e-4 in every
    coordinate), computed anyway for vcov and the convergence checks, give
    the Newton step ``H^{-1} g`` for one more evaluation (the check).

    Where a coordinate step of 1e-4 spans a large part of the deviance's
    curvature (``1e-4 sqrt(H_ii)`` above 0.1: the uncentred covariate), that
    gradient is biased and its Newton step lands beside the minimiser. The
    gradient is then taken again along the directions that standardize H
    (``D' H D = I``, D from H's eigenvectors; steps of 1e-3 there) and
    ``x - D D' g`` taken, repeated while that gradient is above its rounding
    noise: a Newton iteration with H fixed, which converges to where the
    gradient vanishes. Parameters on a bound stay there, and so do directions
    whose curvature is below the derivatives' rounding noise (the diverging
    fixed effects of separated data: their likelihood levels off, the
    others' is still defined). A step too small
    for the deviance to resolve (at most 1e-3 standard units) is kept when
    the deviance rises by no more than its rounding noise. Returns the point
    and the number of evaluations spent.
    """
    free = np.flatnonzero(~(np.isfinite(lower) & (x - lower < 1e-7)))
    if not len(free) or not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return x, 0
    Hf, gf = H[np.ix_(free, free)], g[free]
    evals = 0
    if f0 is None:
        f0, evals = devfun(x), 1
    noise = 64 * np.finfo(float).eps * max(1.0, abs(f0))
    ev, V = np.linalg.eigh((Hf + Hf.T) / 2)
    # directions of clear curvature: above the finite differences' rounding noise. Flat ones (the diverging
    # fixed effects of separated data, whose likelihood levels off) are left where the optimizer put them.
    keep = ev > max(1e-12 * ev.max(initial=0.0), noise / DERIV_STEP**2)
    if not keep.any():
        return x, evals
    D = V[:, keep] / np.sqrt(ev[keep])  # D' Hf D = I on those directions
    se = np.sqrt(np.sum(D * D, axis=1))  # sqrt(diag(Hf^+))
    dz = D.T @ gf  # lme4's Newton step, in standardized units
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.nanmax(np.abs(D @ dz) / np.where(se > 0, se, np.inf)) < POLISH_STEP_TOL:
            return x, evals

    def tried(dz: np.ndarray) -> bool:
        nonlocal x, f0, evals
        cand = x.copy()
        cand[free] = x[free] - D @ dz
        if np.any(cand < lower):
            return False
        f1 = devfun(cand)
        evals += 1
        if not (f1 < f0 or (np.max(np.abs(dz)) <= POLISH_TRUST and f1 <= f0 + noise)):
            return False
        x, f0 = cand, f1
        return True

    if DERIV_STEP * np.sqrt(np.max(np.diag(Hf))) <= DERIV_TRUST:
        tried(dz)  # lme4's gradient is accurate here
        return x, evals
    gz_tol = max(1e-7, noise / POLISH_H)
    for _ in range(POLISH_ITERATIONS):
        gz = np.empty(D.shape[1])
        for i in range(D.shape[1]):
            e = np.zeros(len(x))
            e[free] = POLISH_H * D[:, i]
            gz[i] = (devfun(x + e) - devfun(x - e)) / (2 * POLISH_H)
        evals += 2 * D.shape[1]
        if not np.all(np.isfinite(gz)) or np.max(np.abs(gz)) < gz_tol or not tried(gz):
            break
    return x, evals


def _unscaled_vcov(res: PirlsResult) -> np.ndarray:
    """``(R_X' R_X)^{-1}`` from a joint (u, beta) PIRLS factor."""
    RXinv = lower_inverse(res.RX)
    return RXinv.T @ RXinv


def _estimates(
    design: Design, response: GlmResponse, layout: ThetaLayout, nAGQ: int, theta: np.ndarray, beta: np.ndarray,
    objective: float, opt1: OptSummary, opt: OptSummary | None, derivs, report: ConvergenceReport | None,
    control: Control | None = None, pdev_tol: float | None = None,
) -> GlmmEstimates:  # fmt: skip
    pirls = Pirls(design, response, pdev_tol=pdev_tol)
    res = pirls.run(theta, beta)
    # factor of the joint system at the final working weights: condVar and (R_X'R_X)^-1
    sqrtw, wres = response.working(res.eta, res.mu)
    z = res.eta - response.offset + wres
    cp = crossproducts(design.blocks, design.X, z, sqrtw)
    f = factorize(cp, layout.lambdas(theta))
    if f is None:
        # separated data (the separation check names them afterwards): the diverging effects' rows have
        # working weights that underflow against the others' (their effects cancel at +-1e2); floored at
        # 1e-4 of the largest, those effects keep a huge variance (as lme4 reports one)
        floor = 1e-4 * float(np.max(sqrtw))
        cp = crossproducts(design.blocks, design.X, z, np.maximum(sqrtw, floor))
        f = factorize(cp, layout.lambdas(theta))
    if f is None:
        raise ModelError(f"the penalized weighted system is singular at the estimates (theta={theta})")
    RXinv = lower_inverse(fixef_precision_factor(f))
    vcov, source = RXinv.T @ RXinv, "RX"
    g = H = None
    if derivs is not None:
        g, H = derivs
        vh = _hessian_vcov(H, layout.size)
        if vh is not None:
            vcov, source = vh, "hessian"
        else:
            warn(
                "variance-covariance matrix computed from finite-difference Hessian is not positive definite "
                "or contains NA values: falling back to var-cov estimated from RX",
                ConvergenceWarning,
            )
    condvar = conditional_covariances(f, 1.0)
    b = [u @ lam.T for u, lam in zip(res.u, layout.lambdas(theta), strict=True)]
    return GlmmEstimates(
        nAGQ=nAGQ, theta=np.asarray(theta, float), beta=np.asarray(beta, float), u=res.u, b=b, condvar=condvar,
        vcov=vcov, vcov_source=source, objective=float(objective), eta=res.eta, mu=res.mu, response=response,
        opt_stage1=opt1, opt=opt, hessian=H, gradient=g, convergence=report, control=control,
    )  # fmt: skip


def _hessian_vcov(H: np.ndarray, n_theta: int) -> np.ndarray | None:
    """lme4's ``calc.vcov.hess``: 2 H^{-1} restricted to beta, or None when not positive definite."""
    if not np.all(np.isfinite(H)):
        return None
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None
    V = Hinv[n_theta:, n_theta:]
    V = V + V.T
    if V.size and np.linalg.eigvalsh(V).min() <= 0:
        return None
    return V


def _vector(value, size: int, what: str, names=()) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(value, float))
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be numbers, got {value!r}") from None
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        detail = f": {', '.join(names)}" if names else ""
        raise ArgumentError(f"{what} needs {size} finite value(s){detail}; got {arr.size}: {arr.tolist()}")
    return arr
