"""The gaussian marginal likelihood, its gradient and the exact conditional of the random effects (NumPy).

Model: ``y ~ N(X beta, V)``, ``V = sigma^2 I + Z T T' Z'`` where ``T`` is block
diagonal with one copy of the factor's ``L_g`` (lower triangular,
``L_g L_g' = Sigma_g``) per level. With ``Lambda = T / sigma`` and
``M = I + Lambda' Z'Z Lambda`` (the penalized least-squares matrix of lme4):

    log p(y) = -1/2 [n log(2 pi sigma^2) + log|M| + (r'r - c'M^{-1}c) / sigma^2],
    r = y - X beta,  c = Lambda' Z' r.

``M`` is factored by the numerical core (:mod:`hierbayes.linalg.cholesky`,
``with_xy=False``): the first factor's part per level (``L11``), then the rest
dense after eliminating it, with the off-diagonal part ``Ls = M21 L11^{-T}``;
the cross-products are the core's too (:func:`gaussian_crossproducts`).

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
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from hierbayes.errors import ModelError
from hierbayes.linalg import (
    BlockedFactor,
    CrossProducts,
    Structure,
    backward,
    factorize,
    first_block,
    forward,
    minv_diag_sums,
    trsolve,
)
from hierbayes.linalg import rest_left as _rest_left
from hierbayes.linalg.crossprod import crossproducts, shifted

if TYPE_CHECKING:
    from hierbayes.design import Design, ReBlock

_LOG2PI = float(np.log(2 * np.pi))
#: Zr'Z1 with at most this many entries is kept dense (dense algebra beats sparse bookkeeping there)
DENSE_MAX = 2_000_000


@dataclass(frozen=True)
class GaussianCrossProducts:
    """The cross-products of ``[Z X y]`` (``y`` minus any offset) as the marginal likelihood reads them.

    They are the numerical core's (:mod:`hierbayes.linalg.crossprod`, computed
    once per fit): ``core`` is what the factor of ``M`` is computed from; the
    pieces that involve ``y`` are copied out here, so that partial
    marginalization can shift the response (:func:`hierbayes.bayesian.partial.shifted`)
    without touching ``core``.

    Attributes
    ----------
    core
        The core's cross-products (first factor block diagonal, the rest's coupling ``Zr'Z1``
        dense when it has at most ``DENSE_MAX`` entries).
    n, p
        Rows (with a positive prior weight) and fixed effects.
    yty, Xty, XtX
        ``y'y``, ``X'y`` (p,), ``X'X`` (p, p).
    Z1tX, Z1ty
        First factor per level: ``Z1'X`` (nl1, k1, p), ``Z1'y`` (nl1, k1).
    ZrtX, Zrty
        The other factors': ``Zr'X`` (qr, p), ``Zr'y`` (qr,).
    sizes
        (levels, k) of every block, first block first.
    ldw
        ``sum(log w)`` of gaussian prior weights (0 without them): the rows are scaled by
        ``sqrt(w)`` (residual variance ``sigma^2 / w``), and the marginal log-likelihood
        of the data is that of the scaled rows plus ``ldw / 2``.
    """

    core: CrossProducts
    n: int
    p: int
    yty: float
    Xty: np.ndarray
    XtX: np.ndarray
    Z1tX: np.ndarray
    Z1ty: np.ndarray
    ZrtX: np.ndarray
    Zrty: np.ndarray
    sizes: tuple[tuple[int, int], ...]
    ldw: float = 0.0

    @property
    def A11(self) -> np.ndarray:
        """``Z1'Z1`` per level (nl1, k1, k1)."""
        return self.core.A11

    @property
    def Ar1(self) -> sp.csr_matrix | np.ndarray:
        """``Zr'Z1`` (qr, q1), dense or sparse; columns level-major, term-minor."""
        return self.core.S

    @property
    def Ar1_dense(self) -> np.ndarray | None:
        """``Zr'Z1`` as a dense (qr, nl1, k1) array when it is kept dense, else None."""
        return self.core.S.reshape(self.qr, self.nl1, self.k1) if self.core.dense and self.qr else None

    @property
    def Arr(self) -> np.ndarray:
        """``Zr'Zr`` (qr, qr), dense."""
        return self.core.Arr[: self.qr, : self.qr]

    @property
    def nl1(self) -> int:
        return self.core.nl1

    @property
    def k1(self) -> int:
        return self.core.k1

    @property
    def q1(self) -> int:
        return self.core.q1

    @property
    def qr(self) -> int:
        return self.core.qr

    @property
    def q(self) -> int:
        return self.q1 + self.qr


