"""The blocked Cholesky factor of the penalized least-squares system, its solves, log-determinants and inverse blocks.

For relative covariance factors Lambda (one k x k ``lambda`` per block,
repeated over its levels) the system

    [Lambda'Z'WZ Lambda + I   Lambda'Z'W X   Lambda'Z'W y]
    [X'WZ Lambda              X'WX           X'Wy        ]   = L L'   (L lower triangular)
    [y'WZ Lambda              y'WX           y'Wy        ]

is factored blockwise (Bates et al. 2015, JSS 67(1), sec. 3; MixedModels.jl).
The fill-reducing order puts the first random-effects block (the factor with
the most levels) first: its part is block diagonal, one small Cholesky per
level (closed forms for k = 1 and 2), and after eliminating it the rest --
the other blocks, X and y -- is a dense Schur complement. Its coupling to the
first block, ``S W S'`` with W block diagonal, is formed from the sparse S:
summed level by level by a compiled loop for large couplings
(:mod:`hierbayes.linalg.levels`: the factor's block L[2,1] keeps S's sparsity,
no fill-in, nothing stored beyond S), by a stored product pattern for smaller
ones (:class:`~hierbayes.linalg.crossprod.SchurPattern`), or by a dense
product when S is stored dense (small couplings).

``with_xy=False`` factors the random-effects part alone, ``Lambda'Z'WZ Lambda + I``
(the Bayesian engine's ``M``, for arbitrary right-hand sides); with X and y
the factor also gives ``log|R_X|^2``, the penalized residual sum of squares
``r^2`` (the squared last diagonal element) and the solution, from its last row.

Examples
--------
>>> import numpy as np
>>> from hierbayes.linalg.crossprod import Piece, Structure, accumulate
>>> rng = np.random.default_rng(0)
>>> g, x = rng.integers(0, 4, 40), rng.normal(size=40)
>>> X = np.column_stack([np.ones(40), x])
>>> cp = accumulate(Structure(((4, 1),), 2), [Piece((g,), (np.ones((40, 1)),), X, x + rng.normal(size=40))])
>>> f = factorize(cp, [np.array([[0.5]])])
>>> u1, ur, beta = solve(f)
>>> u1.shape, ur.shape, beta.shape
((4, 1), (0,), (2,))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf, dpotri, dtrtri, dtrtrs

from hierbayes.linalg.crossprod import CrossProducts
from hierbayes.linalg.levels import level_quadratic, s_times, schur_update, st_times

_EMPTY2 = np.zeros((0, 0))


@dataclass(frozen=True)
class BlockedFactor:
    """The blocked Cholesky factor at one set of relative covariance factors.

    Attributes
    ----------
    lambdas
        Each block's k x k relative covariance factor.
    L11inv
        Inverses of the first block's per-level factors (nl1, k1, k1).
    T
        Per level ``lambda1 L11^{-T}`` (nl1, k1, k1).
    Lrr
        Dense lower factor of the rest after the first block: (r x r) with
        X and y, (qr x qr) without.
    logdet_L
        ``log|L_Z|^2``, the log-determinant of ``Lambda'Z'WZ Lambda + I``.
    logdet_RX, r2
        ``log|R_X|^2`` and the penalized residual sum of squares (NaN without X and y).
    cp
        The cross-products it was computed from.
    """

    lambdas: list[np.ndarray]
    L11inv: np.ndarray
    T: np.ndarray
    Lrr: np.ndarray
    logdet_L: float
    logdet_RX: float
    r2: float
    cp: CrossProducts = field(repr=False)
    with_xy: bool = True
    _Ls: np.ndarray | None = field(default=None, repr=False)
    _Ld: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def Ld(self) -> np.ndarray:
        """Dense part ([X y] rows) of the rest-by-first-block factor, (p + 1) x q1."""
        if self._Ld is not None:
            return self._Ld
        D, T = self.cp.D, self.T
        return np.einsum("cla,lab->clb", D, T).reshape(D.shape[0], T.shape[0] * T.shape[1])

    @cached_property
    def Ls(self) -> sp.csr_matrix | np.ndarray | None:
        """The other blocks' rows of the rest-by-first-block factor, ``Lambda_r' S T`` (qr x q1).

        Dense when the cross-products keep S dense, sparse otherwise; None with one block.
        """
        if self._Ls is not None:
            return self._Ls
        cp = self.cp
        if not cp.qr:
            return None
        sizes = cp.structure.sizes[1:]
        if cp.dense:
            nl, k = cp.nl1, cp.k1
            ST = np.einsum("rla,lab->rlb", cp.S.reshape(cp.qr, nl, k), self.T).reshape(cp.qr, nl * k)
            return rest_left(ST, self.lambdas[1:], sizes)
        lam_r = sp.block_diag(
            [block_lambda(lam, nl) for lam, (nl, _) in zip(self.lambdas[1:], sizes, strict=True)], format="csr"
        )
        return (lam_r.T @ cp.S @ block_lambda_per_level(self.T)).tocsr()

    def ls_dot(self, w1: np.ndarray) -> np.ndarray:
        """``Ls @ w1`` for w1 of shape (nl1, k1): (qr,), from S's levels when S is sparse (no product formed)."""
        cp = self.cp
        if cp.dense or self._Ls is not None:
            return self.Ls @ w1.ravel()
        return rest_left(s_times(cp.levels, self.T, w1), self.lambdas[1:], cp.structure.sizes[1:])

    def ls_t_dot(self, ur: np.ndarray) -> np.ndarray:
        """``Ls' @ ur`` for ur of shape (qr,): (nl1, k1), from S's levels when S is sparse."""
        cp = self.cp
        if cp.dense or self._Ls is not None:
            return (self.Ls.T @ ur).reshape(cp.nl1, cp.k1)
        z = rest_left(ur, self.lambdas[1:], cp.structure.sizes[1:], transpose=False)  # Lambda_r ur
        return st_times(cp.levels, self.T, z)

    @property
    def Lzz(self) -> np.ndarray:
        """The factor of the other blocks' part (qr x qr), Fortran-ordered."""
        qr = self.cp.qr
        return self.Lrr if not self.with_xy else np.asfortranarray(self.Lrr[:qr, :qr])


