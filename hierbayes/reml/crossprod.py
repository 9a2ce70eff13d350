"""Cross-products of [Z X y], computed once per fit (MixedModels.jl's ``A``).

Blocks are ordered largest first. The first block's Z1'Z1 is block diagonal
(one k x k matrix per level) and stored as an array; everything else -- the
remaining blocks Zr, X and y -- is "the rest", of dimension
r = q2 + ... + qm + p + 1, whose cross-product is stored dense. The
cross-product of the rest with Z1 is split into a sparse part (Zr'Z1) and a
dense part ([X y]'Z1, stored per level). A dense n x q Z is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from hierbayes.design import ReBlock


@dataclass(frozen=True)
class CrossProducts:
    """Stored cross-products of a (possibly weighted) mixed-model design.

    Attributes
    ----------
    A11
        Z1'Z1 per level of the first block, shape (nl1, k1, k1).
    S
        Zr'Z1 for the remaining blocks, sparse (qr x q1) CSR.
    D
        [X y]'Z1 per level, shape (p + 1, nl1, k1).
    Arr
        [Zr X y]'[Zr X y], dense (r x r).
    qr, p
        Sizes of the rest's random-effects part and of X.
    rest_groups
        For each of the qr rows of the rest's random effects, the first row
        of its level's k x k block (the row itself when k = 1).
    """

    A11: np.ndarray
    S: sp.csr_matrix
    D: np.ndarray
    Arr: np.ndarray
    qr: int
    p: int
    rest_groups: np.ndarray

    @cached_property
    def pattern(self) -> RestPattern:
        """Product structure of S for the rest's Schur complement (computed on first use)."""
        return rest_pattern(self.S, self.nl1, self.k1, stride=self.Arr.shape[1], groups=self.rest_groups)

    @property
    def nl1(self) -> int:
        return self.A11.shape[0]

    @property
    def k1(self) -> int:
        return self.A11.shape[1]


def crossproducts(
    blocks: tuple[ReBlock, ...], X: np.ndarray, y: np.ndarray, sqrtw: np.ndarray | None = None
) -> CrossProducts:
    """Compute the cross-products of [Z X y], optionally with row weights.

    Parameters
    ----------
    blocks
        Random-effects blocks, the first (largest) one is kept block diagonal.
    X, y
        Fixed-effects matrix and response.
    sqrtw
        Square roots of row weights (PIRLS for GLMMs), or None.
    """
    first, rest = blocks[0], blocks[1:]
    Z1 = first.Z if sqrtw is None else first.Z * sqrtw[:, None]
    Xy = np.column_stack([X, y])
    if sqrtw is not None:
        Xy = Xy * sqrtw[:, None]
    nl, k = first.nlevels, first.k
    codes = first.codes
    A11 = np.zeros((nl, k, k))
    for a in range(k):
        for b in range(a, k):
            v = np.bincount(codes, weights=Z1[:, a] * Z1[:, b], minlength=nl)
            A11[:, a, b] = v
            A11[:, b, a] = v
    D = np.zeros((Xy.shape[1], nl, k))
    for a in range(k):
        for c in range(Xy.shape[1]):
            D[c, :, a] = np.bincount(codes, weights=Xy[:, c] * Z1[:, a], minlength=nl)
    if rest:
        Zr = sp.hstack([_weighted_z(b, sqrtw) for b in rest], format="csr")
        Z1s = _weighted_z(first, sqrtw)
        S = (Zr.T @ Z1s).tocsr()
        ZrZr = (Zr.T @ Zr).toarray()
        ZrXy = np.asarray(Zr.T @ Xy)
        Arr = np.block([[ZrZr, ZrXy], [ZrXy.T, Xy.T @ Xy]])
        qr = Zr.shape[1]
    else:
        S = sp.csr_matrix((0, first.q))
        Arr = Xy.T @ Xy
        qr = 0
    groups, off = [np.zeros(0, dtype=np.int64)], 0
    for b in rest:
        groups.append(np.repeat(off + np.arange(b.nlevels) * b.k, b.k))
        off += b.q
    rest_groups = np.concatenate(groups)
    return CrossProducts(A11=A11, S=S, D=D, Arr=Arr, qr=qr, p=X.shape[1], rest_groups=rest_groups)


