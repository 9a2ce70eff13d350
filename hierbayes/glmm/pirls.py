"""Penalized iteratively reweighted least squares: the conditional modes of a GLMM.

For fixed theta (and beta, or with beta estimated alongside), PIRLS finds
the spherical random effects ``u`` minimising the penalized deviance

    sum_i d_i(y_i, mu_i) + ||u||^2,   eta = offset + X beta + Z Lambda(theta) u,

by repeatedly solving the weighted penalized least-squares problem of
lme4's ``pwrssUpdate`` (Bates et al. 2015, sec. 5; MixedModels.jl's
``pirls!``): with working weights ``W`` and working response ``z`` at the
current ``eta``, the same blocked Cholesky factor the REML engine uses
(:func:`hierbayes.reml.objective.factorize`, on cross-products weighted by
sqrt(W)) gives the new ``u`` (and ``beta``). A step that increases the
penalized deviance is halved, as lme4 does.

lme4 stops when the relative change of the penalized deviance falls below
1e-7. Here the iteration runs until the linear predictor moves by less than
``tol`` (1e-12 by default), so the Laplace deviance built on the result is a
smooth function of (theta, beta) to about 1e-11: its finite-difference
Hessian (the fixed effects' covariance, as lme4 computes it) is then
accurate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.errors import ModelError
from hierbayes.glmm.response import GlmResponse
from hierbayes.glmm.system import SystemFactor, WeightedSystem
from hierbayes.linalg import ThetaLayout, factorize, fixef_precision_factor, solve
from hierbayes.linalg.crossprod import crossproducts

if TYPE_CHECKING:
    from hierbayes.design import Design

MAX_HALVINGS = 20


@dataclass(frozen=True)
class PirlsResult:
    """The conditional modes at one (theta, beta) and what the Laplace deviance needs.

    Attributes
    ----------
    theta, beta
        Where PIRLS ran (beta estimated jointly when ``joint``).
    u
        Spherical conditional modes, one (levels x k) array per block.
    eta, mu
        Linear predictor and mean at the modes.
    ldL2
        ``log|L_Z|^2`` of the last iteration's factor.
    RX
        ``R_X'`` of the last iteration's factor (joint PIRLS only; empty otherwise).
    sqrtw
        Square-root working weights used for that factor.
    sqr_u
        ``||u||^2``.
    iterations
        Number of PIRLS iterations.
    """

    theta: np.ndarray
    beta: np.ndarray
    joint: bool
    u: list[np.ndarray]
    eta: np.ndarray
    mu: np.ndarray
    ldL2: float
    RX: np.ndarray
    sqrtw: np.ndarray
    sqr_u: float
    iterations: int


class Pirls:
    """PIRLS for one design and response, remembering the last modes as the next start.

    Parameters
    ----------
    design
        The model's design (X and the random-effects blocks).
    response
        The response in lme4's form (:func:`hierbayes.glmm.response.glm_response`).
    tol
        Stop when the largest change of the linear predictor is below this.
    maxit
        Maximum number of iterations.
    pdev_tol
        Also stop when the penalized deviance changes by less than this
        (relative; lme4's ``tolPwrss`` criterion). For separated data, whose
        modes with beta (stage 1: beta estimated inside PIRLS) run off to
        infinity while the deviance levels off; None otherwise. In this mode a
        system that becomes singular (working weights underflowing) ends the
        iteration at the last good step. With beta fixed (stage 2) the modes
        are finite (the penalty bounds them) and the linear predictor's step
        decides, so that the deviance stays smooth for the Newton polish.
    """

    def __init__(
        self, design: Design, response: GlmResponse, tol: float = 1e-12, maxit: int = 100, pdev_tol: float | None = None
    ):
        self.design = design
        self.response = response
        self.layout = ThetaLayout(design.blocks)
        self.tol = tol
        self.maxit = maxit
        self.pdev_tol = pdev_tol
        self._empty_x = np.empty((design.n, 0))
        self._zb = np.zeros(design.n)  # Z b = Z Lambda u of the last modes: the random effects' part of eta
        self._beta: np.ndarray | None = None
        dense = WeightedSystem.fits(design)
        self._systems = {j: WeightedSystem(design, with_x=j) for j in (True, False)} if dense else None
        if self._systems is not None and self._systems[True].compiled:
            response.compile()
        # per block: (start, stop) in the coefficients, levels, k, codes, Z (a column when k == 1)
        self._blocks, start = [], 0
        for b in design.blocks:
            z = b.Z[:, 0] if b.k == 1 else b.Z
            self._blocks.append((start, start + b.q, b.nlevels, b.k, b.codes, z))
            start += b.q
        self._q = start

    def zb(self, lambdas: list[np.ndarray], u: list[np.ndarray]) -> np.ndarray:
        """``Z Lambda u`` for the fitting data (``lambdas``: each block's factor at theta)."""
        out = np.zeros(self.design.n)
        for lam, (_, _, _, k, codes, z), uu in zip(lambdas, self._blocks, u, strict=True):
            if k == 1:
                out += (lam[0, 0] * uu[codes, 0]) * z
            else:
                out += np.einsum("ij,ij->i", z, (uu @ lam.T)[codes])
        return out

    def start_eta(self) -> np.ndarray:
        """The linear predictor at R's starting means (``family$initialize``)."""
        r = self.response
        return r.family.link(r.mustart())

    def run(self, theta: np.ndarray, beta: np.ndarray | None = None, warm: bool = True) -> PirlsResult:
        """Conditional modes at theta, for fixed ``beta`` or (beta None) with beta estimated too.

        Parameters
        ----------
        theta
            Relative covariance parameters.
        beta
            Fixed effects held fixed (lme4's nAGQ >= 1 stage), or None to
            estimate them with u (lme4's nAGQ = 0 stage).
        warm
            Start from the random effects ``b = Lambda u`` of the previous
            call (else from R's starting means). Starting from ``b`` rather
            than from the spherical ``u`` keeps the linear predictor where the
            last modes put it: ``u`` carried to a theta five times larger
            (stage 1's small theta, then stage 2's) would multiply the
            effects by five and overflow ``exp(eta)``. A warm start that fails
            is retried from R's starting means.
        """
        warm = warm and (self._beta is not None or beta is not None)
        try:
            return self._run(theta, beta, warm)
        except (FloatingPointError, ModelError):
            if not warm:
                raise
            return self._run(theta, beta, False)

    def _run(self, theta: np.ndarray, beta: np.ndarray | None, warm: bool) -> PirlsResult:
        d, r = self.design, self.response
        theta = np.asarray(theta, float)
        lams = self.layout.lambdas(theta)
        q = self._q
        joint = beta is None
        X = d.X if joint else self._empty_x
        base = r.offset if joint else r.offset + d.X @ beta
        if warm:
            b_start = self._beta if joint else beta
            if b_start is None:
                b_start = np.zeros(d.p)
            eta = r.offset + d.X @ b_start + self._zb
            if not np.all(np.isfinite(eta)):
                eta = self.start_eta()
        else:
            eta = self.start_eta()
        mu = r.linkinv(eta)
        old_pdev = np.inf
        old_coef: np.ndarray | None = None
        old_step = np.inf
        coef = np.zeros(0)
        iterations = 0
        last = None
        for _ in range(self.maxit):
            iterations += 1
            sqrtw, wres = r.working(eta, mu)
            z = eta - base + wres
            f = self._factor(theta, lams, X, z, sqrtw, joint)
            if f is None:
                if self.pdev_tol is not None and joint and last is not None:
                    f, coef, eta, mu, sqrtw = last
                    break
                raise FloatingPointError(f"PIRLS: the penalized weighted system is singular at theta={theta}")
            u1, ur, bnew = f.u1, f.ur, f.beta
            coef = np.concatenate([u1.ravel(), ur, bnew])
            us = self._split(coef)
            new_eta = base + (X @ bnew if joint else 0.0) + self.zb(lams, us)
            mu = r.linkinv(new_eta)
            pdev = r.deviance(mu) + float(np.dot(coef[:q], coef[:q]))
            halvings = 0
            while (not np.isfinite(pdev) or pdev > old_pdev * (1 + 1e-12)) and old_coef is not None:
                if halvings == MAX_HALVINGS:
                    raise ModelError(
                        "PIRLS step-halvings failed to reduce the deviance (lme4's pwrssUpdate error); "
                        "rescale the predictors or simplify the random effects"
                    )
                coef = 0.5 * (coef + old_coef)
                us = self._split(coef)
                new_eta = base + (X @ coef[q:] if joint else 0.0) + self.zb(lams, us)
                mu = r.linkinv(new_eta)
                pdev = r.deviance(mu) + float(np.dot(coef[:q], coef[:q]))
                halvings += 1
            step = np.max(np.abs(new_eta - eta)) if d.n else 0.0
            eta = new_eta
            # the penalized deviance is flat at the mode: judge convergence by the step, not by pdev;
            # a step that stops shrinking far below 1e-6 is rounding noise
            if step < self.tol or (step < 1e-7 and step >= old_step):
                break
            # Fisher scoring can cycle about the mode where the observed information is far from the expected
            # (Poisson with the sqrt link: twice it): then stop, as lme4 does, on the penalized deviance
            if step >= old_step and abs(old_pdev - pdev) <= 1e-12 * abs(pdev):
                break
            if self.pdev_tol is not None and joint and abs(old_pdev - pdev) <= self.pdev_tol * (abs(pdev) + 0.1):
                break
            last = (f, coef, eta, mu, sqrtw)
            old_pdev, old_coef, old_step = pdev, coef, step
        else:
            raise ModelError(f"PIRLS did not converge in {self.maxit} iterations at theta={theta}")
        us = self._split(coef)
        beta_out = coef[q:] if joint else np.asarray(beta, float)
        self._zb = eta - base - (X @ beta_out if joint else 0.0)
        if joint:
            self._beta = beta_out
        return PirlsResult(
            theta=theta, beta=beta_out, joint=joint, u=us, eta=eta, mu=mu, ldL2=f.logdet_L, RX=f.RX, sqrtw=sqrtw,
            sqr_u=float(np.dot(coef[:q], coef[:q])), iterations=iterations,
        )  # fmt: skip

    def _factor(self, theta, lams, X, z, sqrtw, joint: bool) -> SystemFactor | None:
        if self._systems is not None:
            return self._systems[joint].factor(lams, z, sqrtw)
        # very large crossed designs: the REML engine's sparse cross-products
        cp = crossproducts(self.design.blocks, X, z, sqrtw)
        f = factorize(cp, lams)
        if f is None:
            return None
        u1, ur, beta = solve(f)
        return SystemFactor(f.logdet_L, u1, ur, beta, fixef_precision_factor(f))

    def _split(self, coef: np.ndarray) -> list[np.ndarray]:
        """Coefficients (u1, ur, beta) -> u per block (levels x k)."""
        return [coef[a:e].reshape(nl, k) for a, e, nl, k, _, _ in self._blocks]
