"""Kenward-Roger's adjusted covariance and denominator df, as pbkrtest computes them.

pbkrtest (``vcovAdj``, ``Lb_ddf``, ``.KR_adjust``; Halekoh and Hojsgaard
2014, JSS 59(9)) writes the marginal covariance of y as
``Sigma = sum_r gamma_r G_r``: one G_r per element of each random term's
covariance matrix (``Z_g (I (x) E_ab) Z_g'``) and the identity for the residual
variance. With ``P_r = -X' S^-1 G_r S^-1 X``,
``Q_rs = X' S^-1 G_r S^-1 G_s S^-1 X`` and the expected information ``I_E``
of the gammas, the adjusted covariance is ``Phi_A = Phi + 2 Phi U Phi`` with
``U = sum_rs W_rs (Q_rs - P_r Phi P_s)`` and ``W = 2 I_E^{-1}``.

pbkrtest forms the n x n inverse of Sigma. Here every product is reduced to
(q + p)-square matrices with the Woodbury identity
``sigma^2 Sigma^-1 = I - Z Lambda K^-1 Lambda' Z'`` (``K = Lambda'Z'Z Lambda + I``),
so the cost does not grow with n beyond forming ``[Z X]'[Z X]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from hierbayes.errors import DataError, ModelError

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer


@dataclass(frozen=True)
class KRAdjustment:
    """pbkrtest's ``vcovAdj`` with its attributes.

    Attributes
    ----------
    vcov
        Unadjusted covariance of beta (Phi).
    vcov_adjusted
        Kenward-Roger adjusted covariance (Phi_A).
    P
        The matrices ``P_r`` (one p x p matrix per covariance parameter).
    W
        Twice the inverse expected information of the covariance parameters.
    """

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray


def _woodbury_products(fit: LmerFit):
    """``M = B'S^-1 B``, ``N = B'S^-2 B``, ``X'S^-3 X`` and ``tr(S^-2)`` for ``B = [Z X]``."""
    d = fit.design
    streamed = getattr(d, "streamed", None)
    if streamed is not None:
        raise DataError(f"Kenward-Roger needs Z'S^-2 Z and the like over the rows, which a fit from the "
                        f"{streamed.source} does not keep; use ddf='satterthwaite'")  # fmt: skip
    X, n = d.X, d.n
    Z = d.z_sparse()
    q = Z.shape[1]
    lams = fit.layout.lambdas(fit.estimates.theta)
    Lam = sp.block_diag([sp.kron(sp.eye(b.nlevels), lam) for b, lam in zip(d.blocks, lams, strict=True)]).toarray()
    s2 = fit.sigma**2
    C = (Z.T @ Z).toarray()
    ZX = np.asarray(Z.T @ X)
    XX = X.T @ X
    BB = np.block([[C, ZX], [ZX.T, XX]])
    R = Lam.T @ np.hstack([C, ZX])
    D = Lam.T @ C @ Lam
    cho = sla.cho_factor(D + np.eye(q))
    F = sla.cho_solve(cho, R)
    RtF = R.T @ F
    M = (BB - RtF) / s2
    N = (BB - 2 * RtF + F.T @ D @ F) / s2**2
    KiD = sla.cho_solve(cho, D)
    Fx, Rx = F[:, q:], R[:, q:]
    DFx = D @ Fx
    X3 = (XX - 3 * Rx.T @ Fx + 3 * Fx.T @ DFx - DFx.T @ KiD @ Fx) / s2**3
    trS2 = (n - 2 * np.trace(KiD) + np.sum(KiD * KiD.T)) / s2**2
    return M, N, X3, trS2, q


def _parameters(fit: LmerFit) -> list[list[tuple[np.ndarray, np.ndarray]] | None]:
    """Each covariance parameter's G_r as pairs (U, V) of Z column sets: ``G_r = sum Z_U Z_V'``; None = residual."""
    params: list = []
    offset = 0
    for b in fit.design.blocks:
        base = offset + np.arange(b.nlevels) * b.k
        for cols in b.bars:
            for j, cj in enumerate(cols):
                for ci in cols[j:]:
                    A, B = base + ci, base + cj
                    params.append([(A, A)] if ci == cj else [(A, B), (B, A)])
        offset += b.q
    params.append(None)
    return params


