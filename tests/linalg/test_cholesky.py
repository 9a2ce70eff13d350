"""The blocked Cholesky factor against dense linear algebra: log-determinants, solutions, inverse blocks."""

from __future__ import annotations

import numpy as np
import pytest

from hierbayes.linalg import (
    backward,
    conditional_covariances,
    crossprod,
    factorize,
    first_block,
    fixef_precision_factor,
    forward,
    lower_inverse,
    minv_diag_sums,
    solve,
)
from hierbayes.linalg.crossprod import Piece, Structure, accumulate
from tests.linalg.test_crossprod import SIZES, _data, _dense

LAMBDAS = [np.array([[0.8, 0.0], [0.3, 0.5]]), np.array([[1.3]]), np.array([[0.6, 0.0], [-0.2, 0.4]])]


def _big_lambda():
    blocks = []
    for lam, (nl, _) in zip(LAMBDAS, SIZES, strict=True):
        blocks.append(np.kron(np.eye(nl), lam))
    q = sum(b.shape[0] for b in blocks)
    out = np.zeros((q, q))
    i = 0
    for b in blocks:
        out[i : i + len(b), i : i + len(b)] = b
        i += len(b)
    return out


def _system(dense: bool, weighted: bool):
    codes, Z, X, y, w = _data()
    w = w if weighted else np.ones(len(y))
    cp = accumulate(Structure(SIZES, X.shape[1], dense_coupling=dense), [Piece(codes, Z, X, y, w)])
    full = _dense(codes, Z, X, y, w)
    q = full.shape[0] - X.shape[1] - 1
    Lam = np.eye(full.shape[0])
    Lam[:q, :q] = _big_lambda()
    M = Lam.T @ full @ Lam
    M[:q, :q] += np.eye(q)
    return cp, M, q, X.shape[1]


@pytest.fixture(params=["pattern", "compiled", "dense"])
def dense(request, monkeypatch):
    """The coupling S dense, or sparse with its Schur update by the stored pattern or the compiled loop."""
    if request.param == "compiled":
        monkeypatch.setattr(crossprod, "PATTERN_MAX", 0)
    return request.param == "dense"


@pytest.mark.parametrize("weighted", [False, True])
def test_factor_pieces_equal_dense_algebra(dense, weighted):
    cp, M, q, p = _system(dense, weighted)
    assert cp.compiled == (crossprod.PATTERN_MAX == 0 and not dense)
    f = factorize(cp, LAMBDAS)
    Mzz, Mxx = M[:q, :q], M[: q + p, : q + p]
    assert f.logdet_L == pytest.approx(np.linalg.slogdet(Mzz)[1], rel=1e-12)
    assert f.logdet_L + f.logdet_RX == pytest.approx(np.linalg.slogdet(Mxx)[1], rel=1e-12)
    sol = np.linalg.solve(Mxx, M[: q + p, -1])
    assert f.r2 == pytest.approx(M[-1, -1] - M[: q + p, -1] @ sol, rel=1e-10)
    u1, ur, beta = solve(f)
    np.testing.assert_allclose(np.concatenate([u1.ravel(), ur, beta]), sol, rtol=1e-9, atol=1e-10)
    RX = fixef_precision_factor(f)
    Minv = np.linalg.inv(Mxx)
    np.testing.assert_allclose(np.linalg.inv(RX @ RX.T), Minv[q:, q:], rtol=1e-9, atol=1e-12)
    # conditional covariances: diagonal blocks of Lambda Mzz^{-1} Lambda' (sigma = 1)
    V = _big_lambda() @ np.linalg.inv(Mzz) @ _big_lambda().T
    start = 0
    for cv, (nl, k) in zip(conditional_covariances(f, 1.0), SIZES, strict=True):
        for lv in range(nl):
            i = start + lv * k
            np.testing.assert_allclose(cv[lv], V[i : i + k, i : i + k], rtol=1e-9, atol=1e-12)
        start += nl * k


def test_random_effects_part_alone(dense):
    cp, M, q, _ = _system(dense, True)
    f = factorize(cp, LAMBDAS, with_xy=False)
    Mzz = M[:q, :q]
    assert f.logdet_L == pytest.approx(np.linalg.slogdet(Mzz)[1], rel=1e-12)
    assert np.isnan(f.r2) and f.Lrr.shape == (cp.qr, cp.qr)
    rng = np.random.default_rng(0)
    c = rng.normal(size=q)
    q1 = cp.q1
    w1, wr = forward(f, c[:q1].reshape(cp.nl1, cp.k1), c[q1:])
    u1, ur = backward(f, w1, wr)
    np.testing.assert_allclose(np.concatenate([u1.ravel(), ur]), np.linalg.solve(Mzz, c), rtol=1e-9, atol=1e-12)
    Minv = np.linalg.inv(Mzz)
    sums, start = minv_diag_sums(f), 0
    for s, (nl, k) in zip(sums, SIZES, strict=True):
        want = sum(
            Minv[start + lv * k : start + (lv + 1) * k, start + lv * k : start + (lv + 1) * k] for lv in range(nl)
        )
        np.testing.assert_allclose(s, want, rtol=1e-9, atol=1e-12)
        start += nl * k


def test_not_positive_definite_is_none():
    cp, *_ = _system(False, False)
    assert factorize(cp, [np.array([[np.nan, 0.0], [0.0, 1.0]]), *LAMBDAS[1:]]) is None


@pytest.mark.parametrize("k", [1, 2, 3])
def test_first_block_closed_forms_and_batches_agree_with_lapack(k):
    rng = np.random.default_rng(k)
    G = rng.normal(size=(5, 6, k))
    A = np.einsum("lia,lib->lab", G, G)
    lams = np.tril(rng.normal(size=(4, k, k)))
    Linv, T, logdet = first_block(A, lams)
    for d in range(4):
        M = np.einsum("ji,ljk,km->lim", lams[d], A, lams[d]) + np.eye(k)
        L = np.linalg.cholesky(M)
        np.testing.assert_allclose(Linv[d], np.linalg.inv(L), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(T[d], np.einsum("ij,lkj->lik", lams[d], np.linalg.inv(L)), rtol=1e-10, atol=1e-12)
        assert logdet[d] == pytest.approx(np.linalg.slogdet(M)[1].sum(), rel=1e-12)
        one = first_block(A, lams[d])
        np.testing.assert_allclose(one[0], Linv[d], rtol=1e-13)


def test_lower_inverse():
    L = np.tril(np.random.default_rng(1).normal(size=(4, 4))) + 4 * np.eye(4)
    np.testing.assert_allclose(lower_inverse(L) @ L, np.eye(4), atol=1e-12)
    assert lower_inverse(np.zeros((0, 0))).shape == (0, 0)