def _weighted_z(block: ReBlock, sqrtw: np.ndarray | None) -> sp.csr_matrix:
    Z = block.z_sparse()
    return Z if sqrtw is None else sp.csr_matrix(Z.multiply(sqrtw[:, None]))


@dataclass(frozen=True)
class RestPattern:
    """Index structure for forming ``S W S'`` fast when W is block diagonal.

    ``S = Zr'Z1`` is sparse and fixed; ``W`` (one k1 x k1 block per level of
    the first factor) changes with theta. Entry (i, j) of ``S W S'`` sums
    ``S[i, (l, a)] W_l[a, b] S[j, (l, b)]`` over levels l: the products of S
    values are precomputed once into ``P``, whose rows address the entries of
    the (C-ordered, r x r) rest matrix, so each evaluation is one sparse
    matrix-vector product ``P @ vec(W)``.

    Only the entries the Cholesky factorization reads are formed: (i, j) with
    i <= j (the upper triangle of the C-ordered matrix, which LAPACK reads as
    the lower triangle of its transpose), plus both triangles of the k x k
    diagonal blocks of a rest factor with k > 1 (``Lambda' M Lambda`` mixes
    them). This halves the work of each evaluation.
    """

    P: sp.csc_matrix


def rest_pattern(S: sp.csr_matrix, nl1: int, k1: int, stride: int, groups: np.ndarray) -> RestPattern:
    """Precompute the products of S entries that share a level of the first factor.

    Rows of ``P`` are positions ``i * stride + j`` in a C-ordered matrix with
    ``stride`` columns; columns index ``vec(W)``. Pairs are generated level by
    level, so for k1 = 1 they are already in column order and ``P`` is built
    in CSC form without sorting. Only pairs with ``groups[i] <= groups[j]``
    are kept (see :class:`RestPattern`).
    """
    csc = S.tocsc()
    csc.sort_indices()
    counts_col = np.diff(csc.indptr)
    col = np.repeat(np.arange(S.shape[1]), counts_col)
    level, a = col // k1, col % k1
    rows, vals = csc.indices, csc.data
    counts = np.bincount(level, minlength=nl1)
    starts = np.cumsum(counts) - counts
    nnz = len(rows)
    if k1 == 1 and np.array_equal(groups, np.arange(len(groups))):
        # scalar blocks, rows sorted within each level: the pairs i <= j are the positions t2 >= t1,
        # generated directly (half the pairs, and no filtering pass over all of them)
        per_entry = counts[level] - (np.arange(nnz) - starts[level])
        ends = np.cumsum(per_entry)
        first = np.repeat(np.arange(nnz), per_entry)
        second = first + (np.arange(int(ends[-1]) if nnz else 0) - np.repeat(ends - per_entry, per_entry))
    else:
        per_entry = counts[level]
        total = int(per_entry.sum())
        first = np.repeat(np.arange(nnz), per_entry)
        second = np.repeat(starts[level] - (np.cumsum(per_entry) - per_entry), per_entry) + np.arange(total)
        keep = groups[rows[first]] <= groups[rows[second]]
        first, second = first[keep], second[keep]
    out = rows[first].astype(np.int64) * stride + rows[second]
    data = vals[first] * vals[second]
    if k1 == 1:
        indptr = np.concatenate([[0], np.cumsum(np.bincount(level[first], minlength=nl1))])
        P = sp.csc_matrix((data, out, indptr), shape=(stride * stride, nl1))
    else:
        widx = level[first].astype(np.int64) * (k1 * k1) + a[first] * k1 + a[second]
        P = sp.csc_matrix((data, (out, widx)), shape=(stride * stride, nl1 * k1 * k1))
    return RestPattern(P=P)
