"""The cross-products accumulator: a mergeable sum over pieces of the rows, equal to the dense products."""

from __future__ import annotations

import numpy as np
import pytest

from hierbayes.linalg.crossprod import Accumulator, Piece, RowPattern, Structure, accumulate, crossproducts

SIZES = ((7, 2), (4, 1), (3, 2))  # first block (7 levels, intercept and slope), two more blocks


def _data(n: int = 120, seed: int = 3):
    rng = np.random.default_rng(seed)
    codes = tuple(rng.integers(0, nl, n) for nl, _ in SIZES)
    Z = tuple(np.column_stack([np.ones(n), rng.normal(size=n)])[:, :k] for _, k in SIZES)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, n)
    return codes, Z, X, y, w


def _dense(codes, Z, X, y, w):
    """[Z X y]' W [Z X y] by brute force."""
    n = len(y)
    cols = []
    for (nl, k), c, z in zip(SIZES, codes, Z, strict=True):
        Zb = np.zeros((n, nl * k))
        for a in range(k):
            Zb[np.arange(n), c * k + a] = z[:, a]
        cols.append(Zb)
    M = np.column_stack([*cols, X, y])
    return M.T @ (M * w[:, None])


def _check(cp, full):
    q1 = SIZES[0][0] * SIZES[0][1]
    nl1, k1 = SIZES[0]
    A11 = np.stack([full[lv * k1 : (lv + 1) * k1, lv * k1 : (lv + 1) * k1] for lv in range(nl1)])
    np.testing.assert_allclose(cp.A11, A11, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.Arr, full[q1:, q1:], rtol=1e-12, atol=1e-12)
    S = cp.S if isinstance(cp.S, np.ndarray) else cp.S.toarray()
    np.testing.assert_allclose(S, full[q1 : q1 + cp.qr, :q1], rtol=1e-12, atol=1e-12)
    D = full[q1 + cp.qr :, :q1].reshape(-1, nl1, k1)
    np.testing.assert_allclose(cp.D, D, rtol=1e-12, atol=1e-12)
    # off the first block's diagonal blocks Z1'WZ1 is zero: the first block really is block diagonal
    off = full[:q1, :q1].copy()
    for lv in range(nl1):
        off[lv * k1 : (lv + 1) * k1, lv * k1 : (lv + 1) * k1] = 0
    assert not off.any()


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_piece_equals_the_dense_cross_products(dense, weighted):
    codes, Z, X, y, w = _data()
    w = w if weighted else np.ones(len(y))
    s = Structure(SIZES, X.shape[1], dense_coupling=dense)
    cp = accumulate(s, [Piece(codes, Z, X, y, w if weighted else None)])
    _check(cp, _dense(codes, Z, X, y, w))


@pytest.mark.parametrize("dense", [False, True])
def test_pieces_in_any_grouping_sum_to_the_whole(dense):
    codes, Z, X, y, w = _data(n=200)
    s = Structure(SIZES, X.shape[1], dense_coupling=dense)

    def piece(rows):
        return Piece(tuple(c[rows] for c in codes), tuple(z[rows] for z in Z), X[rows], y[rows], w[rows])

    whole = accumulate(s, [piece(slice(0, 200))])
    cuts = [slice(0, 13), slice(13, 90), slice(90, 91), slice(91, 200)]
    left = Accumulator(s).add(piece(cuts[0])).add(piece(cuts[1]))
    right = Accumulator(s).add(piece(cuts[2])).add(piece(cuts[3]))
    tree = left.combine(right).finish()
    serial = accumulate(s, [piece(c) for c in reversed(cuts)])
    for cp in (tree, serial):
        _check(cp, _dense(codes, Z, X, y, w))
        np.testing.assert_allclose(cp.Arr, whole.Arr, rtol=1e-13, atol=1e-13)
    assert left.combine(right).rows == 200
    empty = Accumulator(s).finish()
    assert not empty.Arr.any() and empty.A11.shape == (7, 2, 2)


def test_row_pattern_refreshes_for_new_weights():
    codes, Z, X, y, w = _data()
    s = Structure(SIZES, X.shape[1], dense_coupling=True)
    pat = RowPattern(s, codes, Z, X)
    for weights in (w, w[::-1].copy()):
        _check(pat.crossproducts(y, np.sqrt(weights)), _dense(codes, Z, X, y, weights))


def test_crossproducts_of_blocks_reads_codes_and_z():
    codes, Z, X, y, _ = _data()

    class Block:
        def __init__(self, c, z, nl):
            self.codes, self.Z, self.nlevels, self.k = c, z, nl, z.shape[1]

    blocks = [Block(c, z, nl) for c, z, (nl, _) in zip(codes, Z, SIZES, strict=True)]
    _check(crossproducts(blocks, X, y), _dense(codes, Z, X, y, np.ones(len(y))))


def test_structures_must_match_to_add():
    codes, Z, X, y, _ = _data()
    a = accumulate(Structure(SIZES, 3), [Piece(codes, Z, X, y)])
    b = accumulate(Structure(SIZES, 3, dense_coupling=True), [Piece(codes, Z, X, y)])
    with pytest.raises(ValueError):
        _ = a + b
