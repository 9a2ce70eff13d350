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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hierbayes._threads import single_thread_blas
from hierbayes._warnings import warn
from hierbayes.design import Design
from hierbayes.errors import ConvergenceWarning, ModelError
from hierbayes.families import Family
from hierbayes.glmm.agq import AgqDeviance, check_agq
from hierbayes.glmm.glm_family import GlmResponse, glm_response
from hierbayes.glmm.laplace import LaplaceDeviance, ThetaDeviance
from hierbayes.glmm.optimize import bobyqa
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.reml.convergence import ConvergenceReport, convergence_messages, derivatives
from hierbayes.reml.crossprod import crossproducts
from hierbayes.reml.objective import conditional_covariances, factorize, fixef_precision_factor, lower_inverse
from hierbayes.reml.optimize import OptSummary, minimize_theta
from hierbayes.reml.params import ThetaLayout

if TYPE_CHECKING:
    from hierbayes.fits.glmer import GlmerFit
    from hierbayes.model import Model

#: lme4's ``isSingular`` tolerance and glmerControl's ``boundary.tol``
SINGULAR_TOL = 1e-4
BOUNDARY_TOL = 1e-5
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


def fit_glmm(model: Model, nAGQ: int = 1, start: dict[str, Any] | None = None, warn: bool = True) -> GlmerFit:
    """Fit a GLMM by maximum likelihood (lme4's ``glmer``); what ``Model.fit("ml")`` calls.

    Parameters
    ----------
    model
        A :class:`hierbayes.Model` with a binomial, bernoulli or Poisson family.
    nAGQ
        0 (stage 1 only: beta estimated inside PIRLS), 1 (Laplace, default),
        or the number of adaptive Gauss-Hermite nodes for a model with a
        single scalar random effect.
    start
        ``{"theta": ..., "fixef": ...}`` starting values (lme4's ``start``).
    warn
        Issue singular-fit, convergence and overdispersion warnings.

    Returns
    -------
    GlmerFit

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> round(fit_glmm(m).loglik, 3)
    -92.026
    """
    from hierbayes.fits.glmer import GlmerFit

    with single_thread_blas():
        estimates = estimate_glmm(model.design, model.family, nAGQ=nAGQ, start=start)
    return GlmerFit(model, estimates, warn=warn)


def estimate_glmm(
    design: Design, family: Family, nAGQ: int = 1, start: dict[str, Any] | None = None, calc_derivs: bool = True
) -> GlmmEstimates:
    """The two-stage maximum-likelihood fit; returns the estimates (see :func:`fit_glmm`).

    With ``calc_derivs=False`` (bootstrap refits) the Hessian, the Newton
    polish and the convergence checks are skipped and vcov comes from R_X.
    """
    nAGQ = int(nAGQ)
    check_agq(design, nAGQ)
    start = dict(start or {})
    unknown = set(start) - {"theta", "fixef"}
    if unknown:
        raise ModelError(f"start takes 'theta' and 'fixef', not {', '.join(sorted(unknown))}")
    response = glm_response(design, family)
    layout = ThetaLayout(design.blocks)
    pirls = Pirls(design, response)
    theta0 = layout.start if start.get("theta") is None else _vector(start["theta"], layout.size, "start['theta']")
    stage1 = ThetaDeviance(design, response, pirls)
    if start.get("fixef") is not None and nAGQ == 0:
        raise ModelError("start['fixef'] cannot be used with nAGQ=0 (beta is estimated inside PIRLS there)")
    opt1 = minimize_theta(stage1, theta0, layout.lower)
    theta1 = _boundary(stage1, opt1.final, layout.lower, opt1.fmin)
    res1 = pirls.run(theta1, None)
    if nAGQ == 0:
        return _estimates(design, response, layout, 0, theta1, res1.beta, stage1(theta1), opt1, None, None, None)
    devfun = make_devfun(design, response, nAGQ, pirls)
    beta0 = res1.beta if start.get("fixef") is None else _vector(start["fixef"], design.p, "start['fixef']")
    se1 = np.sqrt(np.diag(_unscaled_vcov(res1)))
    steps = 0.2 * np.concatenate([np.full(layout.size, 0.1), np.minimum(se1, 10.0)])
    lower = np.concatenate([layout.lower, np.full(design.p, -np.inf)])
    opt = bobyqa(devfun, np.concatenate([theta1, beta0]), lower, np.maximum(steps, 1e-4))
    pars = _boundary(devfun, opt.final, lower, opt.fmin)
    free_theta = pars[: layout.size][layout.lower == 0]
    singular = bool(np.any(free_theta < SINGULAR_TOL))
    if not calc_derivs:
        return _estimates(design, response, layout, nAGQ, pars[: layout.size], pars[layout.size :], opt.fmin, opt1,
                          opt, None, None)  # fmt: skip
    g, H = derivatives(devfun, pars, np.full(len(pars), -np.inf), h=DERIV_STEP)  # lme4's deriv12
    report = None
    if not singular:  # lme4 skips the gradient checks on a boundary fit
        pars, g, H = _newton_polish(devfun, pars, lower, g, H)
        report = ConvergenceReport(g, H, np.arange(len(pars)), convergence_messages(g, H))
    objective = devfun(pars)
    return _estimates(design, response, layout, nAGQ, pars[: layout.size], pars[layout.size :], objective, opt1,
                      opt, (g, H), report)  # fmt: skip


