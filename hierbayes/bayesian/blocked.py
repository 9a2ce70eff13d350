"""The gaussian marginal likelihood, its gradient and the exact conditional of the random effects (NumPy).

Model: ``y ~ N(X beta, V)``, ``V = sigma^2 I + Z T T' Z'`` where ``T`` is block
diagonal with one copy of the factor's ``L_g`` (lower triangular,
``L_g L_g' = Sigma_g``) per level. With ``Lambda = T / sigma`` and
``M = I + Lambda' Z'Z Lambda`` (the penalized least-squares matrix of lme4):

    log p(y) = -1/2 [n log(2 pi sigma^2) + log|M| + (r'r - c'M^{-1}c) / sigma^2],
    r = y - X beta,  c = Lambda' Z' r.

``M`` is factored blockwise, ``M = L L'``: the first factor's part per level
(``L11``), then the rest dense after eliminating it (``Lrr``), with the
off-diagonal part ``P = M21 L11^{-T}`` sparse.

Gradients (``alpha = V^{-1} r``, ``U = Z'V^{-1}Z``, ``u = M^{-1}c``):

* d/dbeta   = X' alpha
* d/dsigma  = sigma (alpha'alpha - tr V^{-1}),  alpha'alpha = (r'r - c'u - u'u) / sigma^4,
  tr V^{-1} = (n - q + tr M^{-1}) / sigma^2
* d/dL_g    = sum_l (Z'alpha)_l (Z'alpha)_l' L_g - L_g^{-T} (nl_g I - sum_l (M^{-1})_ll),

the last because ``(U T)_ll = L_g^{-T} (I - (M^{-1})_ll)``; only the diagonal
blocks of ``M^{-1}`` are needed.

The random effects given the other parameters are ``b_g = Lambda_g u_g`` with
``u | y ~ N(M^{-1} c, sigma^2 M^{-1})``; :func:`draw_ranef` samples them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf, dpotri, dtrtrs

from hierbayes.bayesian.crossprod import GaussianCrossProducts

_LOG2PI = float(np.log(2 * np.pi))


def _trsolve(L: np.ndarray, b: np.ndarray, trans: bool = False) -> np.ndarray:
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


@dataclass(frozen=True)
class BlockedFactor:
    """``M = L L'`` at one set of relative factors ``lams``; ``logdet = log|M|``."""

    lams: list[np.ndarray]
    L11inv: np.ndarray
    P: sp.csr_matrix | np.ndarray | None
    Lrr: np.ndarray
    logdet: float


def _blockdiag(lam: np.ndarray, nlevels: int) -> sp.spmatrix:
    k = lam.shape[0]
    if k == 1:
        return sp.diags(np.full(nlevels, lam[0, 0]), format="csr")
    data = np.broadcast_to(lam, (nlevels, k, k)).copy()
    return sp.bsr_matrix((data, np.arange(nlevels), np.arange(nlevels + 1)), shape=(nlevels * k,) * 2).tocsr()


def _perlevel(T: np.ndarray) -> sp.spmatrix:
    nl, k, _ = T.shape
    if k == 1:
        return sp.diags(T[:, 0, 0], format="csr")
    return sp.bsr_matrix((T, np.arange(nl), np.arange(nl + 1)), shape=(nl * k,) * 2).tocsr()


