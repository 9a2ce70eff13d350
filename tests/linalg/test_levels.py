"""The coupling S level by level: the Schur update and the per-level quadratic forms against dense algebra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import block_diag

from hierbayes.linalg.levels import LevelPattern, _same_rows, level_quadratic, s_times, schur_update, st_times


def _coupling(nl1: int, k1: int, qr: int, seed: int):
    """A sparse S with empty levels, a level touching every row, and explicit zeros; T per level."""
    rng = np.random.default_rng(seed)
    S = sp.random(qr, nl1 * k1, density=0.3, random_state=seed, format="lil")
    S[:, :k1] = 0.0  # level 0 touches nothing
    S[:, k1 : 2 * k1] = rng.normal(size=(qr, k1))  # level 1 touches every row
    S = S.tocsr()
    S.data[::7] = 0.0  # explicit zeros stay in the pattern
    return S, rng.normal(size=(nl1, k1, k1))


@pytest.mark.parametrize("k1", [1, 2, 3])
def test_schur_update_equals_dense_product(k1):
    nl1, qr = 9, 6
    S, T = _coupling(nl1, k1, qr, k1)
    pattern = LevelPattern.of(S, nl1, k1)
    assert pattern.indptr[1] == pattern.indptr[0]  # the empty level
    assert (np.diff(pattern.rows[pattern.indptr[1] : pattern.indptr[2]]) > 0).all()  # ascending rows
    rng = np.random.default_rng(0)
    M0 = rng.normal(size=(qr + 2, qr + 2))
    LdT = rng.normal(size=(nl1, 3, k1))
    M = M0.copy()
    SWD = schur_update(M, pattern, T, LdT)
    Sd, Td = S.toarray(), block_diag(*T)
    want = M0[:qr, :qr] - Sd @ Td @ Td.T @ Sd.T
    iu = np.triu_indices(qr)
    np.testing.assert_allclose(M[:qr, :qr][iu], want[iu], rtol=1e-12, atol=1e-12)
    il = np.tril_indices(qr, -1)
    np.testing.assert_array_equal(M[:qr, :qr][il], M0[:qr, :qr][il])  # below the diagonal: untouched
    np.testing.assert_array_equal(M[qr:], M0[qr:])
    np.testing.assert_array_equal(M[:, qr:], M0[:, qr:])
    Ld = LdT.transpose(1, 0, 2).reshape(3, nl1 * k1)
    np.testing.assert_allclose(SWD, Sd @ Td @ Ld.T, rtol=1e-12, atol=1e-12)
    assert schur_update(M0.copy(), pattern, T).shape == (qr, 0)


@pytest.mark.parametrize("k1", [1, 2, 3])
def test_level_quadratic_equals_dense_blocks(k1):
    nl1, qr = 8, 5
    S, _ = _coupling(nl1, k1, qr, 10 + k1)
    rng = np.random.default_rng(k1)
    Q = rng.normal(size=(qr, qr))
    Q = Q + Q.T
    T = rng.normal(size=(nl1, k1, k1))
    out = level_quadratic(LevelPattern.of(S, nl1, k1), Q, T)
    B = S.toarray() @ block_diag(*T)
    full = B.T @ Q @ B
    for lv in range(nl1):
        blk = slice(lv * k1, (lv + 1) * k1)
        np.testing.assert_allclose(out[lv], full[blk, blk], rtol=1e-12, atol=1e-12)
    plain = level_quadratic(LevelPattern.of(S, nl1, k1), Q)
    Sd = S.toarray()
    np.testing.assert_allclose(plain[1], Sd[:, k1 : 2 * k1].T @ Q @ Sd[:, k1 : 2 * k1], rtol=1e-12)
    assert not plain[0].any()


def test_levels_with_the_same_rows_in_every_column_take_the_direct_path():
    rng = np.random.default_rng(5)
    nl1, k1, qr = 6, 2, 5
    dense = np.zeros((qr, nl1 * k1))
    for lv in range(nl1):
        rows = rng.choice(qr, size=3, replace=False)
        dense[rows, lv * k1] = 1.0 + rng.uniform(size=3)
        dense[rows, lv * k1 + 1] = rng.normal(size=3)
    S = sp.csr_matrix(dense)
    direct = LevelPattern.of(S, nl1, k1)
    assert _same_rows(S.tocsc(), nl1, k1) is not None
    dense[0, :] = 0.0  # one column of some level loses a row: the general path
    dense[0, 1] = 2.0
    general = LevelPattern.of(sp.csr_matrix(dense), nl1, k1)
    assert _same_rows(sp.csc_matrix(dense), nl1, k1) is None
    for pat, mat in ((direct, S.toarray()), (general, dense)):
        for lv in range(nl1):
            ent = slice(pat.indptr[lv], pat.indptr[lv + 1])
            back = np.zeros((qr, k1))
            back[pat.rows[ent]] = pat.values[ent]
            np.testing.assert_array_equal(back, mat[:, lv * k1 : (lv + 1) * k1])


@pytest.mark.parametrize("k1", [1, 2, 3])
def test_products_with_s_t_equal_dense_products(k1):
    nl1, qr = 7, 6
    S, T = _coupling(nl1, k1, qr, 20 + k1)
    pattern = LevelPattern.of(S, nl1, k1)
    B = S.toarray() @ block_diag(*T)
    rng = np.random.default_rng(k1)
    x, w = rng.normal(size=qr), rng.normal(size=(nl1, k1))
    np.testing.assert_allclose(st_times(pattern, T, x), (B.T @ x).reshape(nl1, k1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s_times(pattern, T, w), B @ w.ravel(), rtol=1e-12, atol=1e-12)