def factorize(cp: CrossProducts, lambdas: list[np.ndarray], with_xy: bool = True) -> BlockedFactor | None:
    """The blocked Cholesky factor at the blocks' ``lambdas``; None when the system is not positive definite.

    Parameters
    ----------
    cp
        Cross-products of [Z X y] (:mod:`hierbayes.linalg.crossprod`).
    lambdas
        Each block's k x k relative covariance factor.
    with_xy
        Factor [Z X y] (True) or the random-effects part alone.
    """
    first = first_block(cp.A11, lambdas[0])
    if first is None:
        return None
    L11inv, T, logdet_11 = first
    qr, p = cp.qr, cp.p
    if not with_xy and not qr:
        return BlockedFactor(lambdas, L11inv, T, _EMPTY2, float(logdet_11), np.nan, np.nan, cp, False)
    Ls = Ld = None
    if cp.dense:
        M, Ls, Ld = _schur_dense(cp, lambdas, T, with_xy)
    else:
        M, Ld = _schur_sparse(cp, lambdas, T, with_xy)
    m = qr + p if with_xy else qr
    y_row = M[m, :m].copy() if with_xy else None
    # M is symmetric, so its transpose is the same matrix in Fortran order: no copy for LAPACK
    Lrr, info = dpotrf(M.T, lower=1, clean=1, overwrite_a=1)
    if with_xy and info == m + 1:
        # only the response's pivot failed: [Z X] fit it exactly (r2 = 0); the factor of [Z X] is complete,
        # its last row a forward substitution (PIRLS and the GLMM's vcov use it)
        Lrr[m, :m] = dtrtrs(Lrr[:m, :m], y_row, lower=1)[0] if m else y_row
        Lrr[m, m] = 0.0
    elif info != 0:
        return None
    diag = np.diagonal(Lrr)
    if not (diag[:m] > 0).all():
        return None
    r2 = diag[-1] ** 2 if with_xy else np.nan
    if with_xy and not np.isfinite(r2):
        return None
    logs = np.log(diag[:m])
    return BlockedFactor(
        lambdas=lambdas, L11inv=L11inv, T=T, Lrr=Lrr, logdet_L=float(logdet_11 + 2.0 * logs[:qr].sum()),
        logdet_RX=float(2.0 * logs[qr:].sum()) if with_xy else np.nan, r2=float(r2), cp=cp, with_xy=with_xy,
        _Ls=Ls, _Ld=Ld,
    )  # fmt: skip


