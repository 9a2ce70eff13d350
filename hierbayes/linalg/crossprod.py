"""The cross-products of [Z X y], accumulated over pieces of the rows (MixedModels.jl's ``A``).

Every engine that works from cross-products gets them here: the REML/ML
criterion (once per fit), the GLMM's penalized weighted system (once per
PIRLS iteration, with new weights) and the marginalized gaussian likelihood
of the Bayesian engine (once per fit). Each block of the cross-products is a
sum over rows, so they are a mergeable reduction: the rows can arrive in
pieces (record batches, partitions) whose sums are added up, in any grouping,
with the random-effects structure fixed up front (:class:`Structure`).

Layout (blocks ordered as the design orders them, the first one -- the factor
with the most levels -- kept block diagonal):

* ``A11``: Z1'WZ1 per level of the first block, (nl1, k1, k1);
* ``D``: [X y]'WZ1 per level, (p + 1, nl1, k1);
* ``S``: Zr'WZ1 for the remaining blocks ("the rest"), (qr, q1): sparse CSR,
  or dense when the structure asks for it (small couplings, the GLMM);
* ``Arr``: [Zr X y]'W[Zr X y], dense (r x r, r = qr + p + 1).

A dense n x q Z is never formed. W holds the row weights (prior weights,
or PIRLS' working weights), the identity without them.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> codes, X, y = rng.integers(0, 3, 10), np.ones((10, 1)), rng.normal(size=10)
>>> s = Structure(sizes=((3, 1),), p=1)
>>> whole = accumulate(s, [Piece((codes,), (np.ones((10, 1)),), X, y)])
>>> acc = Accumulator(s)
>>> for rows in (slice(0, 4), slice(4, 10)):
...     _ = acc.add(Piece((codes[rows],), (np.ones((10, 1))[rows],), X[rows], y[rows]))
>>> bool(np.allclose(acc.finish().Arr, whole.Arr)), whole.A11[:, 0, 0].tolist() == np.bincount(codes).tolist()
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from hierbayes.linalg.levels import LevelPattern

#: A coupling Zr'Z1 with at most this many entries may be kept dense (see :attr:`Structure.dense_coupling`).
DENSE_COUPLING_MAX = 4_000_000
#: :func:`crossproducts` keeps Zr'Z1 dense when its dense Schur update, (qr + p + 1)^2 q1, is at most this.
DENSE_SCHUR_WORK = 1_000_000
#: A sparse coupling with more products of S entries than this (about 16 bytes each, stored) is summed by the
#: compiled per-level loop of :mod:`hierbayes.linalg.levels` instead of a stored product pattern.
PATTERN_MAX = 4_000_000


@dataclass(frozen=True)
class Structure:
    """What stays fixed while the rows pass: the random-effects blocks' sizes and the number of fixed effects.

    Attributes
    ----------
    sizes
        (levels, k) of every block, the first (block-diagonal) block first.
    p
        Number of fixed-effects columns.
    dense_coupling
        Keep the rest's coupling to the first block, Zr'Z1, as a dense array
        (cheap to refresh and to use when small: the GLMM's PIRLS, the
        Bayesian likelihood) instead of sparse.
    """

    sizes: tuple[tuple[int, int], ...]
    p: int
    dense_coupling: bool = False

    @classmethod
    def of(cls, blocks: Sequence, p: int, dense_coupling: bool = False) -> Structure:
        """The structure of random-effects blocks (anything with ``nlevels`` and ``k``) and p columns of X."""
        return cls(tuple((int(b.nlevels), int(b.k)) for b in blocks), int(p), bool(dense_coupling))

    @property
    def nl1(self) -> int:
        return self.sizes[0][0]

    @property
    def k1(self) -> int:
        return self.sizes[0][1]

    @property
    def q1(self) -> int:
        return self.nl1 * self.k1

    @property
    def qr(self) -> int:
        return sum(nl * k for nl, k in self.sizes[1:])

    @property
    def r(self) -> int:
        """Dimension of the rest: qr + p + 1."""
        return self.qr + self.p + 1

    @cached_property
    def rest_groups(self) -> np.ndarray:
        """For each of the qr rows of the rest's random effects, the first row of its level's k x k block."""
        groups, off = [np.zeros(0, dtype=np.int64)], 0
        for nl, k in self.sizes[1:]:
            groups.append(np.repeat(off + np.arange(nl, dtype=np.int64) * k, k))
            off += nl * k
        return np.concatenate(groups)

    @cached_property
    def rest_block_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows (i, j), i < j, of the rest's random effects in the same level of a block with k > 1."""
        i_all, j_all, off = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], 0
        for nl, k in self.sizes[1:]:
            a, b = np.triu_indices(k, 1)
            base = off + np.arange(nl, dtype=np.int64)[:, None] * k
            i_all.append((base + a).ravel())
            j_all.append((base + b).ravel())
            off += nl * k
        return np.concatenate(i_all), np.concatenate(j_all)