def _newton_polish(devfun, x: np.ndarray, lower: np.ndarray, g: np.ndarray, H: np.ndarray, max_steps: int = 2):
    """Newton steps on the finite-difference derivatives, kept only when they lower the deviance.

    BOBYQA stops when the deviance stops improving by 1e-12 relative, which
    on a flat optimum can leave c(theta, beta) ~1e-5 from the minimiser; the
    derivatives (computed anyway, for vcov and the convergence checks) land
    on it. Skipped when the step is already negligible.
    """
    f0 = None
    for _ in range(max_steps):
        try:
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if np.max(np.abs(step)) < 1e-7 * max(1.0, np.max(np.abs(x))):
            break
        cand = x - step
        f0 = devfun(x) if f0 is None else f0
        f1 = devfun(cand)
        if np.any(cand < lower) or not f1 < f0:
            break
        x, f0 = cand, f1
        g, H = derivatives(devfun, x, np.full(len(x), -np.inf), h=DERIV_STEP)
    return x, g, H


def _boundary(fun, x: np.ndarray, lower: np.ndarray, fmin: float) -> np.ndarray:
    """lme4's ``check.boundary``: a theta within 1e-5 of its bound is moved there if that is no worse."""
    x = np.array(x, float)
    for i in np.flatnonzero(np.isfinite(lower) & (x - lower > 0) & (x - lower < BOUNDARY_TOL)):
        trial = x.copy()
        trial[i] = lower[i]
        if fun(trial) < fmin:
            x = trial
    return x


def _unscaled_vcov(res: PirlsResult) -> np.ndarray:
    """``(R_X' R_X)^{-1}`` from a joint (u, beta) PIRLS factor."""
    RXinv = lower_inverse(res.RX)
    return RXinv.T @ RXinv


def _estimates(
    design: Design, response: GlmResponse, layout: ThetaLayout, nAGQ: int, theta: np.ndarray, beta: np.ndarray,
    objective: float, opt1: OptSummary, opt: OptSummary | None, derivs, report: ConvergenceReport | None,
) -> GlmmEstimates:  # fmt: skip
    pirls = Pirls(design, response)
    res = pirls.run(theta, beta)
    # factor of the joint system at the final working weights: condVar and (R_X'R_X)^-1
    sqrtw, wres = response.working(res.eta, res.mu)
    z = res.eta - response.offset + wres
    cp = crossproducts(design.blocks, design.X, z, sqrtw)
    f = factorize(cp, layout, theta)
    if f is None:
        raise ModelError(f"the penalized weighted system is singular at the estimates (theta={theta})")
    RXinv = lower_inverse(fixef_precision_factor(f, cp))
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
    condvar = conditional_covariances(f, cp, layout, 1.0)
    b = [u @ lam.T for u, lam in zip(res.u, layout.lambdas(theta), strict=True)]
    return GlmmEstimates(
        nAGQ=nAGQ, theta=np.asarray(theta, float), beta=np.asarray(beta, float), u=res.u, b=b, condvar=condvar,
        vcov=vcov, vcov_source=source, objective=float(objective), eta=res.eta, mu=res.mu, response=response,
        opt_stage1=opt1, opt=opt, hessian=H, gradient=g, convergence=report,
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


def _vector(value, size: int, what: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, float))
    if arr.shape != (size,):
        raise ModelError(f"{what} needs {size} value(s), got {arr.size}")
    return arr
