"""The weighted penalized least-squares system PIRLS solves at every iteration.

The same blocked Cholesky as the REML engine (:mod:`hierbayes.reml.objective`;
first random-effects block block-diagonal, "the rest" -- other blocks, X and
the working response -- dense), written for a system whose *weights* change
at every call while its *pattern* is fixed. The REML engine computes its
cross-products once per fit, with scipy.sparse products; PIRLS needs them
at every iteration, so here all weighted cross-products are summed in one
compiled pass over the rows (:mod:`hierbayes.linalg._weighted_numba`; the
first block's per-level factors and the dense rest -- its Schur complement,
Cholesky factor and solves -- are compiled calls too), and the part of the
rest that couples to the first block is kept dense (``qr x q1``). Small designs
(or without Numba), until Numba is loaded, every cross-product is one
``np.bincount`` over index maps computed once per design (the same numbers,
to rounding): there Numba's import would cost more than the fit.

This is a variant of the REML engine's ``crossproducts`` + ``factorize`` +
``solve`` (which it does not modify); the REML engine's functions are still
used once at the estimates (conditional variances, ``R_X``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs

if TYPE_CHECKING:
    from hierbayes.design import Design


#: Largest dense coupling block (qr x q1 entries) handled here
MAX_DENSE_COUPLING = 4_000_000
_EMPTY = np.zeros(0)
_EMPTY2 = np.zeros((0, 0))


@dataclass(frozen=True)
class SystemFactor:
    """Cholesky factor of the weighted system at one theta, and its solution.

    Attributes
    ----------
    logdet_L
        ``log|L_Z|^2`` (lme4's ``ldL2``).
    u1, ur, beta
        Solution: first block's u (levels x k1), the rest's u (qr,), beta (p,).
    RX
        Lower-triangular ``R_X'`` (p x p): ``(R_X' R_X)^{-1}`` is the unscaled vcov of beta.
    """

    logdet_L: float
    u1: np.ndarray
    ur: np.ndarray
    beta: np.ndarray
    RX: np.ndarray


class WeightedSystem:
    """Index maps for the weighted cross-products of [Z X y] of one design.

    Parameters
    ----------
    design
        The model's design.
    with_x
        Include X (PIRLS for u and beta jointly) or not (u only).
    """

    def __init__(self, design: Design, with_x: bool):
        self.design = design
        self.X = design.X if with_x else np.empty((design.n, 0))
        self.p = self.X.shape[1]
        first, rest = design.blocks[0], design.blocks[1:]
        self.first = first
        self.nl1, self.k1 = first.nlevels, first.k
        self.q1 = first.q
        self.qr = sum(b.q for b in rest)
        # one entry per (rest block, term): the rest column of every row and the Z value
        self.rest_cols: list[np.ndarray] = []
        self.rest_z: list[np.ndarray] = []
        off = 0
        for b in rest:
            for a in range(b.k):
                self.rest_cols.append(off + b.codes.astype(np.int64) * b.k + a)
                self.rest_z.append(b.Z[:, a])
            off += b.q
        m = self.p + 1
        # the compiled kernels' inputs: every rest (block, term) as one row of two (entries x n) arrays,
        # and [X z] in one buffer whose last column is the working response
        self._codes1 = np.ascontiguousarray(first.codes, dtype=np.int64)
        self._Z1 = np.ascontiguousarray(first.Z, dtype=float)
        n = design.n
        self._rest_cols = np.array(self.rest_cols, dtype=np.int64).reshape(len(self.rest_cols), n)
        self._rest_z = np.array(self.rest_z, dtype=float).reshape(len(self.rest_z), n)
        # per rest column: its level's first column, its term, its block's k and index (weighted_finish)
        rest = design.blocks[1:]
        kmax = max((b.k for b in rest), default=1)
        offsets = np.cumsum([0] + [b.q for b in rest])
        cols = [
            (int(off) + lev * b.k, a, b.k, j)
            for j, (b, off) in enumerate(zip(rest, offsets))
            for lev in range(b.nlevels)
            for a in range(b.k)
        ]
        self._rest_map = tuple(np.array([c[i] for c in cols], dtype=np.int64) for i in range(4))
        self._rest_lams = np.zeros((max(len(rest), 1), kmax, kmax))
        self._xy = np.empty((n, m))
        self._xy[:, : self.p] = self.X
        #: sum the cross-products with the compiled kernels (else NumPy's bincount)
        self.compiled = _use_compiled(design)
        self._xy_idx = [(c[:, None] * m + np.arange(m)).ravel() for c in self.rest_cols]
        self._s_idx = [
            [c * self.q1 + first.codes.astype(np.int64) * self.k1 + a for a in range(self.k1)] for c in self.rest_cols
        ]

    @staticmethod
    def fits(design: Design) -> bool:
        """Whether the dense coupling block is small enough."""
        q1 = design.blocks[0].q
        qr = sum(b.q for b in design.blocks[1:])
        return qr * q1 <= MAX_DENSE_COUPLING

    def factor(self, lambdas: list[np.ndarray], z: np.ndarray, sqrtw: np.ndarray) -> SystemFactor | None:
        """Factor and solve the system at the blocks' ``lambdas``, working response ``z`` and weights ``sqrtw``^2."""
        if self.compiled:
            return self._factor_compiled(lambdas, z, sqrtw)
        return self._factor_numpy(lambdas, z, sqrtw)

    def _factor_compiled(self, lambdas: list[np.ndarray], z: np.ndarray, sqrtw: np.ndarray) -> SystemFactor | None:
        """:meth:`factor` with the cross-products summed in one compiled pass over the rows."""
        K = _kernels()
        qr, p = self.qr, self.p
        xy = self._xy
        xy[:, p] = z
        A11, D, XX, RR, S, RX = K.weighted_sums(
            self._codes1, self._Z1, xy, sqrtw * sqrtw, self._rest_cols, self._rest_z, self.nl1, qr
        )
        ok, Linv, logdet11, Ld, Ls = K.first_block(A11, np.ascontiguousarray(lambdas[0], dtype=float), D, S)
        if not ok:
            return None
        if not qr and not p:
            return SystemFactor(logdet11, K.first_solve(Linv, Ld[0]), _EMPTY, _EMPTY, _EMPTY2)
        if qr + p + 1 <= MAX_COMPILED_REST:
            lams = self._rest_lams
            for j, lam in enumerate(lambdas[1:]):
                lams[j, : lam.shape[0], : lam.shape[0]] = lam
            status, logdet_r, x, RXf, rhs = K.weighted_finish(XX, RR, RX, Ls, Ld, *self._rest_map, lams)
            if status:
                return None
            return SystemFactor(
                logdet_L=logdet11 + logdet_r, u1=K.first_solve(Linv, rhs), ur=x[:qr], beta=x[qr:], RX=RXf
            )
        r = qr + p + 1
        M = np.empty((r, r))
        M[qr:, qr:] = XX
        if qr:
            lam_r = self._rest_lambda_diag(lambdas)
            Ls = _left_lambda(Ls, lam_r)
            M[:qr, :qr] = _left_lambda(_left_lambda(RR, lam_r).T, lam_r).T
            M[:qr, qr:] = _left_lambda(RX, lam_r)
            M[qr:, :qr] = M[:qr, qr:].T
            M[np.arange(qr), np.arange(qr)] += 1.0
            L21 = np.vstack([Ls, Ld])
        else:
            L21 = Ld
        return self._finish(M, L21, logdet11, lambda rhs: K.first_solve(Linv, rhs))

    def _factor_numpy(self, lambdas: list[np.ndarray], z: np.ndarray, sqrtw: np.ndarray) -> SystemFactor | None:
        """:meth:`factor` with every cross-product one ``np.bincount`` (no compiled code)."""
        w = sqrtw * sqrtw
        nl1, k1, q1, qr, p = self.nl1, self.k1, self.q1, self.qr, self.p
        codes, Z1 = self.first.codes, self.first.Z
        # first block: A11 (per level) and D = [X y]' W Z1 (per level)
        wZ1 = Z1 * w[:, None]
        A11 = np.empty((nl1, k1, k1))
        for a in range(k1):
            for b in range(a, k1):
                A11[:, a, b] = A11[:, b, a] = np.bincount(codes, weights=wZ1[:, a] * Z1[:, b], minlength=nl1)
        if not qr and not p:  # u only, one factor: the system is block diagonal, u1 = L11^{-1} T' Z1' W z
            L11, T, logdet11 = _first_block(A11, lambdas[0])
            if L11 is None:
                return None
            Dz = np.stack([np.bincount(codes, weights=wZ1[:, a] * z, minlength=nl1) for a in range(k1)], axis=1)
            rhs = np.einsum("la,lab->lb", Dz, T)
            u1 = rhs / L11[:, :, 0] if k1 == 1 else np.einsum("lji,lj->li", _inv_lower(L11), rhs)
            return SystemFactor(logdet11, u1, _EMPTY, _EMPTY, _EMPTY2)
        Xy = np.column_stack([self.X, z])
        Xyw = Xy * sqrtw[:, None]
        D = np.empty((p + 1, nl1, k1))
        for a in range(k1):
            D[:, :, a] = np.stack(
                [np.bincount(codes, weights=wZ1[:, a] * Xy[:, c], minlength=nl1) for c in range(p + 1)]
            )
        L11, T, logdet11 = _first_block(A11, lambdas[0])
        if L11 is None:
            return None
        r = qr + p + 1
        M = np.empty((r, r))
        M[qr:, qr:] = Xyw.T @ Xyw
        Ld = np.einsum("cla,lab->clb", D, T).reshape(p + 1, q1)
        if qr:
            ZrZr = np.zeros(qr * qr)
            S = np.zeros(qr * q1)
            ZrXy = np.zeros(qr * (p + 1))
            for e, (ce, ze) in enumerate(zip(self.rest_cols, self.rest_z, strict=True)):
                wz = w * ze
                for f in range(e, len(self.rest_cols)):
                    ZrZr += np.bincount(ce * qr + self.rest_cols[f], weights=wz * self.rest_z[f], minlength=qr * qr)
                for a in range(k1):
                    S += np.bincount(self._s_idx[e][a], weights=wz * Z1[:, a], minlength=qr * q1)
                ZrXy += np.bincount(self._xy_idx[e], weights=(wz[:, None] * Xy).ravel(), minlength=qr * (p + 1))
            ZrZr = ZrZr.reshape(qr, qr)
            ZrZr = ZrZr + ZrZr.T - np.diag(np.diag(ZrZr))  # pairs were accumulated once (e <= f)
            lam_r = self._rest_lambda_diag(lambdas)
            S = S.reshape(qr, q1)
            Ls = np.einsum("rla,lab->rlb", S.reshape(qr, nl1, k1), T).reshape(qr, q1)
            Ls = _left_lambda(Ls, lam_r)
            M[:qr, :qr] = _left_lambda(_left_lambda(ZrZr, lam_r).T, lam_r).T
            M[:qr, qr:] = _left_lambda(ZrXy.reshape(qr, p + 1), lam_r)
            M[qr:, :qr] = M[:qr, qr:].T
            M[np.arange(qr), np.arange(qr)] += 1.0
            L21 = np.vstack([Ls, Ld])
        else:
            L21 = Ld
        Linv = _inv_lower(L11)
        return self._finish(M, L21, logdet11, lambda rhs: np.einsum("lji,lj->li", Linv, rhs.reshape(nl1, k1)))

    def _finish(self, M: np.ndarray, L21: np.ndarray, logdet11: float, first_solve) -> SystemFactor | None:
        """The dense rest: factor ``M - L21 L21'`` and solve (``first_solve``: ``L11^{-T}`` on the first block)."""
        qr, p = self.qr, self.p
        M -= L21 @ L21.T
        mm = qr + p
        z_row = M[mm, :mm].copy()
        Lrr, info = dpotrf(M, lower=True, clean=True, overwrite_a=True)
        if info == mm + 1:
            # only the working response's pivot failed: [Z X] fit it exactly (e.g. all-zero counts, where it is
            # constant); the leading factor is complete, the last row is a forward substitution
            Lrr[mm, :mm], _ = dtrtrs(Lrr[:mm, :mm], z_row, lower=1)
            Lrr[mm, mm] = 0.0
        elif info != 0:
            return None
        diag = np.diagonal(Lrr)
        if not (diag[:mm] > 0).all():
            return None
        x, _ = dtrtrs(Lrr[:mm, :mm], Lrr[mm, :mm], lower=1, trans=1)
        u1 = first_solve(L21[-1] - L21[:mm].T @ x)
        return SystemFactor(
            logdet_L=logdet11 + 2.0 * np.log(diag[:qr]).sum(),
            u1=u1, ur=x[:qr], beta=x[qr:], RX=Lrr[qr:mm, qr:mm].copy(),
        )  # fmt: skip

    def _rest_lambda_diag(self, lambdas: list[np.ndarray]) -> list[tuple[int, int, np.ndarray]]:
        out, off = [], 0
        for lam, b in zip(lambdas[1:], self.design.blocks[1:], strict=True):
            out.append((off, b.nlevels, lam))
            off += b.q
        return out


