"""The profiled deviance and REML criterion as functions of theta.

For a given theta the penalized least-squares system

    [L'Z'ZL + I   L'Z'X   L'Z'y]
    [X'ZL         X'X     X'y  ]   = L L'   (L lower triangular)
    [y'ZL         y'X     y'y  ]

is factored blockwise (Bates et al. 2015, JSS 67(1), sec. 3; MixedModels.jl).
The first random-effects block is block diagonal, one small Cholesky per
level; the rest of the system ("the rest": remaining blocks, X and y) is
dense. From the factor:

* ``log|L_Z|^2``   twice the log-diagonal of the Z part,
* ``log|R_X|^2``   twice the log-diagonal of the X part,
* ``r^2``          the penalized residual sum of squares (last diagonal
  element squared),

and the profiled criteria are

    ML:   log|L_Z|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L_Z|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p))).

With prior weights w (lme4's ``weights=``: the residual variance of row i is
``sigma^2 / w_i``) the rows of Z, X and y are multiplied by ``sqrt(w)``, n
counts the rows with a positive weight, and ``sum(log w)`` over those rows is
subtracted from both criteria (lme4's ``ldW``), so that scaling every weight
by a constant changes only sigma. A row of weight zero contributes nothing:
the fit is that of the data without it (lme4 1.1-31 returns an infinite
criterion instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dtrtri as _trtri

from hierbayes.reml.crossprod import CrossProducts
from hierbayes.reml.params import ThetaLayout

_LOG2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class Factor:
    """The blocked Cholesky factor at one theta.

    Attributes
    ----------
    theta
        Where the factor was computed.
    lambdas
        Each block's k x k relative covariance factor.
    L11inv
        Inverses of the first block's per-level Cholesky factors (nl1, k1, k1).
    T
        Per-level ``lambda1 @ L11^{-T}`` (nl1, k1, k1).
    Lrr
        Dense Cholesky factor of the rest (r x r), lower triangular.
    logdet_L, logdet_RX, r2
        ``log|L_Z|^2``, ``log|R_X|^2`` and the penalized RSS.
    """

    theta: np.ndarray
    lambdas: list[np.ndarray]
    L11inv: np.ndarray
    T: np.ndarray
    cp: CrossProducts = field(repr=False)
    blocks: tuple = field(repr=False)
    Lrr: np.ndarray
    logdet_L: float
    logdet_RX: float
    r2: float

    @cached_property
    def Ld(self) -> np.ndarray:
        """Dense part ([X y] rows) of the rest-by-first-block factor, (p + 1) x q1."""
        nl, k = self.T.shape[0], self.T.shape[1]
        return np.einsum("cla,lab->clb", self.cp.D, self.T).reshape(self.cp.D.shape[0], nl * k)

    @cached_property
    def Ls(self) -> sp.csr_matrix | None:
        """Sparse part (other blocks' rows) of the rest-by-first-block factor, qr x q1; None with one block."""
        if not self.cp.qr:
            return None
        lam_r = sp.block_diag(
            [block_lambda(lam, b.nlevels) for lam, b in zip(self.lambdas[1:], self.blocks[1:], strict=True)],
            format="csr",
        )
        return (lam_r.T @ self.cp.S @ block_lambda_per_level(self.T)).tocsr()


def _sandwich_rest(M: np.ndarray, lambdas: list[np.ndarray], blocks: tuple, qr: int) -> None:
    """In place: M <- Lr' M Lr, with Lr = blockdiag(Lambda_j for the rest blocks, identity for X and y)."""
    start = 0
    for lam, b in zip(lambdas, blocks, strict=True):
        stop = start + b.q
        if b.k == 1:
            M[start:stop, :] *= lam[0, 0]
            M[:, start:stop] *= lam[0, 0]
        else:
            rows = M[start:stop, :].reshape(b.nlevels, b.k, -1)
            M[start:stop, :] = np.einsum("ba,lbc->lac", lam, rows).reshape(b.q, -1)
            cols = M[:, start:stop].reshape(-1, b.nlevels, b.k)
            M[:, start:stop] = np.einsum("clb,ba->cla", cols, lam).reshape(-1, b.q)
        start = stop


def block_lambda(lam: np.ndarray, nlevels: int) -> sp.spmatrix:
    """Block-diagonal sparse matrix with ``nlevels`` copies of ``lam``."""
    k = lam.shape[0]
    if k == 1:
        return sp.diags(np.full(nlevels, lam[0, 0]))
    data = np.broadcast_to(lam, (nlevels, k, k)).copy()
    return sp.bsr_matrix((data, np.arange(nlevels), np.arange(nlevels + 1)), shape=(nlevels * k, nlevels * k))


def factorize(cp: CrossProducts, layout: ThetaLayout, theta: np.ndarray) -> Factor | None:
    """Blocked Cholesky factor at theta, or None when the system is not positive definite."""
    lambdas = layout.lambdas(theta)
    first = _first_block(cp, lambdas[0])
    if first is None:
        return None
    L11inv, T, logdet_11 = first
    nl, k = cp.nl1, cp.k1
    # W = T T' per level; the rest's Schur complement is
    #   Mrr = Lr' (Arr - [S; D] W [S; D]') Lr + I_Z   (Lr = blockdiag(Lambda_rest, I))
    W = np.einsum("lab,lcb->lac", T, T)
    Mrr = cp.Arr.copy()
    qr = cp.qr
    Dflat = cp.D.reshape(cp.D.shape[0], nl * k)
    WD = np.einsum("lab,clb->lac", W, cp.D).reshape(nl * k, -1)  # W D' (q1 x (p+1))
    Mrr[qr:, qr:] -= Dflat @ WD
    if qr:
        pat = cp.pattern
        Mrr.ravel()[:] -= pat.P @ W.ravel()  # ravel is a view: Mrr is C-contiguous
        SWD = np.asarray(cp.S @ WD)
        Mrr[:qr, qr:] -= SWD
        Mrr[qr:, :qr] -= SWD.T
        _sandwich_rest(Mrr, lambdas[1:], layout.blocks[1:], qr)
        Mrr[np.arange(qr), np.arange(qr)] += 1.0
    m = qr + cp.p
    y_row = Mrr[m, :m].copy()
    # Mrr is symmetric, so its transpose is the same matrix in Fortran order: no copy for LAPACK
    Lrr, info = _potrf(Mrr.T, lower=True, clean=True, overwrite_a=True)
    if info == m + 1:
        # only the response's pivot failed: [Z X] fit it exactly (r2 = 0, an infinite criterion); the factor
        # of [Z X] is complete, its last row a forward substitution (PIRLS and the GLMM's vcov use it)
        Lrr[m, :m] = sla.solve_triangular(Lrr[:m, :m], y_row, lower=True, check_finite=False)
        Lrr[m, m] = 0.0
    elif info != 0:
        return None
    diag = np.diagonal(Lrr)
    r2 = diag[-1] ** 2
    if not (diag[:m] > 0).all() or not np.isfinite(r2):
        return None
    logs = np.log(diag[:m])
    return Factor(
        theta=np.array(theta, dtype=float),
        lambdas=lambdas,
        L11inv=L11inv,
        T=T,
        cp=cp,
        blocks=layout.blocks,
        Lrr=Lrr,
        logdet_L=logdet_11 + 2.0 * logs[:qr].sum(),
        logdet_RX=2.0 * logs[qr:].sum(),
        r2=r2,
    )


def _first_block(cp: CrossProducts, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Per-level factors of the first block: L11^{-1}, T = lam L11^{-T}, log|L11|^2.

    Closed forms for k = 1 and k = 2 (the common cases) avoid the overhead of
    batched LAPACK calls on tiny matrices.
    """
    A = cp.A11
    k = cp.k1
    if k == 1:
        l11 = np.sqrt(lam[0, 0] ** 2 * A[:, 0, 0] + 1.0)
        inv = 1.0 / l11
        return inv[:, None, None], (lam[0, 0] * inv)[:, None, None], 2.0 * np.log(l11).sum()
    if k == 2:
        (a, _), (c, d) = lam  # lam = [[a, 0], [c, d]]
        a00, a01, a11 = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        # M = lam' A lam + I
        m00 = a * a * a00 + 2 * a * c * a01 + c * c * a11 + 1.0
        m01 = a * d * a01 + c * d * a11
        m11 = d * d * a11 + 1.0
        l00 = np.sqrt(m00)
        l10 = m01 / l00
        s = m11 - l10 * l10
        if np.any(s <= 0):
            return None
        l11 = np.sqrt(s)
        Linv = np.zeros((len(l00), 2, 2))
        Linv[:, 0, 0] = 1.0 / l00
        Linv[:, 1, 1] = 1.0 / l11
        Linv[:, 1, 0] = -l10 / (l00 * l11)
        # T = lam @ Linv'
        T = np.empty_like(Linv)
        T[:, 0, 0] = a * Linv[:, 0, 0]
        T[:, 0, 1] = a * Linv[:, 1, 0]
        T[:, 1, 0] = c * Linv[:, 0, 0]
        T[:, 1, 1] = c * Linv[:, 1, 0] + d * Linv[:, 1, 1]
        return Linv, T, 2.0 * (np.log(l00).sum() + np.log(l11).sum())
    M11 = np.einsum("ji,ljk,km->lim", lam, A, lam) + np.eye(k)
    try:
        L11 = np.linalg.cholesky(M11)
    except np.linalg.LinAlgError:
        return None
    L11inv = np.linalg.inv(L11)
    T = np.einsum("ij,lkj->lik", lam, L11inv)  # lam @ L11inv_l'
    return L11inv, T, 2.0 * np.log(np.diagonal(L11, axis1=1, axis2=2)).sum()


def block_lambda_per_level(T: np.ndarray) -> sp.spmatrix:
    """Block-diagonal sparse matrix of per-level k x k blocks ``T[l]``."""
    nl, k, _ = T.shape
    if k == 1:
        return sp.diags(T[:, 0, 0])
    return sp.bsr_matrix((T, np.arange(nl), np.arange(nl + 1)), shape=(nl * k, nl * k))


@dataclass(frozen=True)
class PriorWeights:
    """Prior weights as the criteria use them.

    Attributes
    ----------
    sqrtw
        Square roots of the weights, one per row (None without weights).
    n
        Rows with a positive weight (all rows without weights).
    ldw
        ``sum(log w)`` over those rows (lme4's ``ldW``; 0 without weights).
    """

    sqrtw: np.ndarray | None
    n: int
    ldw: float


def prior_weights(design) -> PriorWeights:
    """The prior weights of a design (lme4's ``weights=``), as the REML/ML criteria use them.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"), weights=[2.0] * 29 + [0.0])
    >>> w = prior_weights(d)
    >>> w.n, round(w.ldw, 4)
    (29, 20.1013)
    """
    w = getattr(design, "weights", None)
    if w is None:
        return PriorWeights(None, len(design.y), 0.0)
    w = np.asarray(w, dtype=float)
    pos = w > 0
    return PriorWeights(np.sqrt(w), int(pos.sum()), float(np.log(w[pos]).sum()))


def profiled_criterion(
    logdet_L: float, logdet_RX: float, r2: float, n: int, p: int, reml: bool, ldw: float = 0.0
) -> float:
    """The REML criterion or ML deviance from its pieces (n: rows with positive weight)."""
    if not r2 > 0 or not np.isfinite(r2):
        return np.inf
    if reml:
        nu = n - p
        return float(logdet_L + logdet_RX - ldw + nu * (1.0 + _LOG2PI + np.log(r2 / nu)))
    return float(logdet_L - ldw + n * (1.0 + _LOG2PI + np.log(r2 / n)))


def criterion(f: Factor | None, n: int, p: int, reml: bool, ldw: float = 0.0) -> float:
    """-2 log-likelihood (ML) or the REML criterion, profiled over beta and sigma."""
    if f is None:
        return np.inf
    return profiled_criterion(f.logdet_L, f.logdet_RX, f.r2, n, p, reml, ldw)


def solve(f: Factor, cp: CrossProducts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spherical random effects and fixed effects at the factor's theta.

    Returns
    -------
    u1, ur, beta
        u of the first block (nl1, k1), u of the other blocks (qr,) and beta (p,).
    """
    qr, p = cp.qr, cp.p
    m = qr + p
    # contiguous copies: SciPy's triangular solve is very slow on strided views
    x = sla.solve_triangular(np.asfortranarray(f.Lrr[:m, :m]), f.Lrr[m, :m], lower=True, trans="T", check_finite=False)
    ur, beta = x[:qr], x[qr:]
    rhs = f.Ld[-1] - f.Ld[:p].T @ beta
    if f.Ls is not None:
        rhs = rhs - f.Ls.T @ ur
    rhs = rhs.reshape(cp.nl1, cp.k1)
    u1 = np.einsum("lji,lj->li", f.L11inv, rhs)  # L11_l^{-T} rhs_l
    return u1, ur, beta


def fixef_precision_factor(f: Factor, cp: CrossProducts) -> np.ndarray:
    """R_X' (lower): ``vcov(beta) = sigma^2 (R_X' R_X)^{-1}``."""
    qr = cp.qr
    return np.asfortranarray(f.Lrr[qr : qr + cp.p, qr : qr + cp.p])


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverse of a lower-triangular matrix (LAPACK dtrtri)."""
    if L.shape[0] == 0:
        return np.zeros((0, 0))
    inv, info = _trtri(np.asfortranarray(L), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return np.tril(inv)


def conditional_covariances(f: Factor, cp: CrossProducts, layout: ThetaLayout, sigma: float) -> list[np.ndarray]:
    """lme4's ``condVar``: per block, per level, the k x k covariance of b given y.

    These are the diagonal blocks of ``sigma^2 Lambda (L_Z L_Z')^{-1} Lambda'``
    (uncertainty in beta is not included, as in lme4). With
    ``C = Lzz^{-1}`` (the other blocks' dense factor) and ``W = C Ls``, the
    first block's are ``L11^{-T} (I + W'W) L11^{-1}`` and the others' are
    blocks of ``C'C``.
    """
    qr = cp.qr
    nl, k = cp.nl1, cp.k1
    G = np.broadcast_to(np.eye(k), (nl, k, k)).copy()
    Linv = lower_inverse(f.Lrr[:qr, :qr]) if qr else None
    if Linv is not None:
        W = np.asarray((f.Ls.T @ Linv.T).T).reshape(qr, nl, k)  # C @ Ls, via sparse-times-dense
        G += np.einsum("rla,rlb->lab", W, W)
    M1 = np.einsum("lji,ljk,lkm->lim", f.L11inv, G, f.L11inv)  # L11^{-T} G L11^{-1}
    lam1 = f.lambdas[0]
    out = [sigma**2 * np.einsum("ij,ljk,mk->lim", lam1, M1, lam1)]
    start = 0
    for lam, b in zip(f.lambdas[1:], layout.blocks[1:], strict=True):
        cols = Linv[:, start : start + b.q].reshape(qr, b.nlevels, b.k)
        Mb = np.einsum("rla,rlb->lab", cols, cols)
        out.append(sigma**2 * np.einsum("ij,ljk,mk->lim", lam, Mb, lam))
        start += b.q
    return out