def vcov_adjusted(fit: LmerFit) -> KRAdjustment:
    """Kenward-Roger adjusted covariance of the fixed effects (pbkrtest's ``vcovAdj``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> adj = vcov_adjusted(fit)
    >>> bool((adj.vcov_adjusted.diagonal() >= adj.vcov.diagonal() - 1e-12).all())
    True
    """
    if not fit.reml:
        raise ModelError("Kenward-Roger's method needs a REML fit; refit with reml=True (or use ddf='satterthwaite')")
    if fit.design.weights is not None:
        raise ModelError(
            "Kenward-Roger's method is not available for a fit with prior weights (pbkrtest's formulas assume "
            "a residual covariance sigma^2 I); use ddf='satterthwaite'"
        )
    M, N, X3, trS2, q = _woodbury_products(fit)
    xs = slice(q, M.shape[0])
    Phi = fit.estimates.vcov
    params = _parameters(fit)
    k = len(params)
    P = []
    for g in params:
        P.append(-N[xs, xs] if g is None else -sum(M[xs, U] @ M[V, xs] for U, V in g))
    Q: dict[tuple[int, int], np.ndarray] = {}
    K = np.empty((k, k))
    for r, gr in enumerate(params):
        for s in range(r, k):
            gs = params[s]
            if gr is None:  # both residual (the residual is last)
                Q[r, s], K[r, s] = X3, trS2
            elif gs is None:
                Q[r, s] = sum(M[xs, U] @ N[V, xs] for U, V in gr)
                K[r, s] = sum(np.trace(N[np.ix_(V, U)]) for U, V in gr)
            else:
                Q[r, s] = sum(M[xs, U] @ M[np.ix_(V, U2)] @ M[V2, xs] for U, V in gr for U2, V2 in gs)
                K[r, s] = sum(np.sum(M[np.ix_(V, U2)] * M[np.ix_(U, V2)]) for U, V in gr for U2, V2 in gs)
            K[s, r] = K[r, s]
    IE = np.empty((k, k))
    for r in range(k):
        PhiPr = Phi @ P[r]
        for s in range(r, k):
            IE[r, s] = IE[s, r] = K[r, s] - 2 * np.sum(Phi * Q[r, s]) + np.sum(PhiPr * (P[s] @ Phi))
    condition = np.min(np.abs(np.linalg.eigvalsh(IE)))
    W = 2 * (np.linalg.inv(IE) if condition > 1e-10 else np.linalg.pinv(IE))
    W = (W + W.T) / 2
    U = np.zeros_like(Phi)
    for r in range(k - 1):
        for s in range(r + 1, k):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    U = U + U.T
    for r in range(k):
        U += W[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
    return KRAdjustment(vcov=Phi, vcov_adjusted=Phi + 2 * Phi @ U @ Phi, P=P, W=W)


def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kr_ddf(L: np.ndarray, adj: KRAdjustment) -> tuple[float, float]:
    """Kenward-Roger denominator df and F scaling factor for ``L beta = 0`` (pbkrtest's ``.KR_adjust``).

    ``L`` must have full row rank (q rows).
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = L.shape[0]
    Phi = adj.vcov
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    TPhi = Theta @ Phi
    us = [TPhi @ Pi @ Phi for Pi in adj.P]
    traces = [np.trace(u) for u in us]
    A1 = A2 = 0.0
    n = len(us)
    for i in range(n):
        for j in range(i, n):
            e = 1.0 if i == j else 2.0
            A1 += e * adj.W[i, j] * traces[i] * traces[j]
            A2 += e * adj.W[i, j] * np.sum(us[i] * us[j].T)
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    if abs(V0) < 1e-10:
        V0 = 0.0
    rho = _div_zero(1 - A2 / q, V1) ** 2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - A2 / q) / (df2 - 2)
    return float(df2), float(scaling)


def kr_f_test(L: np.ndarray, beta: np.ndarray, adj: KRAdjustment) -> tuple[float, float, int, float]:
    """Unscaled F (Wald with Phi_A over q), scaled F, q and ddf (pbkrtest's ``KRmodcomp`` on a matrix)."""
    L = _full_row_rank(np.atleast_2d(np.asarray(L, dtype=float)))
    q = L.shape[0]
    ddf, scaling = kr_ddf(L, adj)
    Lb = L @ beta
    F_unscaled = float(Lb @ np.linalg.solve(L @ adj.vcov_adjusted @ L.T, Lb)) / q
    return F_unscaled, scaling * F_unscaled, q, ddf


def _full_row_rank(L: np.ndarray) -> np.ndarray:
    rank = np.linalg.matrix_rank(L)
    if rank == L.shape[0]:
        return L
    Q, _ = np.linalg.qr(L.T)
    return Q[:, :rank].T