def factorize(cp: GaussianCrossProducts, lams: list[np.ndarray]) -> BlockedFactor | None:
    """Blocked Cholesky factor of M; None when it is not positive definite."""
    if not all(np.isfinite(lam).all() for lam in lams):
        return None
    lam1 = lams[0]
    k1 = cp.k1
    M11 = np.einsum("ji,ljk,km->lim", lam1, cp.A11, lam1)
    M11 += np.eye(k1)
    if k1 == 1:
        L11 = np.sqrt(M11)
        L11inv = 1.0 / L11
    else:
        try:
            L11 = np.linalg.cholesky(M11)
        except np.linalg.LinAlgError:
            return None
        L11inv = np.linalg.inv(L11)
    logdet = 2.0 * float(np.log(np.diagonal(L11, axis1=1, axis2=2)).sum())
    if not cp.qr:
        return BlockedFactor(lams, L11inv, None, np.zeros((0, 0)), logdet)
    T = np.einsum("ij,lkj->lik", lam1, L11inv)  # lam1 @ L11inv_l'
    if cp.Ar1_dense is not None:
        A = lam_rest(cp, lams, cp.Ar1_dense.reshape(cp.qr, -1), transpose=True).reshape(cp.Ar1_dense.shape)
        P = np.einsum("rla,lab->rlb", A, T).reshape(cp.qr, cp.q1)
        PPt = P @ P.T
    else:
        lam_r = sp.block_diag(
            [_blockdiag(lam, nl) for lam, (nl, _) in zip(lams[1:], cp.sizes[1:], strict=True)], format="csr"
        )
        P = (lam_r.T @ cp.Ar1 @ _perlevel(T)).tocsr()
        PPt = (P @ P.T).toarray()
    S = lam_rest(cp, lams, lam_rest(cp, lams, cp.Arr, transpose=True).T, transpose=True)
    S -= PPt
    S[np.diag_indices_from(S)] += 1.0
    Lrr, info = dpotrf(S, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        return None
    d = np.diagonal(Lrr)
    if not np.all(d > 0):
        return None
    return BlockedFactor(lams, L11inv, P, Lrr, logdet + 2.0 * float(np.log(d).sum()))


def lam_rest(cp: GaussianCrossProducts, lams: list[np.ndarray], M: np.ndarray, transpose: bool) -> np.ndarray:
    """``Lambda_r' M`` (or ``Lambda_r M``) for the rest's block-diagonal Lambda, M with qr rows."""
    out = np.empty(M.shape)
    start = 0
    for lam, (nl, k) in zip(lams[1:], cp.sizes[1:], strict=True):
        block = M[start : start + nl * k]
        if k == 1:
            out[start : start + nl] = lam[0, 0] * block
        else:
            op = lam.T if transpose else lam
            b3 = block.reshape(nl, k, -1)
            out[start : start + nl * k] = np.einsum("ij,ljm->lim", op, b3).reshape(block.shape)
        start += nl * k
    return out


@dataclass(frozen=True)
class _Solution:
    f: BlockedFactor
    rr: float
    Z1r: np.ndarray
    Zrr: np.ndarray
    Xtr: np.ndarray
    w1: np.ndarray
    wr: np.ndarray


def _solve(cp: GaussianCrossProducts, beta: np.ndarray, lams: list[np.ndarray]) -> _Solution | None:
    f = factorize(cp, lams)
    if f is None:
        return None
    Xtr = cp.Xty - cp.XtX @ beta
    rr = cp.yty - beta @ cp.Xty - beta @ Xtr
    Z1r = cp.Z1ty - cp.Z1tX @ beta
    c1 = Z1r @ lams[0]  # row l: lam1' Z1r_l
    w1 = np.einsum("lij,lj->li", f.L11inv, c1)
    if cp.qr:
        Zrr = cp.Zrty - cp.ZrtX @ beta
        cr = lam_rest(cp, lams, Zrr, transpose=True) - f.P @ w1.ravel()
        wr = _trsolve(f.Lrr, cr)
    else:
        Zrr = wr = np.zeros(0)
    return _Solution(f, float(rr), Z1r, Zrr, Xtr, w1, wr)


def _u(sol: _Solution, cp: GaussianCrossProducts, wr: np.ndarray, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Back-substitution L' u = w: u of the rest (qr,) and of the first block (nl1, k1)."""
    f = sol.f
    if cp.qr:
        ur = _trsolve(f.Lrr, wr, trans=True)
        w1 = w1 - (f.P.T @ ur).reshape(cp.nl1, cp.k1)
    else:
        ur = np.zeros(0)
    return ur, np.einsum("lji,lj->li", f.L11inv, w1)


def loglik(cp: GaussianCrossProducts, beta: np.ndarray, sigma: float, Ls: list[np.ndarray]) -> float:
    """The marginal log-likelihood (``-inf`` where M is not positive definite)."""
    sol = _solve(cp, beta, [L / sigma for L in Ls])
    if sol is None:
        return -np.inf
    quad = float(sol.w1.ravel() @ sol.w1.ravel() + sol.wr @ sol.wr)
    return -0.5 * (cp.n * (_LOG2PI + 2.0 * np.log(sigma)) + sol.f.logdet + (sol.rr - quad) / sigma**2)


def loglik_grad(
    cp: GaussianCrossProducts, beta: np.ndarray, sigma: float, Ls: list[np.ndarray], with_mean: bool = False
) -> tuple:
    """Marginal log-likelihood and its gradient in beta, sigma and each (full) L_g.

    With ``with_mean``, also the conditional mean of the random effects
    (q,), in the column order of ``cp`` (``None`` where M is singular).
    """
    lams = [L / sigma for L in Ls]
    sol = _solve(cp, beta, lams)
    if sol is None:
        out = (-np.inf, np.zeros_like(beta), 0.0, [np.zeros_like(L) for L in Ls])
        return (*out, None) if with_mean else out
    f, nl, k = sol.f, cp.nl1, cp.k1
    quad = float(sol.w1.ravel() @ sol.w1.ravel() + sol.wr @ sol.wr)
    s2 = sigma**2
    ll = -0.5 * (cp.n * (_LOG2PI + 2.0 * np.log(sigma)) + f.logdet + (sol.rr - quad) / s2)
    ur, u1 = _u(sol, cp, sol.wr, sol.w1)
    t1 = u1 @ lams[0].T  # row l: lam1 u1_l
    tr_ = lam_rest(cp, lams, ur, transpose=False) if cp.qr else ur
    AL1 = np.einsum("lij,lj->li", cp.A11, t1)
    if cp.qr:
        Ar1 = cp.Ar1 if cp.Ar1_dense is None else cp.Ar1_dense.reshape(cp.qr, cp.q1)
        AL1 += (Ar1.T @ tr_).reshape(nl, k)
        ALr = Ar1 @ t1.ravel() + cp.Arr @ tr_
    else:
        ALr = ur
    g1 = (sol.Z1r - AL1) / s2
    gr = (sol.Zrr - ALr) / s2
    dbeta = (sol.Xtr - np.einsum("lkp,lk->p", cp.Z1tX, t1) - cp.ZrtX.T @ tr_) / s2
    sums = _minv_diag_sums(cp, f)
    tr_minv = float(sum(np.trace(s) for s in sums))
    alpha2 = (sol.rr - quad - float(u1.ravel() @ u1.ravel() + ur @ ur)) / s2**2
    dsigma = sigma * (alpha2 - (cp.n - cp.q + tr_minv) / s2)
    gs = [g1, *_split(gr, cp.sizes[1:])]
    dLs = []
    for L, g, S, (nlg, kg) in zip(Ls, gs, sums, cp.sizes, strict=True):
        Q = g.T @ g
        rhs = nlg * np.eye(kg) - S
        dLs.append(Q @ L - _trsolve(L, rhs, trans=True))
    if with_mean:
        return ll, dbeta, float(dsigma), dLs, np.concatenate([t1.ravel(), tr_])
    return ll, dbeta, float(dsigma), dLs


def _split(v: np.ndarray, sizes: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    out, start = [], 0
    for nl, k in sizes:
        out.append(v[start : start + nl * k].reshape(nl, k))
        start += nl * k
    return out


def _minv_diag_sums(cp: GaussianCrossProducts, f: BlockedFactor) -> list[np.ndarray]:
    """Per factor, the sum over its levels of the diagonal k x k blocks of M^{-1}."""
    first = np.einsum("lji,ljk->ik", f.L11inv, f.L11inv)  # sum_l L11inv_l' L11inv_l
    if not cp.qr:
        return [first]
    Sinv, info = dpotri(f.Lrr, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("dpotri failed")
    Sinv = np.tril(Sinv) + np.tril(Sinv, -1).T
    k = cp.k1
    if isinstance(f.P, np.ndarray):
        B = np.einsum("rla,lab->rlb", f.P.reshape(cp.qr, cp.nl1, k), f.L11inv)  # level l: P_l L11inv_l
        SB = (Sinv @ B.reshape(cp.qr, -1)).reshape(B.shape)
        first += np.einsum("rla,rlb->ab", B, SB)
    else:
        Bsp = (f.P @ _perlevel(f.L11inv)).tocsc()
        Bs = [Bsp[:, a::k] for a in range(k)] if k > 1 else [Bsp]
        for a in range(k):
            for b in range(a, k):
                v = float((Bs[a] @ Bs[b].T).multiply(Sinv).sum())
                first[a, b] += v
                if b != a:
                    first[b, a] += v
    out = [first]
    start = 0
    for nl, kg in cp.sizes[1:]:
        blk = Sinv[start : start + nl * kg, start : start + nl * kg].reshape(nl, kg, nl, kg)
        idx = np.arange(nl)
        out.append(blk[idx, :, idx, :].sum(axis=0))
        start += nl * kg
    return out


def draw_ranef(
    cp: GaussianCrossProducts,
    beta: np.ndarray,
    sigma: float,
    Ls: list[np.ndarray],
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """One exact draw of every factor's random effects (levels x k) given beta, sigma and the L_g."""
    lams = [L / sigma for L in Ls]
    sol = _solve(cp, beta, lams)
    if sol is None:
        raise np.linalg.LinAlgError("the penalized system is not positive definite at this draw")
    w1 = sol.w1 + sigma * rng.standard_normal(sol.w1.shape)
    wr = sol.wr + sigma * rng.standard_normal(sol.wr.shape)
    ur, u1 = _u(sol, cp, wr, w1)
    us = [u1, *_split(ur, cp.sizes[1:])]
    return [u @ lam.T for u, lam in zip(us, lams, strict=True)]


def draw_ranef_one_block(
    cp: GaussianCrossProducts,
    beta: np.ndarray,
    sigma: np.ndarray,
    L: np.ndarray,
    rng: np.random.Generator,
    chunk_elements: int = 2_000_000,
    Z1r_shift: np.ndarray | None = None,
) -> np.ndarray:
    """Exact draws of a single factor's random effects for many posterior draws at once.

    Parameters
    ----------
    beta, sigma, L
        Posterior draws: (D, p), (D,), (D, k, k).
    Z1r_shift
        (D, levels, k): subtracted from ``Z1'(y - X beta)`` per draw, i.e. ``Z1'Z_r b_r``
        when the other factors' effects ``b_r`` are given (partial marginalization).

    Returns
    -------
    numpy.ndarray
        (D, levels, k).
    """
    D = len(sigma)
    nl, k = cp.nl1, cp.k1
    out = np.empty((D, nl, k))
    step = max(1, chunk_elements // max(1, nl * k * k))
    for s in range(0, D, step):
        e = min(D, s + step)
        lam = L[s:e] / sigma[s:e, None, None]
        M = np.einsum("dji,ljk,dkm->dlim", lam, cp.A11, lam)
        M += np.eye(k)
        C = np.linalg.cholesky(M)
        Z1r = cp.Z1ty[None] - np.einsum("lkp,dp->dlk", cp.Z1tX, beta[s:e])
        if Z1r_shift is not None:
            Z1r -= Z1r_shift[s:e]
        c = np.einsum("dji,dlj->dli", lam, Z1r)
        w = _tri_solve(C, c) + sigma[s:e, None, None] * rng.standard_normal((e - s, nl, k))
        u = _tri_solve(C, w, trans=True)
        out[s:e] = np.einsum("dij,dlj->dli", lam, u)
    return out


def _tri_solve(C: np.ndarray, b: np.ndarray, trans: bool = False) -> np.ndarray:
    """Batched solve of C x = b (or C' x = b) for lower-triangular C (..., k, k), b (..., k)."""
    k = C.shape[-1]
    if k == 1:
        return b / C[..., 0]
    x = np.empty_like(b)
    order = range(k - 1, -1, -1) if trans else range(k)
    done: list[int] = []
    for i in order:
        acc = b[..., i].copy()
        for j in done:
            acc -= (C[..., j, i] if trans else C[..., i, j]) * x[..., j]
        x[..., i] = acc / C[..., i, i]
        done.append(i)
    return x