#: Largest dense rest (rest random effects + p + 1) factored by the compiled loop (beyond: LAPACK)
MAX_COMPILED_REST = 160


#: Rows x (columns of X, y and Z) from which the compiled kernels pay for Numba's import (~0.5 s, once per
#: process) within the first fit (VerbAgg: 76,000). Smaller designs use them once Numba is loaded anyway:
#: their warm fits are 1.4-1.8x faster compiled, but a first fit in a new process would be several times slower.
COMPILED_MIN_WORK = 50_000


def _use_compiled(design: Design) -> bool:
    """Whether PIRLS sums and factors the weighted system with the compiled kernels (else NumPy's bincounts)."""
    work = design.n * (design.p + 1 + sum(b.k for b in design.blocks))
    if work < COMPILED_MIN_WORK and "numba" not in sys.modules:
        return False
    try:
        _kernels()
    except ImportError:  # pragma: no cover - numba is a dependency; the NumPy path stays correct without it
        return False
    return True


_KERNELS = None


def _kernels():
    """The compiled loops (Numba imported here, on first use: ``import hierbayes`` stays light)."""
    global _KERNELS
    if _KERNELS is None:
        from hierbayes.linalg import _weighted_numba  # deferred: Numba's import (~0.5 s) for larger designs

        _KERNELS = _weighted_numba
    return _KERNELS


