"""GLMMs whose family has a parameter of its own: negative binomial theta (``glmer.nb``), Gamma/IG dispersion.

The deviance is a function of ``c(theta, beta, log(par))``, ``par`` the
family's :attr:`~hierbayes.families.Family.ml_parameter`:

* conditional modes by PIRLS with the family at ``par`` and prior weights
  times :meth:`~hierbayes.families.Family.mode_weight_scale` (``1 / phi``
  for a dispersion family, so that PIRLS' penalized deviance is
  ``-2 log p(y, u)`` up to a constant and its minimiser the exact mode);
* ``-2 sum log p(y | u~) + ||u~||^2 + log|L|^2``, with L the Cholesky factor
  of ``I + Lambda' Z' W Z Lambda`` at the expected (PIRLS) weights for
  families without ``observed_laplace`` (lme4's ``glmer.nb``: its Laplace
  approximation, at theta) or at the observed information
  (:meth:`~hierbayes.families.Family.observed_weights`; the exact Laplace
  approximation that glmmTMB maximises) for Gamma and inverse Gaussian.

It is minimised jointly over all parameters (lme4's ``glmer.nb`` alternates
a one-dimensional search over theta with glmer fits at fixed theta; the
joint optimum is the same point, reached in one BOBYQA run), after lme4's
first stage at a moment estimate of ``par``, and polished by Newton steps
(:func:`hierbayes.glmm.fit._polish`). The fixed effects' covariance is
``2 H^{-1}`` of the finite-difference Hessian in all parameters, restricted
to beta (lme4 and glmmTMB alike; for ``glmer.nb`` lme4 holds theta fixed,
which changes the SEs by a relative 1e-3 or less on its examples).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from hierbayes._warnings import warn
from hierbayes.errors import ArgumentError, ConvergenceWarning, EstimationError, ModelError
from hierbayes.families import Family
from hierbayes.glmm.fit import (
    DERIV_STEP,
    REDERIVE,
    GlmmEstimates,
    _estimates,
    _polish,
    _stage1,
    _unscaled_vcov,
    prepare_stages,
)
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse
from hierbayes.linalg import ThetaLayout
from hierbayes.optim import Control, bobyqa
from hierbayes.optim.convergence import ConvergenceReport, controlled_messages, derivatives

if TYPE_CHECKING:
    from hierbayes.design import Design


#: the family parameter's search range on the log scale (theta or phi from 1e-8 to 1e8)
LOG_PAR_BOUND = 8 * np.log(10.0)
#: PIRLS iterations: Fisher scoring on a non-canonical link (NB with small theta) converges linearly, ~100 steps
PIRLS_MAXIT = 2000
#: dense observed-information log-determinant only up to this many random effects (negative weights)
MAX_DENSE_Q = 4000


def _scaled(response: GlmResponse, family: Family) -> GlmResponse:
    """The response PIRLS works on: the family at its parameter, prior weights times its mode scale."""
    return GlmResponse(family, response.y, response.wt * family.mode_weight_scale(), response.n, response.offset)


class FamilyParDeviance:
    """The Laplace deviance as a function of ``c(theta, beta, log(par))`` (or ``c(theta, beta)``, par fixed).

    Parameters
    ----------
    design
        The model's design.
    response
        The response in lme4's form; its family's parameter is ignored.
    family
        The family; a parameter value fixes it (else it is the last parameter).
    pirls
        A PIRLS to reuse (its response is replaced at each evaluation).

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.glmm.response import glm_response
    >>> m = hb.Model("TICKS ~ YEAR + (1 | LOCATION)", hb.datasets.load("grouseticks"),
    ...              family=hb.negative_binomial(2.0))
    >>> f = FamilyParDeviance(m.design, glm_response(m.design, m.family), m.family)
    >>> round(f([0.8, 0.4, 1.1, -1.0]), 3)
    1862.169
    """

    def __init__(self, design: Design, response: GlmResponse, family: Family, pirls: Pirls | None = None):
        self.design = design
        self.response = response
        self.family = family
        self.free = family.parameter is None
        self.layout = ThetaLayout(design.blocks)
        self.n_theta = self.layout.size
        self.pirls = pirls or Pirls(
            design, _scaled(response, family if not self.free else family.with_parameter(1)), maxit=PIRLS_MAXIT
        )
        self.last: PirlsResult | None = None

    def family_at(self, pars) -> Family:
        pars = np.asarray(pars, float)
        return self.family.with_parameter(np.exp(pars[-1])) if self.free else self.family

    def modes(self, pars) -> tuple[PirlsResult, Family]:
        pars = np.asarray(pars, float)
        fam = self.family_at(pars)
        theta = pars[: self.n_theta]
        beta = pars[self.n_theta : self.n_theta + self.design.p]
        self.pirls.response = _scaled(self.response, fam)
        res = self.pirls.run(theta, beta)
        self.last = res
        return res, fam

    def __call__(self, pars) -> float:
        try:
            res, fam = self.modes(pars)
            return self.value(res, fam)
        except (FloatingPointError, ModelError):
            return np.inf

    def value(self, res: PirlsResult, fam: Family) -> float:
        r = self.response
        with np.errstate(all="ignore"):  # a NaN term (a mean outside the family's range) makes the value inf
            loglik = float(np.sum(fam.loglik_terms(res.mu, r.y, r.wt, fam.aic_setup(r.y, r.wt, r.n))))
        ld = self.observed_logdet(res, fam) if fam.observed_laplace else res.ldL2
        out = ld + res.sqr_u - 2.0 * loglik
        return float(out) if np.isfinite(out) else np.inf

    def observed_logdet(self, res: PirlsResult, fam: Family) -> float:
        """``log|I + Lambda' Z' W Z Lambda|`` at the observed information W of the modes."""
        r = self.response
        w = fam.observed_weights(r.y, res.mu, res.eta, r.wt * fam.mode_weight_scale())
        if not np.all(np.isfinite(w)):
            return np.inf
        lams = self.layout.lambdas(res.theta)
        if np.all(w >= 0):
            f = self.pirls._factor(res.theta, lams, self.pirls._empty_x, np.zeros(self.design.n), np.sqrt(w), False)
            return np.inf if f is None else float(f.logdet_L)
        # some rows' observed information is negative (inverse Gaussian, log link, y < mu / 2): dense
        A = self._dense_z_lambda(lams)
        sign, ld = np.linalg.slogdet(np.eye(A.shape[1]) + A.T @ (w[:, None] * A))
        return float(ld) if sign > 0 else np.inf

    def _dense_z_lambda(self, lams) -> np.ndarray:
        q = sum(b.q for b in self.design.blocks)
        if q > MAX_DENSE_Q:
            raise EstimationError(
                f"the observed information is negative for some rows and the model has {q} random effects "
                f"(more than {MAX_DENSE_Q}) for the dense log-determinant; use the inverse Gaussian's 1/mu^2 link"
            )
        A = np.zeros((self.design.n, q))
        start = 0
        rows = np.arange(self.design.n)
        for b, lam in zip(self.design.blocks, lams, strict=True):
            zl = b.Z @ lam  # n x k: row i's coefficients on its level's k effects
            for j in range(b.k):
                A[rows, start + b.codes * b.k + j] = zl[:, j]
            start += b.q
        return A


def _moment_parameter(family: Family, response: GlmResponse, mu: np.ndarray, p: int) -> float:
    """A start for the family's parameter from fitted means: Pearson phi, or theta by moments."""
    y, wt = response.y, response.wt
    if family.ml_parameter == "dispersion":
        v = family.with_parameter(1.0).variance(mu)
        phi = float(np.sum(wt * (y - mu) ** 2 / v) / max(len(y) - p, 1))
        return float(np.clip(phi, 1e-6, 1e6))
    excess = float(np.sum(wt * ((y - mu) ** 2 - mu)))
    theta = float(np.sum(wt * mu * mu)) / excess if excess > 0 else 1e3
    return float(np.clip(theta, 1e-3, 1e3))