def gaussian_crossproducts(design: Design, blocks: list[ReBlock] | None = None) -> GaussianCrossProducts:
    """Cross-products of a design's ``[Z X y - offset]``.

    ``blocks``: only these factors' columns in Z (default: all of the
    design's, first factor first).

    Examples
    --------
    >>> import hierbayes as hb
    >>> cp = gaussian_crossproducts(hb.Model("Reaction ~ Days + (Days | Subject)",
    ...                                      hb.datasets.load("sleepstudy")).design)
    >>> cp.A11.shape, cp.qr
    ((18, 2, 2), 0)
    """
    streamed = getattr(design, "streamed", None)
    if streamed is not None:  # rows read in pieces: their cross-products, moved back from y - X beta0 to y
        if blocks is not None and list(blocks) != list(design.blocks):
            raise ModelError("a fit from data read in pieces integrates out every factor (marginalize='full')")
        core = shifted(streamed.crossproducts, -np.asarray(streamed.beta0))
        q1, qr = core.q1, core.qr
        if 0 < q1 * qr <= DENSE_MAX:
            st = core.structure
            core = CrossProducts(Structure(st.sizes, st.p, True), core.A11, core.D, core.S_sparse.toarray(), core.Arr)
        return _gaussian(core, streamed.n, design.p, design.blocks)
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - design.offset
    X = np.asarray(design.X, dtype=float)
    blocks = list(design.blocks if blocks is None else blocks)
    q1, qr = blocks[0].q, sum(b.q for b in blocks[1:])
    n, ldw, sqrtw = len(y), 0.0, None
    if design.weights is not None:  # gaussian prior weights: residual variance sigma^2 / w (lme4's weights=)
        w = np.asarray(design.weights, dtype=float)
        sqrtw, n, ldw = np.sqrt(w), int((w > 0).sum()), float(np.log(w[w > 0]).sum())
    core = crossproducts(blocks, X, y, sqrtw, dense_coupling=0 < q1 * qr <= DENSE_MAX)
    return _gaussian(core, n, X.shape[1], blocks, ldw)


def _gaussian(core: CrossProducts, n: int, p: int, blocks, ldw: float = 0.0) -> GaussianCrossProducts:
    qr, Arr, D = core.qr, core.Arr, core.D
    return GaussianCrossProducts(
        core=core, n=n, ldw=ldw, p=p, yty=float(Arr[-1, -1]), Xty=Arr[qr : qr + p, -1].copy(),
        XtX=np.ascontiguousarray(Arr[qr : qr + p, qr : qr + p]), Z1tX=np.ascontiguousarray(D[:p].transpose(1, 2, 0)),
        Z1ty=np.ascontiguousarray(D[p]), ZrtX=np.ascontiguousarray(Arr[:qr, qr : qr + p]),
        Zrty=Arr[:qr, -1].copy(), sizes=tuple((b.nlevels, b.k) for b in blocks),
    )  # fmt: skip


def factorize_m(cp: GaussianCrossProducts, lams: list[np.ndarray]) -> BlockedFactor | None:
    """Blocked Cholesky factor of ``M = I + Lambda'Z'Z Lambda`` (the core's); None when it is not positive definite."""
    if not all(np.isfinite(lam).all() for lam in lams):
        return None
    return factorize(cp.core, lams, with_xy=False)


