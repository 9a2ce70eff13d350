"""Satterthwaite's denominator degrees of freedom, as lmerTest computes them.

The variance parameters are ``varpar = (theta, sigma)``. lmerTest takes

* the Hessian ``H`` of the deviance in varpar (the REML criterion for REML
  fits, with sigma not profiled out), and ``vcov(varpar) = 2 H^+`` (the
  Moore-Penrose inverse over the eigenvalues above 1e-8);
* the Jacobian of ``vcov(beta) = sigma^2 R_X^{-1} R_X^{-T}`` in varpar,

both by numDeriv's Richardson extrapolation (:mod:`hierbayes.inference.numdiff`).
For a contrast ``l``: ``df = 2 (l' V l)^2 / (g' A g)`` with ``g_i = l' J_i l``.
For a q-row contrast matrix (an F test) the rows are rotated to the
eigenvectors of ``L V L'``, each gets its own df ``nu_m`` and the F test gets
``2E / (E - q)`` with ``E = sum nu_m / (nu_m - 2)`` (lmerTest's ``contestMD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from hierbayes._warnings import warn
from hierbayes.errors import ConvergenceWarning
from hierbayes.inference.numdiff import hessian, jacobian
from hierbayes.linalg import fixef_precision_factor, lower_inverse
from hierbayes.reml.refit import criterion_pieces

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

EIGEN_TOL = 1e-8
#: Relative steps of the numerical derivatives (numDeriv's ``d``). lmerTest uses
#: numDeriv's default 1e-4 for both. With Richardson extrapolation over four
#: halvings the derivatives are as accurate at 1e-2 (truncation error of order
#: h^8) and far less exposed to rounding: at 1e-4 the last halving of the step
#: of a small off-diagonal theta (0.015 on sleepstudy) leaves second differences
#: of 1e-12 against a deviance known to 1e-13. At lme4's estimates the df then
#: agree with lmerTest's to about 1e-8. With equal steps the Jacobian reuses the
#: factorisations of the Hessian's diagonal, and steps in sigma reuse theta's.
HESSIAN_STEP = 1e-2
JACOBIAN_STEP = 1e-2
_LOG2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class VarparDerivatives:
    """What Satterthwaite's method needs about the variance parameters.

    Attributes
    ----------
    varpar
        ``(theta, sigma)`` at the estimates; with a residual structure ``(theta, phi, sigma)``.
    names
        theta's names (the structure's) and ``"sigma"``.
    hessian
        Hessian of the deviance in varpar.
    vcov_varpar
        ``2 H^+`` (lmerTest's ``vcov_varpar``).
    jacobian
        Derivative of vcov(beta) in each varpar, shape (len(varpar), p, p)
        (lmerTest's ``Jac_list``).
    messages
        lmerTest's warnings about negative or zero Hessian eigenvalues.
    """

    varpar: np.ndarray
    names: list[str]
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    messages: list[str] = field(default_factory=list)


def _pieces_cache(fit: LmerFit):
    """``criterion_pieces`` at theta, remembered: perturbing sigma alone needs no new factorisation."""
    objective, cache = fit.devfun, {}

    def pieces(theta: np.ndarray):
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in cache:
            cache[key] = criterion_pieces(objective, theta)
        return cache[key]

    return pieces


def varpar_deviance(fit: LmerFit, pieces=None):
    """lmerTest's ``devfun_vp``: the deviance (REML or ML) as a function of ``(theta, sigma)``."""
    n, p, reml = fit.nobs, fit.design.p, fit.reml  # nobs: rows with a positive prior weight
    ldw = fit.devfun.weights.ldw
    pieces = pieces or _pieces_cache(fit)

    def deviance(vp: np.ndarray) -> float:
        pc = pieces(vp[:-1])
        if pc is None:
            return np.inf
        s2 = vp[-1] ** 2
        dev = pc.logdet_L - ldw + pc.pwrss / s2 + n * (_LOG2PI + np.log(s2))
        if reml:
            dev += pc.logdet_RX - p * (_LOG2PI + np.log(s2))
        return dev

    return deviance


def varpar_derivatives(fit: LmerFit) -> VarparDerivatives:
    """Hessian of the deviance and Jacobian of vcov(beta) in ``(theta, sigma)`` (lmerTest's ``as_lmerModLT``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> d = varpar_derivatives(fit)
    >>> d.names, d.jacobian.shape
    (['Subject.(Intercept)', 'sigma'], (2, 2, 2))
    """
    p = fit.design.p
    if getattr(fit, "structure", None) is not None:
        return _structured_derivatives(fit)
    vp = np.append(fit.estimates.theta, fit.sigma)
    pieces = _pieces_cache(fit)
    H = hessian(varpar_deviance(fit, pieces), vp, d=HESSIAN_STEP)
    return _derivatives(H, vp, [*fit.layout.names, "sigma"], p, lambda v: (v[:-1], v[-1]), pieces)


def _structured_derivatives(fit: LmerFit) -> VarparDerivatives:
    """With a residual structure: varpar = ``(theta, phi, sigma)``, phi the structure's unconstrained parameters.

    The deviance at ``(theta, phi, sigma)`` is the whitened data's (its
    ``log|R(phi)|`` included) and vcov(beta) is ``sigma^2 R_X^{-1} R_X^{-T}``
    of the whitened data, so the structure's parameters carry their own
    uncertainty into the df, as the SDs do (the Satterthwaite df do not depend
    on the parameterisation of phi).
    """
    obj = fit.devfun_structured
    nt, p, n, reml = obj.ntheta, fit.design.p, fit.design.n, fit.reml
    cache: dict = {}

    def pieces(v: np.ndarray):  # v = (theta, phi)
        key = np.asarray(v, dtype=float).tobytes()
        if key not in cache:
            view = obj.at(v)
            f = None if view is None else view.factor(v[:nt])
            cache[key] = None if f is None else _StructuredPieces(f, view.weights.ldw)
        return cache[key]

    def deviance(vp: np.ndarray) -> float:
        pc = pieces(vp[:-1])
        if pc is None:
            return np.inf
        s2 = vp[-1] ** 2
        dev = pc.logdet_L - pc.ldw + pc.pwrss / s2 + n * (_LOG2PI + np.log(s2))
        if reml:
            dev += pc.logdet_RX - p * (_LOG2PI + np.log(s2))
        return dev

    vp = np.r_[fit.estimates.theta, fit.estimates.phi, fit.sigma]
    H = hessian(deviance, vp, d=HESSIAN_STEP)
    names = [*fit.layout.names, *fit.structure.names, "sigma"]
    return _derivatives(H, vp, names, p, lambda v: (v[:-1], v[-1]), pieces)


class _StructuredPieces:
    """The criterion's pieces of the whitened data at one ``(theta, phi)`` (pwrss from the factor)."""

    def __init__(self, f, ldw: float):
        self.logdet_L, self.logdet_RX, self.pwrss, self.ldw = f.logdet_L, f.logdet_RX, float(f.r2), ldw
        self._f = f

    def unscaled_vcov(self) -> np.ndarray:
        RXinv = lower_inverse(fixef_precision_factor(self._f))
        return RXinv.T @ RXinv


def _derivatives(H: np.ndarray, vp: np.ndarray, names: list[str], p: int, split, pieces) -> VarparDerivatives:
    evals, evecs = np.linalg.eigh((H + H.T) / 2)
    messages = []
    neg, zero = evals < -EIGEN_TOL, np.abs(evals) < EIGEN_TOL
    if neg.any():
        messages.append(
            f"Model failed to converge with {neg.sum()} negative eigenvalue(s) of the deviance Hessian: "
            + " ".join(f"{v:.1e}" for v in evals[neg])
        )
    if zero.any():
        messages.append(
            f"Model may not have converged with {zero.sum()} eigenvalue(s) of the deviance Hessian close to zero: "
            + " ".join(f"{v:.1e}" for v in evals[zero])
        )
    pos = evals > EIGEN_TOL
    vcov_varpar = 2 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T

    def covbeta(v: np.ndarray) -> np.ndarray:
        rest, sigma = split(v)
        pc = pieces(rest)
        if pc is None:
            return np.full(p * p, np.nan)
        return (sigma**2 * pc.unscaled_vcov()).ravel()

    J = jacobian(covbeta, vp, d=JACOBIAN_STEP)  # (p*p, nvp)
    jac = np.stack([J[:, i].reshape(p, p) for i in range(len(vp))]) if p else np.zeros((len(vp), 0, 0))
    return VarparDerivatives(
        varpar=vp, names=names, hessian=H, vcov_varpar=vcov_varpar, jacobian=jac, messages=messages,
    )  # fmt: skip


def warn_messages(d: VarparDerivatives) -> None:
    for m in d.messages:
        warn(m, ConvergenceWarning)


def contrast_df(L: np.ndarray, vcov: np.ndarray, d: VarparDerivatives) -> float:
    """Satterthwaite df of one contrast ``L'beta`` (lmerTest's ``contest1D``)."""
    L = np.asarray(L, dtype=float).reshape(-1)
    var_con = L @ vcov @ L
    grad = np.einsum("i,kij,j->k", L, d.jacobian, L)
    denom = grad @ d.vcov_varpar @ grad
    return float(2 * var_con**2 / denom) if denom > 0 else np.inf


def t_test(L: np.ndarray, beta: np.ndarray, vcov: np.ndarray, d: VarparDerivatives) -> tuple[float, float, float]:
    """Estimate, standard error and Satterthwaite df of ``L'beta``."""
    L = np.asarray(L, dtype=float).reshape(-1)
    return float(L @ beta), float(np.sqrt(L @ vcov @ L)), contrast_df(L, vcov, d)


def f_stat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F built from q t-statistics with df ``nu`` (lmerTest's ``get_Fstat_ddf``)."""
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


def f_test(
    L: np.ndarray, beta: np.ndarray, vcov: np.ndarray, d: VarparDerivatives, eps: float = np.sqrt(np.finfo(float).eps)
) -> tuple[float, int, float]:
    """F value, numerator df and Satterthwaite denominator df of ``L beta = 0`` (lmerTest's ``contestMD``)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 1:
        est, se, df = t_test(L[0], beta, vcov, d)
        return (est / se) ** 2, 1, df
    VL = L @ vcov @ L.T
    evals, P = np.linalg.eigh((VL + VL.T) / 2)
    order = np.argsort(evals)[::-1]
    evals, P = evals[order], P[:, order]
    pos = evals > max(eps * evals[0], 0)
    q = int(pos.sum())
    PtL = (P.T @ L)[:q]
    if q == 1:
        est, se, df = t_test(PtL[0], beta, vcov, d)
        return (est / se) ** 2, 1, df
    t2 = (PtL @ beta) ** 2 / evals[:q]
    nu = np.array([2 * evals[m] ** 2 / _quad_grad(PtL[m], d) for m in range(q)])
    return float(t2.sum() / q), q, f_stat_ddf(nu)


def _quad_grad(l: np.ndarray, d: VarparDerivatives) -> float:
    g = np.einsum("i,kij,j->k", l, d.jacobian, l)
    return float(g @ d.vcov_varpar @ g)


def t_pvalue(t: float, df: float) -> float:
    return float(2 * stats.t.sf(abs(t), df))


def f_pvalue(F: float, df1: float, df2: float) -> float:
    return float(stats.f.sf(F, df1, df2))