def estimate_family_par_glmm(
    design: Design,
    family: Family,
    nAGQ: int = 1,
    start=None,
    calc_derivs: bool = True,
    control: Control | None = None,
    verbose: int = 0,
) -> GlmmEstimates:
    """Maximum likelihood (Laplace) for a family with its own parameter; returns the estimates.

    The estimates' ``response`` carries the family at the estimated
    parameter (``family.theta``, ``family.dispersion``); ``family_par_free``
    says whether it was estimated (it counts in logLik's df).
    """
    if nAGQ != 1:
        raise ArgumentError(
            f"nAGQ={nAGQ}: the {family.name} family is fitted by the Laplace approximation only (nAGQ=1); "
            "lme4 allows nAGQ > 1 only for families without a scale parameter"
        )
    control, calc_derivs, response, layout, theta0, fixef_start, s1, s2 = prepare_stages(
        design, family, start, nAGQ, control, verbose, calc_derivs
    )
    free = family.parameter is None
    par = family.parameter
    if free:  # lme4's first stage at a moment estimate of the parameter, found from a first pass at par = 1
        fam1 = family.with_parameter(1.0)
        _, _, _, _, res0 = _stage1(design, _scaled(response, fam1), layout, theta0, s1, control, None, PIRLS_MAXIT)
        par = _moment_parameter(family, response, res0.mu, design.p)
    fam0 = family.with_parameter(par)
    scaled0 = _scaled(response, fam0)
    pirls, _, opt1, theta1, res1 = _stage1(design, scaled0, layout, theta0, s1, control, None, PIRLS_MAXIT)
    devfun = FamilyParDeviance(design, response, family, pirls)
    beta0 = res1.beta if fixef_start is None else fixef_start
    se1 = np.sqrt(np.diag(_unscaled_vcov(res1)))
    steps = 0.2 * np.concatenate([np.full(layout.size, 0.1), np.minimum(se1, 10.0), [0.2] * free])
    lower = np.concatenate([layout.lower, np.full(design.p, -np.inf), [-LOG_PAR_BOUND] * free])
    x0 = np.concatenate([theta1, beta0, [np.log(par)] * free])
    opt = bobyqa(devfun, x0, lower, np.maximum(steps, 1e-4), settings=s2)
    if not np.isfinite(opt.fmin):
        raise EstimationError("the deviance is not finite at any (theta, beta, family parameter) the optimizer tried")
    if s2.name is not None and not opt.converged:
        warn(f"convergence code from {s2.name}: {opt.message}", ConvergenceWarning)
    pars = opt.final
    g = H = report = None
    if calc_derivs and s2.name is not None:
        g, H = derivatives(devfun, pars, np.full(len(pars), -np.inf), h=DERIV_STEP)
        polished, evals = _polish(devfun, pars, lower, g, H, opt.fmin)
        if evals and not np.array_equal(polished, pars):
            delta = polished - pars
            moved = float(np.sqrt(max(delta @ H @ delta, 0.0)))
            pars = polished
            opt = dataclasses.replace(opt, final=pars.copy(), feval=opt.feval + evals,
                                      message=opt.message + "; polished by Newton steps")  # fmt: skip
            if moved > REDERIVE:
                g, H = derivatives(devfun, pars, np.full(len(pars), -np.inf), h=DERIV_STEP)
        free_theta = pars[: layout.size][layout.lower == 0]
        if not np.any(free_theta < control.check_conv_singular.tol):
            report = ConvergenceReport(g, H, np.arange(len(pars)), controlled_messages(g, H, pars, control))
            opt = dataclasses.replace(opt, messages=tuple(report.messages))
    objective = devfun(pars)
    fam = devfun.family_at(pars)
    theta, beta = pars[: layout.size], pars[layout.size : layout.size + design.p]
    est = _estimates(design, _scaled(response, fam), layout, 1, theta, beta, objective, opt1, opt, None, report,
                     control)  # fmt: skip
    vcov, source = est.vcov, est.vcov_source
    if H is not None:
        vh = _beta_vcov(H, layout.size, design.p)
        if vh is not None:
            vcov, source = vh, "hessian"
        else:
            warn(
                "variance-covariance matrix computed from finite-difference Hessian is not positive definite "
                "or contains NA values: falling back to var-cov estimated from RX",
                ConvergenceWarning,
            )
    final_response = GlmResponse(fam, response.y, response.wt, response.n, response.offset)
    return dataclasses.replace(est, response=final_response, vcov=vcov, vcov_source=source, hessian=H, gradient=g,
                               family_par_free=free)  # fmt: skip


def _beta_vcov(H: np.ndarray, n_theta: int, p: int) -> np.ndarray | None:
    """2 H^{-1} restricted to beta, or None when not positive definite."""
    if not np.all(np.isfinite(H)):
        return None
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None
    V = Hinv[n_theta : n_theta + p, n_theta : n_theta + p]
    V = V + V.T
    if V.size and np.linalg.eigvalsh(V).min() <= 0:
        return None
    return V