def lam_rest(cp: GaussianCrossProducts, lams: list[np.ndarray], M: np.ndarray, transpose: bool) -> np.ndarray:
    """``Lambda_r' M`` (or ``Lambda_r M``) for the rest's block-diagonal Lambda, M with qr rows."""
    return _rest_left(M, lams[1:], cp.sizes[1:], transpose)


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
    f = factorize_m(cp, lams)
    if f is None:
        return None
    Xtr = cp.Xty - cp.XtX @ beta
    rr = cp.yty - beta @ cp.Xty - beta @ Xtr
    Z1r = cp.Z1ty - cp.Z1tX @ beta
    c1 = Z1r @ lams[0]  # row l: lam1' Z1r_l
    if cp.qr:
        Zrr = cp.Zrty - cp.ZrtX @ beta
        w1, wr = forward(f, c1, lam_rest(cp, lams, Zrr, transpose=True))
    else:
        Zrr = np.zeros(0)
        w1, wr = forward(f, c1, Zrr)
    return _Solution(f, float(rr), Z1r, Zrr, Xtr, w1, wr)


def loglik(cp: GaussianCrossProducts, beta: np.ndarray, sigma: float, Ls: list[np.ndarray]) -> float:
    """The marginal log-likelihood (``-inf`` where M is not positive definite)."""
    sol = _solve(cp, beta, [L / sigma for L in Ls])
    if sol is None:
        return -np.inf
    quad = float(sol.w1.ravel() @ sol.w1.ravel() + sol.wr @ sol.wr)
    return -0.5 * (cp.n * (_LOG2PI + 2.0 * np.log(sigma)) + sol.f.logdet_L + (sol.rr - quad) / sigma**2)


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
    ll = -0.5 * (cp.n * (_LOG2PI + 2.0 * np.log(sigma)) + f.logdet_L + (sol.rr - quad) / s2)
    u1, ur = backward(f, sol.w1, sol.wr)
    t1 = u1 @ lams[0].T  # row l: lam1 u1_l
    tr_ = lam_rest(cp, lams, ur, transpose=False) if cp.qr else ur
    AL1 = np.einsum("lij,lj->li", cp.A11, t1)
    if cp.qr:
        Ar1 = cp.Ar1
        AL1 += (Ar1.T @ tr_).reshape(nl, k)
        ALr = Ar1 @ t1.ravel() + cp.Arr @ tr_
    else:
        ALr = ur
    g1 = (sol.Z1r - AL1) / s2
    gr = (sol.Zrr - ALr) / s2
    dbeta = (sol.Xtr - np.einsum("lkp,lk->p", cp.Z1tX, t1) - cp.ZrtX.T @ tr_) / s2
    sums = minv_diag_sums(f)
    tr_minv = float(sum(np.trace(s) for s in sums))
    alpha2 = (sol.rr - quad - float(u1.ravel() @ u1.ravel() + ur @ ur)) / s2**2
    dsigma = sigma * (alpha2 - (cp.n - cp.q + tr_minv) / s2)
    gs = [g1, *_split(gr, cp.sizes[1:])]
    dLs = []
    for L, g, S, (nlg, kg) in zip(Ls, gs, sums, cp.sizes, strict=True):
        Q = g.T @ g
        rhs = nlg * np.eye(kg) - S
        dLs.append(Q @ L - trsolve(L, rhs, trans=True))
    if with_mean:
        return ll, dbeta, float(dsigma), dLs, np.concatenate([t1.ravel(), tr_])
    return ll, dbeta, float(dsigma), dLs


def _split(v: np.ndarray, sizes: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    out, start = [], 0
    for nl, k in sizes:
        out.append(v[start : start + nl * k].reshape(nl, k))
        start += nl * k
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
    u1, ur = backward(sol.f, w1, wr)
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
        first = first_block(cp.A11, lam)
        if first is None:
            raise np.linalg.LinAlgError("the penalized system is not positive definite at a draw")
        L11inv = first[0]
        Z1r = cp.Z1ty[None] - np.einsum("lkp,dp->dlk", cp.Z1tX, beta[s:e])
        if Z1r_shift is not None:
            Z1r -= Z1r_shift[s:e]
        c = np.einsum("dji,dlj->dli", lam, Z1r)
        w = np.einsum("dlij,dlj->dli", L11inv, c) + sigma[s:e, None, None] * rng.standard_normal((e - s, nl, k))
        u = np.einsum("dlji,dlj->dli", L11inv, w)
        out[s:e] = np.einsum("dij,dlj->dli", lam, u)
    return out