def _schur_sparse(cp: CrossProducts, lambdas: list[np.ndarray], T: np.ndarray, with_xy: bool):
    """The rest's Schur complement with sparse S (C-ordered), and ``Ld`` (None without X and y).

    With ``Ld = D T`` and ``Ls = S T`` (per level): ``Mrr = Lr' (Arr - [S; D] W [S; D]') Lr + I_Z``
    (W = T T' per level, Lr = blockdiag(Lambda_rest, I)); ``S W S'`` and ``S W D'`` are summed level by
    level (:func:`~hierbayes.linalg.levels.schur_update`: S's sparsity, no fill-in), ``D W D' = Ld Ld'``.
    """
    qr, p = cp.qr, cp.p
    nl, k = cp.nl1, cp.k1
    LdT = Ld = None
    if with_xy:
        LdT = np.matmul(cp.D.transpose(1, 0, 2), T)  # (nl, p + 1, k): level l's D_l T_l
        Ld = np.ascontiguousarray(LdT.transpose(1, 0, 2)).reshape(p + 1, nl * k)
        Mrr = cp.Arr.copy()
        Mrr[qr:, qr:] -= Ld @ Ld.T
    else:
        Mrr = np.array(cp.Arr[:qr, :qr], order="C")
    if qr:
        if cp.compiled:  # the upper triangle of S W S' and S W D', level by level
            SWD = schur_update(Mrr, cp.levels, T, LdT)
        else:  # small couplings: the stored product pattern (the upper triangle), NumPy only
            W = np.matmul(T, T.transpose(0, 2, 1))
            Mrr.ravel()[:] -= cp.pattern(Mrr.shape[1]).P @ W.ravel()  # ravel is a view: Mrr is C-contiguous
            SWD = np.asarray(cp.S @ np.matmul(T, LdT.transpose(0, 2, 1)).reshape(nl * k, p + 1)) if with_xy else None
        i, j = cp.structure.rest_block_pairs
        Mrr[j, i] = Mrr[i, j]  # Lambda' M Lambda mixes both triangles of a rest factor's k x k diagonal blocks
        if with_xy:
            Mrr[:qr, qr:] -= SWD
            Mrr[qr:, :qr] -= SWD.T
        _sandwich_rest(Mrr, lambdas[1:], cp.structure.sizes[1:])
        Mrr[np.arange(qr), np.arange(qr)] += 1.0
    return Mrr, Ld


def _schur_dense(cp: CrossProducts, lambdas: list[np.ndarray], T: np.ndarray, with_xy: bool):
    """The rest's Schur complement with dense S: ``Lr' Arr Lr + I_Z - L21 L21'``, L21 = [Lambda_r' S T; D T]."""
    qr, p = cp.qr, cp.p
    nl, k = cp.nl1, cp.k1
    sizes = cp.structure.sizes[1:]
    r = qr + p + 1 if with_xy else qr
    M = np.empty((r, r))
    Ld = None
    if with_xy:
        M[qr:, qr:] = cp.Arr[qr:, qr:]
        Ld = np.einsum("cla,lab->clb", cp.D, T).reshape(p + 1, nl * k)
    Ls = None
    if qr:
        lam = lambdas[1:]
        Ls = rest_left(np.einsum("rla,lab->rlb", cp.S.reshape(qr, nl, k), T).reshape(qr, nl * k), lam, sizes)
        M[:qr, :qr] = rest_left(rest_left(cp.Arr[:qr, :qr], lam, sizes).T, lam, sizes).T
        if with_xy:
            M[:qr, qr:] = rest_left(cp.Arr[:qr, qr:], lam, sizes)
            M[qr:, :qr] = M[:qr, qr:].T
        M[np.arange(qr), np.arange(qr)] += 1.0
        L21 = np.vstack([Ls, Ld]) if with_xy else Ls
    else:
        L21 = Ld
    M -= L21 @ L21.T
    return M, Ls, Ld