def _left_lambda(A: np.ndarray, lam_r: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """``Lambda_r' A`` on the rows of the rest's random effects (rows beyond them untouched)."""
    out = A.copy()
    for off, nl, lam in lam_r:
        k = lam.shape[0]
        rows = slice(off, off + nl * k)
        if k == 1:
            out[rows] *= lam[0, 0]
        else:
            blk = A[rows].reshape(nl, k, -1)
            out[rows] = np.einsum("ba,lbc->lac", lam, blk).reshape(nl * k, -1)
    return out


def _first_block(A11: np.ndarray, lam: np.ndarray):
    """Per-level Cholesky factors L11 of ``lam' A_l lam + I``, ``T_l = lam L11_l^{-T}`` and log|L11|^2."""
    k = lam.shape[0]
    if k == 1:
        l11 = np.sqrt(lam[0, 0] ** 2 * A11[:, 0, 0] + 1.0)
        return l11[:, None, None], (lam[0, 0] / l11)[:, None, None], 2.0 * np.log(l11).sum()
    M = np.einsum("ji,ljk,km->lim", lam, A11, lam) + np.eye(k)
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None, None, np.nan
    Linv = _inv_lower(L)
    T = np.einsum("ij,lkj->lik", lam, Linv)
    return L, T, 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()


def _inv_lower(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of small lower-triangular matrices."""
    if L.shape[1] == 1:
        return 1.0 / L
    return np.linalg.inv(L)