@dataclass(frozen=True)
class Piece:
    """Some rows of the data: each block's level codes and Z columns, X, y and (optionally) row weights.

    Attributes
    ----------
    codes
        Per block, the level index of each row (n,).
    Z
        Per block, the per-row model columns (n, k).
    X, y
        Fixed-effects columns (n, p) and response (n,).
    weights
        Row weights w (n,): each row's terms are multiplied by w; None for ones.
    """

    codes: tuple[np.ndarray, ...]
    Z: tuple[np.ndarray, ...]
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def of(cls, blocks: Sequence, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> Piece:
        """A piece from random-effects blocks with ``codes`` and ``Z`` (e.g. a design's ``ReBlock``)."""
        return cls(tuple(b.codes for b in blocks), tuple(b.Z for b in blocks), X, y, weights)


@dataclass(frozen=True)
class CrossProducts:
    """The (weighted) cross-products of [Z X y]; see the module docstring for the layout.

    Attributes
    ----------
    structure
        Block sizes and p.
    A11, D, Arr
        Z1'WZ1 per level, [X y]'WZ1 per level, [Zr X y]'W[Zr X y].
    S
        Zr'WZ1: sparse CSR, or a dense (qr, q1) array when ``structure.dense_coupling``.
    """

    structure: Structure
    A11: np.ndarray
    D: np.ndarray
    S: sp.csr_matrix | np.ndarray
    Arr: np.ndarray
    _patterns: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def nl1(self) -> int:
        return self.A11.shape[0]

    @property
    def k1(self) -> int:
        return self.A11.shape[1]

    @property
    def q1(self) -> int:
        return self.nl1 * self.k1

    @property
    def qr(self) -> int:
        return self.structure.qr

    @property
    def p(self) -> int:
        return self.structure.p

    @property
    def rest_groups(self) -> np.ndarray:
        return self.structure.rest_groups

    @property
    def dense(self) -> bool:
        """Whether the coupling S is stored dense."""
        return isinstance(self.S, np.ndarray)

    @cached_property
    def S_sparse(self) -> sp.csr_matrix:
        """S as a sparse CSR matrix (a view of the same numbers)."""
        return sp.csr_matrix(self.S) if self.dense else self.S

    @cached_property
    def levels(self) -> LevelPattern:
        """S level by level of the first block (:mod:`hierbayes.linalg.levels`), computed once."""
        return LevelPattern.of(self.S_sparse, self.nl1, self.k1)

    @cached_property
    def compiled(self) -> bool:
        """Whether the sparse coupling's Schur update runs in the compiled per-level loop.

        Large couplings (more than :data:`PATTERN_MAX` products of S entries):
        the product pattern would not fit in memory. Smaller ones keep the
        stored product pattern (:meth:`pattern`: NumPy only, no compiled code to load).
        """
        return not self.dense and self.qr > 0 and self.levels.pairs * self.k1 * self.k1 > PATTERN_MAX

    def pattern(self, stride: int) -> SchurPattern:
        """Product structure of S for the Schur complement of a matrix with ``stride`` columns (cached)."""
        pat = self._patterns.get(stride)
        if pat is None:
            pat = schur_pattern(self.S_sparse, self.nl1, self.k1, stride, self.rest_groups)
            self._patterns[stride] = pat
        return pat

    def __add__(self, other: CrossProducts) -> CrossProducts:
        if other.structure != self.structure:
            raise ValueError("cross-products of different structures cannot be added")
        return CrossProducts(self.structure, self.A11 + other.A11, self.D + other.D, _add_s(self.S, other.S),
                             self.Arr + other.Arr)  # fmt: skip


def _add_s(a, b):
    out = a + b
    return out.tocsr() if sp.issparse(out) else out


def zeros(structure: Structure) -> CrossProducts:
    """The cross-products of no rows."""
    nl1, k1, q1, qr, r = structure.nl1, structure.k1, structure.q1, structure.qr, structure.r
    S = np.zeros((qr, q1)) if structure.dense_coupling else sp.csr_matrix((qr, q1))
    return CrossProducts(structure, np.zeros((nl1, k1, k1)), np.zeros((structure.p + 1, nl1, k1)), S, np.zeros((r, r)))


class RowPattern:
    """Index maps of one set of rows, computed once; :meth:`crossproducts` then sums them for any y and weights.

    PIRLS re-forms the weighted cross-products of the same rows at every
    iteration: every sum is one ``np.bincount`` over these maps.

    Parameters
    ----------
    structure
        Block sizes and p.
    codes, Z
        Per block, the rows' level codes and model columns.
    X
        Fixed-effects columns of the rows (n, p).
    """

    def __init__(self, structure: Structure, codes: Sequence[np.ndarray], Z: Sequence[np.ndarray], X: np.ndarray):
        self.structure = structure
        self.X = X
        self.codes1 = np.asarray(codes[0], dtype=np.int64)
        self.Z1 = Z[0]
        k1, q1, qr, m = structure.k1, structure.q1, structure.qr, structure.p + 1
        # one entry per (rest block, term): the rest column of every row and its Z value
        self.rest_cols: list[np.ndarray] = []
        self.rest_z: list[np.ndarray] = []
        off = 0
        for (nl, k), c, z in zip(structure.sizes[1:], codes[1:], Z[1:], strict=True):
            c = np.asarray(c, dtype=np.int64)
            for a in range(k):
                self.rest_cols.append(off + c * k + a)
                self.rest_z.append(z[:, a])
            off += nl * k
        self._xy_idx = [(c[:, None] * m + np.arange(m)).ravel() for c in self.rest_cols]
        first_cols = [self.codes1 * k1 + a for a in range(k1)]
        if structure.dense_coupling:
            self._s_idx = [[c * q1 + f for f in first_cols] for c in self.rest_cols]
        else:
            self._s_rows = np.concatenate([c for c in self.rest_cols for _ in range(k1)]) if qr else None
            self._s_cols = np.concatenate([f for _ in self.rest_cols for f in first_cols]) if qr else None

    def crossproducts(self, y: np.ndarray, sqrtw: np.ndarray | None = None) -> CrossProducts:
        """The cross-products of the rows with response ``y`` and row weights ``sqrtw**2`` (None: ones)."""
        s = self.structure
        nl1, k1, q1, qr, p = s.nl1, s.k1, s.q1, s.qr, s.p
        codes, Z1 = self.codes1, self.Z1
        w = None if sqrtw is None else sqrtw * sqrtw
        wZ1 = Z1 if w is None else Z1 * w[:, None]
        A11 = np.empty((nl1, k1, k1))
        for a in range(k1):
            for b in range(a, k1):
                A11[:, a, b] = A11[:, b, a] = np.bincount(codes, weights=wZ1[:, a] * Z1[:, b], minlength=nl1)
        Xy = np.column_stack([self.X, y])
        D = np.empty((p + 1, nl1, k1))
        for a in range(k1):
            for c in range(p + 1):
                D[c, :, a] = np.bincount(codes, weights=wZ1[:, a] * Xy[:, c], minlength=nl1)
        Xyw = Xy if sqrtw is None else Xy * sqrtw[:, None]
        r = qr + p + 1
        Arr = np.empty((r, r))
        Arr[qr:, qr:] = Xyw.T @ Xyw
        if not qr:
            S = np.zeros((0, q1)) if s.dense_coupling else sp.csr_matrix((0, q1))
            return CrossProducts(s, A11, D, S, Arr)
        ZrZr = np.zeros(qr * qr)
        ZrXy = np.zeros(qr * (p + 1))
        S = np.zeros(qr * q1) if s.dense_coupling else None
        s_vals = []
        for e, (ce, ze) in enumerate(zip(self.rest_cols, self.rest_z, strict=True)):
            wz = ze if w is None else w * ze
            for f in range(e, len(self.rest_cols)):
                ZrZr += np.bincount(ce * qr + self.rest_cols[f], weights=wz * self.rest_z[f], minlength=qr * qr)
            for a in range(k1):
                if S is not None:
                    S += np.bincount(self._s_idx[e][a], weights=wz * Z1[:, a], minlength=qr * q1)
                else:
                    s_vals.append(wz * Z1[:, a])
            ZrXy += np.bincount(self._xy_idx[e], weights=(wz[:, None] * Xy).ravel(), minlength=qr * (p + 1))
        ZrZr = ZrZr.reshape(qr, qr)
        Arr[:qr, :qr] = ZrZr + ZrZr.T - np.diag(np.diag(ZrZr))  # pairs were accumulated once (e <= f)
        Arr[:qr, qr:] = ZrXy.reshape(qr, p + 1)
        Arr[qr:, :qr] = Arr[:qr, qr:].T
        if S is not None:
            S = S.reshape(qr, q1)
        else:
            S = sp.csr_matrix((np.concatenate(s_vals), (self._s_rows, self._s_cols)), shape=(qr, q1))
            S.sum_duplicates()
        return CrossProducts(s, A11, D, S, Arr)


class Accumulator:
    """Cross-products summed over pieces of the rows: ``add`` pieces, ``combine`` accumulators, ``finish``.

    The sum is associative and commutative up to rounding: accumulators of
    disjoint pieces can be built apart (on other processes) and combined in
    any tree.

    Parameters
    ----------
    structure
        Block sizes and p, fixed up front.
    """

    def __init__(self, structure: Structure):
        self.structure = structure
        self._sum: CrossProducts | None = None
        self.rows = 0

    def add(self, piece: Piece) -> Accumulator:
        """Add the cross-products of a piece of the rows; returns the accumulator."""
        sqrtw = None if piece.weights is None else np.sqrt(np.asarray(piece.weights, dtype=float))
        cp = RowPattern(self.structure, piece.codes, piece.Z, piece.X).crossproducts(piece.y, sqrtw)
        self._sum = cp if self._sum is None else self._sum + cp
        self.rows += len(piece.y)
        return self

    def combine(self, other: Accumulator) -> Accumulator:
        """A new accumulator holding the rows of both."""
        out = Accumulator(self.structure)
        parts = [a._sum for a in (self, other) if a._sum is not None]
        out._sum = None if not parts else parts[0] if len(parts) == 1 else parts[0] + parts[1]
        out.rows = self.rows + other.rows
        return out

    def finish(self) -> CrossProducts:
        """The cross-products of every row added."""
        return zeros(self.structure) if self._sum is None else self._sum


def accumulate(structure: Structure, pieces: Iterable[Piece]) -> CrossProducts:
    """The cross-products of all the pieces' rows."""
    acc = Accumulator(structure)
    for piece in pieces:
        acc.add(piece)
    return acc.finish()


@dataclass(frozen=True)
class SchurPattern:
    """Index structure for forming ``S W S'`` fast when W is block diagonal.

    ``S = Zr'Z1`` is sparse and fixed; ``W`` (one k1 x k1 block per level of
    the first factor) changes with theta. Entry (i, j) of ``S W S'`` sums
    ``S[i, (l, a)] W_l[a, b] S[j, (l, b)]`` over levels l: the products of S
    values are precomputed once into ``P``, whose rows address the entries of
    a C-ordered matrix with ``stride`` columns, so each evaluation is one
    sparse matrix-vector product ``P @ vec(W)``.

    Only the entries the Cholesky factorization reads are formed: (i, j) with
    i <= j (the upper triangle of the C-ordered matrix, which LAPACK reads as
    the lower triangle of its transpose), plus both triangles of the k x k
    diagonal blocks of a rest factor with k > 1 (``Lambda' M Lambda`` mixes
    them). This halves the work of each evaluation.
    """

    P: sp.csc_matrix


def schur_pattern(S: sp.csr_matrix, nl1: int, k1: int, stride: int, groups: np.ndarray) -> SchurPattern:
    """Precompute the products of S entries that share a level of the first factor.

    Rows of ``P`` are positions ``i * stride + j`` in a C-ordered matrix with
    ``stride`` columns; columns index ``vec(W)``. Pairs are generated level by
    level, so for k1 = 1 they are already in column order and ``P`` is built
    in CSC form without sorting. Only pairs with ``groups[i] <= groups[j]``
    are kept (see :class:`SchurPattern`).
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
    return SchurPattern(P=P)


def crossproducts(
    blocks: Sequence,
    X: np.ndarray,
    y: np.ndarray,
    sqrtw: np.ndarray | None = None,
    dense_coupling: bool | None = None,
) -> CrossProducts:
    """The cross-products of all rows at once, from random-effects blocks with ``codes`` and ``Z``.

    ``sqrtw``: square roots of the row weights (None for ones). ``dense_coupling``:
    keep Zr'WZ1 dense (True) or sparse (False); None chooses dense when the
    dense Schur update costs at most :data:`DENSE_SCHUR_WORK` multiply-adds
    (small crossed designs: plain BLAS, no compiled loop to load).
    """
    if dense_coupling is None:
        sizes = [(int(b.nlevels), int(b.k)) for b in blocks]
        qr = sum(nl * k for nl, k in sizes[1:])
        r = qr + X.shape[1] + 1
        dense_coupling = 0 < qr and r * r * sizes[0][0] * sizes[0][1] <= DENSE_SCHUR_WORK
    structure = Structure.of(blocks, X.shape[1], dense_coupling)
    return RowPattern(structure, [b.codes for b in blocks], [b.Z for b in blocks], X).crossproducts(y, sqrtw)


def shifted(cp: CrossProducts, coef: np.ndarray) -> CrossProducts:
    """The cross-products of [Z X (y - X coef)] from those of [Z X y], exactly (each block is linear in y).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> codes, X, y = rng.integers(0, 3, 12), rng.normal(size=(12, 2)), rng.normal(size=12)
    >>> s = Structure(sizes=((3, 1),), p=2)
    >>> whole = accumulate(s, [Piece((codes,), (np.ones((12, 1)),), X, y)])
    >>> direct = accumulate(s, [Piece((codes,), (np.ones((12, 1)),), X, y - X @ [0.5, -1.0])])
    >>> bool(np.allclose(shifted(whole, np.array([0.5, -1.0])).Arr, direct.Arr))
    True
    """
    coef = np.asarray(coef, dtype=float)
    qr, p = cp.qr, cp.p
    D = cp.D.copy()
    D[p] -= np.tensordot(coef, cp.D[:p], axes=1)
    A = cp.Arr.copy()
    ix, iy = slice(qr, qr + p), qr + p
    zy = cp.Arr[:qr, iy] - cp.Arr[:qr, ix] @ coef
    xy = cp.Arr[ix, iy] - cp.Arr[ix, ix] @ coef
    yy = cp.Arr[iy, iy] - 2.0 * coef @ cp.Arr[ix, iy] + coef @ cp.Arr[ix, ix] @ coef
    A[:qr, iy] = A[iy, :qr] = zy
    A[ix, iy] = A[iy, ix] = xy
    A[iy, iy] = yy
    return CrossProducts(cp.structure, cp.A11, D, cp.S, A)


def with_columns(cp: CrossProducts, keep: Sequence[int]) -> CrossProducts:
    """The cross-products of [Z X[:, keep] y]: some columns of X left out (aliased ones, a profiled effect)."""
    keep = [int(j) for j in keep]
    qr, p = cp.qr, cp.p
    idx = [*range(qr), *(qr + j for j in keep), qr + p]
    st = cp.structure
    structure = Structure(st.sizes, len(keep), st.dense_coupling)
    return CrossProducts(structure, cp.A11, cp.D[[*keep, p]].copy(), cp.S, cp.Arr[np.ix_(idx, idx)].copy())