def first_block(A: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per-level factors of ``M_l = lam' A_l lam + I``: ``L_l^{-1}``, ``T_l = lam L_l^{-T}`` and ``log|L|^2``.

    ``lam`` may carry leading batch axes (..., k, k), e.g. one per posterior
    draw; the results then carry them too (``log|L|^2`` summed over levels
    only). Closed forms for k = 1 and k = 2 (the common cases) avoid the
    overhead of batched LAPACK calls on tiny matrices. None when some M_l is
    not positive definite.
    """
    k = A.shape[1]
    if k == 1:
        a = lam[..., 0, 0, None]
        l11 = np.sqrt(a * a * A[:, 0, 0] + 1.0)
        inv = 1.0 / l11
        return inv[..., None, None], (a * inv)[..., None, None], 2.0 * np.log(l11).sum(axis=-1)
    if k == 2:
        a, c, d = lam[..., 0, 0, None], lam[..., 1, 0, None], lam[..., 1, 1, None]  # lam = [[a, 0], [c, d]]
        a00, a01, a11 = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        m00 = a * a * a00 + 2 * a * c * a01 + c * c * a11 + 1.0
        m01 = a * d * a01 + c * d * a11
        m11 = d * d * a11 + 1.0
        l00 = np.sqrt(m00)
        l10 = m01 / l00
        s = m11 - l10 * l10
        if np.any(s <= 0):
            return None
        l11 = np.sqrt(s)
        Linv = np.zeros((*l00.shape, 2, 2))
        Linv[..., 0, 0] = 1.0 / l00
        Linv[..., 1, 1] = 1.0 / l11
        Linv[..., 1, 0] = -l10 / (l00 * l11)
        T = np.empty_like(Linv)  # T = lam @ Linv'
        T[..., 0, 0] = a * Linv[..., 0, 0]
        T[..., 0, 1] = a * Linv[..., 1, 0]
        T[..., 1, 0] = c * Linv[..., 0, 0]
        T[..., 1, 1] = c * Linv[..., 1, 0] + d * Linv[..., 1, 1]
        return Linv, T, 2.0 * (np.log(l00).sum(axis=-1) + np.log(l11).sum(axis=-1))
    M = np.einsum("...ji,ljk,...km->...lim", lam, A, lam) + np.eye(k)
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None
    Linv = np.linalg.inv(L)
    T = np.einsum("...ij,...lkj->...lik", lam, Linv)  # lam @ Linv_l'
    return Linv, T, 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=(-2, -1))


def _sandwich_rest(M: np.ndarray, lambdas: list[np.ndarray], sizes) -> None:
    """In place: M <- Lr' M Lr, with Lr = blockdiag(Lambda_j for the rest blocks, identity for X and y)."""
    start = 0
    for lam, (nl, k) in zip(lambdas, sizes, strict=True):
        stop = start + nl * k
        if k == 1:
            M[start:stop, :] *= lam[0, 0]
            M[:, start:stop] *= lam[0, 0]
        else:
            rows = M[start:stop, :].reshape(nl, k, -1)
            M[start:stop, :] = np.einsum("ba,lbc->lac", lam, rows).reshape(nl * k, -1)
            cols = M[:, start:stop].reshape(-1, nl, k)
            M[:, start:stop] = np.einsum("clb,ba->cla", cols, lam).reshape(-1, nl * k)
        start = stop


def rest_left(A: np.ndarray, lambdas: list[np.ndarray], sizes, transpose: bool = True) -> np.ndarray:
    """``Lambda_r' A`` (or ``Lambda_r A``) on the rows of the rest's random effects; rows beyond them copied."""
    out = np.array(A, dtype=float)
    start = 0
    for lam, (nl, k) in zip(lambdas, sizes, strict=True):
        rows = slice(start, start + nl * k)
        if k == 1:
            out[rows] *= lam[0, 0]
        else:
            op = lam.T if transpose else lam
            blk = A[rows].reshape(nl, k, -1)
            out[rows] = np.einsum("ij,ljm->lim", op, blk).reshape(out[rows].shape)
        start += nl * k
    return out


def block_lambda(lam: np.ndarray, nlevels: int) -> sp.spmatrix:
    """Block-diagonal sparse matrix with ``nlevels`` copies of ``lam``."""
    k = lam.shape[0]
    if k == 1:
        return sp.diags(np.full(nlevels, lam[0, 0]))
    data = np.broadcast_to(lam, (nlevels, k, k)).copy()
    return sp.bsr_matrix((data, np.arange(nlevels), np.arange(nlevels + 1)), shape=(nlevels * k, nlevels * k))


def block_lambda_per_level(T: np.ndarray) -> sp.spmatrix:
    """Block-diagonal sparse matrix of per-level k x k blocks ``T[l]``."""
    nl, k, _ = T.shape
    if k == 1:
        return sp.diags(T[:, 0, 0])
    return sp.bsr_matrix((T, np.arange(nl), np.arange(nl + 1)), shape=(nl * k, nl * k))


# --- solves ---------------------------------------------------------------------------------


def trsolve(L: np.ndarray, b: np.ndarray, trans: bool = False) -> np.ndarray:
    """Solve L x = b (or L' x = b) for lower-triangular L with LAPACK's dtrtrs.

    (``scipy.linalg.solve_triangular`` costs milliseconds on tiny systems with
    a matrix right-hand side in SciPy 1.17.)
    """
    if L.shape[0] == 0:
        return np.zeros_like(b)
    x, info = dtrtrs(L, b, lower=1, trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return x


def solve(f: BlockedFactor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The penalized least-squares solution at the factor (from its y row; needs ``with_xy``).

    Returns
    -------
    u1, ur, beta
        Spherical random effects of the first block (nl1, k1), of the other
        blocks (qr,) and the fixed effects (p,).
    """
    cp = f.cp
    qr, p = cp.qr, cp.p
    m = qr + p
    x = dtrtrs(f.Lrr[:m, :m], f.Lrr[m, :m], lower=1, trans=1)[0] if m else np.zeros(0)
    ur, beta = x[:qr], x[qr:]
    Ld = f.Ld
    rhs = Ld[-1] - Ld[:p].T @ beta
    if qr:
        rhs = rhs - f.ls_t_dot(ur).ravel()
    u1 = np.einsum("lji,lj->li", f.L11inv, rhs.reshape(cp.nl1, cp.k1))  # L11_l^{-T} rhs_l
    return u1, ur, beta


def forward(f: BlockedFactor, c1: np.ndarray, cr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``L_Z w = c`` on the random-effects part: c1 (nl1, k1), cr (qr,) -> w1, wr."""
    w1 = np.einsum("lij,lj->li", f.L11inv, c1)
    if not f.cp.qr:
        return w1, np.zeros(0)
    return w1, trsolve(f.Lzz, cr - f.ls_dot(w1))


def backward(f: BlockedFactor, w1: np.ndarray, wr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``L_Z' u = w`` on the random-effects part: -> u1 (nl1, k1), ur (qr,)."""
    cp = f.cp
    if cp.qr:
        ur = trsolve(f.Lzz, wr, trans=True)
        w1 = w1 - f.ls_t_dot(ur)
    else:
        ur = np.zeros(0)
    return np.einsum("lji,lj->li", f.L11inv, w1), ur


def fixef_precision_factor(f: BlockedFactor) -> np.ndarray:
    """R_X' (lower): ``vcov(beta) = sigma^2 (R_X' R_X)^{-1}``."""
    qr, p = f.cp.qr, f.cp.p
    return np.asfortranarray(f.Lrr[qr : qr + p, qr : qr + p])


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverse of a lower-triangular matrix (LAPACK dtrtri)."""
    if L.shape[0] == 0:
        return np.zeros((0, 0))
    inv, info = dtrtri(np.asfortranarray(L), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return np.tril(inv)


# --- blocks of the inverse ----------------------------------------------------------------


def conditional_covariances(f: BlockedFactor, sigma: float) -> list[np.ndarray]:
    """lme4's ``condVar``: per block, per level, the k x k covariance of b given y.

    These are the diagonal blocks of ``sigma^2 Lambda (L_Z L_Z')^{-1} Lambda'``
    (uncertainty in beta is not included, as in lme4). With
    ``C = Lzz^{-1}`` (the other blocks' dense factor) and ``W = C Ls``, the
    first block's are ``L11^{-T} (I + W'W) L11^{-1}`` and the others' are
    blocks of ``C'C``.
    """
    cp = f.cp
    qr, nl, k = cp.qr, cp.nl1, cp.k1
    G = np.broadcast_to(np.eye(k), (nl, k, k)).copy()
    Linv = lower_inverse(f.Lrr[:qr, :qr]) if qr else None
    if Linv is not None and cp.dense:
        W = (Linv @ f.Ls).reshape(qr, nl, k)  # C @ Ls
        G += np.einsum("rla,rlb->lab", W, W)
    elif Linv is not None and not cp.compiled:
        W = np.asarray((f.Ls.T @ Linv.T).T).reshape(qr, nl, k)  # C @ Ls, via sparse-times-dense
        G += np.einsum("rla,rlb->lab", W, W)
    elif Linv is not None:  # W'W = (S T)' Lambda_r C'C Lambda_r' (S T), level by level (S's sparsity)
        G += level_quadratic(cp.levels, _rest_sandwich(Linv.T @ Linv, f.lambdas[1:], cp), f.T)
    M1 = np.einsum("lji,ljk,lkm->lim", f.L11inv, G, f.L11inv)  # L11^{-T} G L11^{-1}
    lam1 = f.lambdas[0]
    out = [sigma**2 * np.einsum("ij,ljk,mk->lim", lam1, M1, lam1)]
    start = 0
    for lam, (nlb, kb) in zip(f.lambdas[1:], cp.structure.sizes[1:], strict=True):
        cols = Linv[:, start : start + nlb * kb].reshape(qr, nlb, kb)
        Mb = np.einsum("rla,rlb->lab", cols, cols)
        out.append(sigma**2 * np.einsum("ij,ljk,mk->lim", lam, Mb, lam))
        start += nlb * kb
    return out


def _rest_sandwich(Q: np.ndarray, lambdas: list[np.ndarray], cp: CrossProducts) -> np.ndarray:
    """``Lambda_r Q Lambda_r'`` for a dense qr x qr Q."""
    sizes = cp.structure.sizes[1:]
    return rest_left(rest_left(Q, lambdas, sizes, transpose=False).T, lambdas, sizes, transpose=False).T


def minv_diag_sums(f: BlockedFactor) -> list[np.ndarray]:
    """Per block, the sum over its levels of the diagonal k x k blocks of ``(L_Z L_Z')^{-1}``."""
    cp = f.cp
    first = np.einsum("lji,ljk->ik", f.L11inv, f.L11inv)  # sum_l L11inv_l' L11inv_l
    if not cp.qr:
        return [first]
    Sinv, info = dpotri(f.Lzz, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("dpotri failed")
    Sinv = np.tril(Sinv) + np.tril(Sinv, -1).T
    k = cp.k1
    if cp.dense:
        Ls = f.Ls
        B = np.einsum("rla,lab->rlb", Ls.reshape(cp.qr, cp.nl1, k), f.L11inv)  # level l: Ls_l L11inv_l
        SB = (Sinv @ B.reshape(cp.qr, -1)).reshape(B.shape)
        first += np.einsum("rla,rlb->ab", B, SB)
    elif not cp.compiled:
        Bsp = (f.Ls @ block_lambda_per_level(f.L11inv)).tocsc()
        Bs = [Bsp[:, a::k] for a in range(k)] if k > 1 else [Bsp]
        for a in range(k):
            for b in range(a, k):
                v = float((Bs[a] @ Bs[b].T).multiply(Sinv).sum())
                first[a, b] += v
                if b != a:
                    first[b, a] += v
    else:  # sum_l B_l' Sinv B_l with B_l = Lambda_r' S_l T_l L11inv_l, level by level (S's sparsity)
        TL = np.einsum("lab,lbc->lac", f.T, f.L11inv)
        first += level_quadratic(cp.levels, _rest_sandwich(Sinv, f.lambdas[1:], cp), TL).sum(axis=0)
    out = [first]
    start = 0
    for nl, kg in cp.structure.sizes[1:]:
        blk = Sinv[start : start + nl * kg, start : start + nl * kg].reshape(nl, kg, nl, kg)
        idx = np.arange(nl)
        out.append(blk[idx, :, idx, :].sum(axis=0))
        start += nl * kg
    return out
