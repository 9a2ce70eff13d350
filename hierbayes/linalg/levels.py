"""The sparse coupling of the other blocks to the first, stored level by level, and its two products.

``S = Zr'WZ1`` (qr x q1) couples the other random-effects blocks to the
first one; a level l of the first block touches only the rows ``R_l`` of
the other blocks that share an observation with it. With the first block's
part eliminated (block diagonal, one k1 x k1 factor per level), the factor's
block ``L[2,1] = Lambda_r' S T`` (``T_l = lambda1 L11_l^{-T}``) keeps exactly
the sparsity of S, level by level: there is no fill-in (Bates et al. 2025,
MixedModels.jl). Everything the factorisation needs from it is a sum over
the levels of small dense pieces:

* the Schur update ``S W S'`` (``W_l = T_l T_l'``): for each level the
  ``|R_l| x |R_l|`` outer product ``S_l W_l S_l'`` added into the rows and
  columns ``R_l`` of a dense matrix, and with it ``S W D'`` for the
  fixed effects' and the response's rows (:func:`schur_update`), about
  ``sum_l |R_l|^2 k1 / 2`` multiply-adds: no product pattern is stored, and
  the memory is that of S;
* per level, the k1 x k1 quadratic form ``S_l' Q[R_l, R_l] S_l`` of a dense
  qr x qr matrix Q (:func:`level_quadratic`): the conditional covariances
  and the blocks of the inverse.

Both loops are compiled with Numba (already a dependency of PyTensor,
hence of every hierbayes installation): the sums have no vectorised NumPy
form that does not materialise one value per pair of rows (tens of millions
of values on a 2,000,000-row crossed design). Numba and the compiled
kernels are loaded on first use only (``cache=True`` keeps them on disk),
so designs whose coupling is stored dense never import Numba.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> S = sp.csr_matrix(np.array([[1.0, 2.0, 0.0, 0.0], [0.0, 1.0, 3.0, 1.0]]))  # qr = 2, two levels with k1 = 2
>>> lp = LevelPattern.of(S, nl1=2, k1=2)
>>> lp.rows.tolist(), lp.indptr.tolist()
([0, 1, 1], [0, 2, 3])
>>> T = np.stack([np.eye(2), np.sqrt(2) * np.eye(2)])  # W_l = T_l T_l' = I, 2 I
>>> M = np.zeros((2, 2))
>>> _ = schur_update(M, lp, T)  # upper triangle of -S W S'
>>> M.round(12).tolist()
[[-5.0, -2.0], [0.0, -21.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class LevelPattern:
    """S stored level by level of the first block.

    Attributes
    ----------
    indptr
        (nl1 + 1,): level l's entries are ``indptr[l]:indptr[l + 1]``.
    rows
        Row of S (a random effect of the other blocks) of each entry, ascending within a level.
    values
        (entries, k1): ``S[row, l * k1 + a]`` in column a (zero where only another column of the level has it).
    nrows
        Rows of S (qr).
    """

    indptr: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    nrows: int

    @classmethod
    def of(cls, S: sp.csr_matrix, nl1: int, k1: int) -> LevelPattern:
        """The level-by-level form of a sparse S (qr x nl1 * k1)."""
        csc = sp.csc_matrix(S)
        csc.sum_duplicates()  # canonical: sorted rows, one entry per (row, column)
        if k1 == 1:
            return cls(csc.indptr.astype(np.int64), csc.indices.astype(np.int64), csc.data.reshape(-1, 1).copy(),
                       S.shape[0])  # fmt: skip
        same = _same_rows(csc, nl1, k1)
        if same is not None:  # the usual case: every column of a level has the same rows (no sort needed)
            return same
        col = np.repeat(np.arange(csc.shape[1], dtype=np.int64), np.diff(csc.indptr))
        key = (col // k1) * S.shape[0] + csc.indices  # (level, row)
        uniq, inv = np.unique(key, return_inverse=True)  # sorted by level, then row
        values = np.zeros((len(uniq), k1))
        values[inv, col % k1] = csc.data  # each (row, column) once: no sums needed
        counts = np.bincount(uniq // S.shape[0], minlength=nl1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, (uniq % S.shape[0]).astype(np.int64), values, S.shape[0])

    @cached_property
    def entry_levels(self) -> np.ndarray:
        """The level of the first block of every entry."""
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))

    @property
    def pairs(self) -> int:
        """Pairs of entries (i <= j) sharing a level: the work of one Schur update."""
        m = np.diff(self.indptr)
        return int((m * (m + 1) // 2).sum())


def _same_rows(csc: sp.csc_matrix, nl1: int, k1: int) -> LevelPattern | None:
    """The level pattern when the k1 columns of every level hold the same rows; None otherwise."""
    counts = np.diff(csc.indptr).reshape(nl1, k1)
    if not (counts == counts[:, :1]).all():
        return None
    m = counts[:, 0].astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(m)])
    within = np.arange(indptr[-1]) - np.repeat(indptr[:-1], m)
    starts = csc.indptr[:-1].reshape(nl1, k1)
    pos = [np.repeat(starts[:, a], m) + within for a in range(k1)]
    rows = csc.indices[pos[0]]
    if not all(np.array_equal(csc.indices[p], rows) for p in pos[1:]):
        return None
    return LevelPattern(indptr, rows.astype(np.int64), np.column_stack([csc.data[p] for p in pos]), csc.shape[0])


def schur_update(M: np.ndarray, pattern: LevelPattern, T: np.ndarray, LdT: np.ndarray | None = None) -> np.ndarray:
    """In place: subtract ``(S T)(S T)'`` from the upper triangle (i <= j) of the C-ordered square M.

    ``T`` holds one k1 x k1 block per level of the first block (``W_l = T_l T_l'``);
    the rows of S index the leading rows and columns of M. With ``LdT``
    ((nl1, c, k1), level l's ``Ld_l = [X y]' Z1_l T_l``), returns
    ``S W D' = (S T) Ld'`` (qr x c), computed in the same pass; otherwise an
    empty (qr x 0) array.
    """
    nl1, k1 = T.shape[0], T.shape[1]
    LdT = np.zeros((nl1, 0, k1)) if LdT is None else np.ascontiguousarray(LdT)
    SWD = np.zeros((pattern.nrows, LdT.shape[1]))
    _kernels().schur_update(M, pattern.indptr, pattern.rows, pattern.values, np.ascontiguousarray(T), LdT, SWD)
    return SWD


def st_times(pattern: LevelPattern, T: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(S T)' x`` for a vector x over the rows of S: (nl1, k1)."""
    nl1, k1 = T.shape[0], T.shape[1]
    xs = x[pattern.rows]
    u = np.column_stack([np.bincount(pattern.entry_levels, weights=pattern.values[:, a] * xs, minlength=nl1)
                         for a in range(k1)])  # fmt: skip
    return np.einsum("lab,la->lb", T, u)


def s_times(pattern: LevelPattern, T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(S T) w`` for w of shape (nl1, k1): a vector over the rows of S."""
    v = np.einsum("lab,lb->la", T, w)[pattern.entry_levels]
    return np.bincount(pattern.rows, weights=np.einsum("pa,pa->p", pattern.values, v), minlength=pattern.nrows)


def level_quadratic(pattern: LevelPattern, Q: np.ndarray, T: np.ndarray | None = None) -> np.ndarray:
    """Per level l: ``(S_l T_l)' Q[R_l, R_l] (S_l T_l)``, (nl1, k, k); T None for the identity.

    Q is a dense symmetric qr x qr matrix (both triangles read).
    """
    k1 = pattern.values.shape[1]
    if T is None:
        T = np.broadcast_to(np.eye(k1), (len(pattern.indptr) - 1, k1, k1))
    return _kernels().level_quadratic(np.ascontiguousarray(Q), pattern.indptr, pattern.rows, pattern.values,
                                      np.ascontiguousarray(T))  # fmt: skip


_KERNELS = None


def _kernels():
    """The compiled loops (Numba imported here, on first use: dense couplings never need it)."""
    global _KERNELS
    if _KERNELS is None:
        from hierbayes.linalg import _levels_numba  # deferred: Numba's import (~0.5 s) only for sparse couplings

        _KERNELS = _levels_numba
    return _KERNELS
