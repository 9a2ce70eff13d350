"""Fit a linear mixed model by REML or ML: the engine's entry point.

``LmmObjective`` is lme4's ``mkLmerDevfun``: the criterion at any theta,
callable on its own. ``fit_lmm`` optimises it and collects the estimates in a
frozen ``LmmEstimates``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from hierbayes._threads import single_thread_blas
from hierbayes.design import Design
from hierbayes.reml.convergence import ConvergenceReport, check_derivatives
from hierbayes.reml.crossprod import CrossProducts, crossproducts
from hierbayes.reml.objective import (
    Factor,
    conditional_covariances,
    criterion,
    factorize,
    fixef_precision_factor,
    lower_inverse,
    solve,
)
from hierbayes.reml.optimize import OptSummary, minimize_theta
from hierbayes.reml.params import ThetaLayout

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
        y = design.y if design.offset is None else design.y - design.offset
        # The criterion is invariant to shifting y by any X @ b0 (beta absorbs it). Working with the OLS
        # residual keeps y'y in the stored cross-products on the scale of the residuals, so the penalized
        # RSS taken from the factor does not lose digits when y sits far from zero (e.g. mean 1e4 x sigma).
        self.beta0 = np.linalg.lstsq(design.X, y, rcond=None)[0] if design.p else np.zeros(0)
        self.cp: CrossProducts = crossproducts(design.blocks, design.X, y - design.X @ self.beta0)

    def __call__(self, theta) -> float:
        theta = np.asarray(theta, dtype=float)
        return criterion(factorize(self.cp, self.layout, theta), self.design.n, self.design.p, self.reml)

    def factor(self, theta) -> Factor | None:
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


def estimates_at(
    objective: LmmObjective, theta: np.ndarray, opt: OptSummary, convergence: ConvergenceReport | None = None
) -> LmmEstimates:
    """Estimates at a given theta (the optimum, or any theta for profiling)."""
    f = objective.factor(theta)
    if f is None:
        raise FloatingPointError(f"the penalized least-squares system is singular at theta={theta}")
    cp, d = objective.cp, objective.design
    u1, ur, beta = solve(f, cp)
    beta = beta + objective.beta0
    dof = d.n - d.p if objective.reml else d.n
    sigma = float(np.sqrt(f.r2 / dof))
    us = [u1, *_split(ur, d.blocks[1:])]
    b = [np.einsum("ij,lj->li", lam, u) for lam, u in zip(f.lambdas, us, strict=True)]
    RXinv = lower_inverse(fixef_precision_factor(f, cp))
    vcov = sigma**2 * RXinv.T @ RXinv
    condvar = conditional_covariances(f, cp, objective.layout, sigma)
    return LmmEstimates(
        reml=objective.reml, theta=f.theta, beta=beta, sigma=sigma, b=b, condvar=condvar, vcov=vcov,
        objective=criterion(f, d.n, d.p, objective.reml), pwrss=f.r2, logdet_L=f.logdet_L,
        logdet_RX=f.logdet_RX, opt=opt, convergence=convergence,
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


def fit_lmm(
    design: Design, reml: bool = True, start: np.ndarray | None = None, optimizer: str = "bobyqa"
) -> LmmEstimates:
    """Fit by REML (default) or ML.

    Parameters
    ----------
    design
        The model's design.
    reml
        REML (True) or maximum likelihood (False).
    start
        Starting theta; lme4's default (:func:`lme4_start`) when None.
    optimizer
        ``"bobyqa"`` (default) or ``"lbfgsb"``.
    """
    objective = LmmObjective(design, reml)
    layout = objective.layout
    x0 = lme4_start(design) if start is None else np.asarray(start, float)
    # a large dense part (crossed designs) is factored at every evaluation: keep BLAS on one thread
    threads = single_thread_blas() if objective.cp.qr >= DENSE_SINGLE_THREAD else contextlib.nullcontext()
    with threads:
        opt = minimize_theta(objective, x0, layout.lower, method=optimizer)
    theta, report = opt.final, None
    singular = np.any(theta[layout.lower == 0] < SINGULAR_TOL)
    if design.n < CHECK_MAX_NOBS and not singular:  # lme4 does not check derivatives at a boundary fit
        report = check_derivatives(objective, theta, layout.lower)
    return estimates_at(objective, theta, opt, report)


def _split(u: np.ndarray, blocks) -> list[np.ndarray]:
    out, start = [], 0
    for b in blocks:
        out.append(u[start : start + b.q].reshape(b.nlevels, b.k))
        start += b.q
    return out
