"""The exact gaussian path: marginal log-likelihood, gradients and conditional draws against dense algebra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg as sla
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import blocked
from hierbayes.bayesian.blocked import gaussian_crossproducts
from hierbayes.bayesian.marginal import marginal_loglik
from tests.refdata import ROOT

DATA = ROOT / "tests" / "reference" / "data"

CASES = {
    "slopes": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "crossed": ("score ~ treatment + (1 + treatment | rater) + (1 | student)", "sim_crossed"),
    "nested": ("y ~ x + (1 | school/class)", "sim_nested2"),
    "wide_first": ("y ~ treatment + (1 + treatment | school) + (1 | student)", "sim_nested"),
    "independent_crossed": ("score ~ treatment + (treatment || rater) + (1 | student)", "sim_crossed"),
}


def _data(name: str) -> pd.DataFrame:
    return hb.datasets.load(name) if name == "sleepstudy" else pd.read_csv(DATA / f"{name}.csv")


def _design(case: str):
    formula, data = CASES[case]
    return hb.Model(formula, _data(data)).design


def _random_factors(design, rng):
    Ls = []
    for b in design.blocks:
        L = np.tril(rng.normal(size=(b.k, b.k)))
        L[np.diag_indices(b.k)] = np.abs(np.diag(L)) + 0.5
        for cols in b.bars:  # zero between bars, as the model builds it
            others = [c for c in range(b.k) if c not in cols]
            L[np.ix_(cols, others)] = 0.0
            L[np.ix_(others, cols)] = 0.0
        Ls.append(L)
    return Ls


def _dense(design, beta, sigma, Ls):
    Z = design.z_sparse().toarray()
    Sig = sla.block_diag(*[np.kron(np.eye(b.nlevels), L @ L.T) for b, L in zip(design.blocks, Ls, strict=True)])
    V = sigma**2 * np.eye(design.n) + Z @ Sig @ Z.T
    return Z, Sig, V


def _params(design, rng):
    beta = np.linalg.lstsq(design.X, design.y, rcond=None)[0] + rng.normal(scale=0.3, size=design.p)
    return beta, float(np.std(design.y) * 0.6), _random_factors(design, rng)


@pytest.mark.parametrize("case", list(CASES))
def test_loglik_equals_dense_multivariate_normal(case):
    d = _design(case)
    rng = np.random.default_rng(1)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    _, _, V = _dense(d, beta, sigma, Ls)
    want = stats.multivariate_normal(d.X @ beta, V).logpdf(d.y)
    assert blocked.loglik(cp, beta, sigma, Ls) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("case", ["crossed", "wide_first", "nested"])
def test_gradient_equals_finite_differences(case):
    d = _design(case)
    rng = np.random.default_rng(2)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    _, dbeta, dsigma, dLs = blocked.loglik_grad(cp, beta, sigma, Ls)
    h = 1e-6

    def f(b=beta, s=sigma, L=Ls):
        return blocked.loglik(cp, b, s, L)

    num_beta = [(f(b=beta + h * e) - f(b=beta - h * e)) / (2 * h) for e in np.eye(d.p)]
    np.testing.assert_allclose(dbeta, num_beta, rtol=1e-5, atol=1e-5)
    assert dsigma == pytest.approx((f(s=sigma + h) - f(s=sigma - h)) / (2 * h), rel=1e-5)
    for g, L in enumerate(Ls):
        for i, j in zip(*np.tril_indices(L.shape[0]), strict=True):
            up = [x.copy() for x in Ls]
            dn = [x.copy() for x in Ls]
            up[g][i, j] += h
            dn[g][i, j] -= h
            assert dLs[g][i, j] == pytest.approx((f(L=up) - f(L=dn)) / (2 * h), rel=1e-5, abs=1e-5)


def _compiled(cp, force_op: bool, k_list):
    beta = pt.dvector("beta")
    sigma = pt.dscalar("sigma")
    Ls = [pt.dmatrix(f"L{g}") for g in range(len(k_list))]
    ll = marginal_loglik(cp, beta, sigma, Ls, force_op=force_op)
    grads = pytensor.grad(ll, [beta, sigma, *Ls])
    return pytensor.function([beta, sigma, *Ls], [ll, *grads])


@pytest.mark.parametrize("case", ["slopes", "crossed"])
def test_pytensor_graph_and_op_match_numpy(case):
    d = _design(case)
    rng = np.random.default_rng(3)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    ll, dbeta, dsigma, dLs = blocked.loglik_grad(cp, beta, sigma, Ls)
    variants = [True] + ([False] if len(d.blocks) == 1 else [])
    for force_op in variants:
        out = _compiled(cp, force_op, [b.k for b in d.blocks])(beta, sigma, *Ls)
        assert out[0] == pytest.approx(ll, rel=1e-10)
        np.testing.assert_allclose(out[1], dbeta, rtol=1e-8)
        assert out[2] == pytest.approx(dsigma, rel=1e-8)
        for got, want in zip(out[3:], dLs, strict=True):
            np.testing.assert_allclose(np.tril(got), np.tril(want), rtol=1e-8, atol=1e-10)


def test_not_positive_definite_gives_minus_infinity():
    d = _design("slopes")
    cp = gaussian_crossproducts(d)
    L = np.array([[1.0, 0.0], [1.0, np.nan]])
    assert blocked.loglik(cp, np.zeros(2), 1.0, [L]) == -np.inf


def _conditional_moments(design, beta, sigma, Ls):
    Z, Sig, V = _dense(design, beta, sigma, Ls)
    SZt = Sig @ Z.T
    mean = SZt @ np.linalg.solve(V, design.y - design.X @ beta)
    cov = Sig - SZt @ np.linalg.solve(V, SZt.T)
    return mean, cov


@pytest.mark.parametrize("case", ["crossed", "slopes"])
def test_conditional_draws_have_the_exact_gaussian_moments(case):
    d = _design(case)
    rng = np.random.default_rng(4)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    mean, cov = _conditional_moments(d, beta, sigma, Ls)
    n = 4000
    if len(d.blocks) == 1:
        draws = blocked.draw_ranef_one_block(
            cp, np.tile(beta, (n, 1)), np.full(n, sigma), np.tile(Ls[0], (n, 1, 1)), rng
        ).reshape(n, -1)
    else:
        draws = np.stack([np.concatenate([b.ravel() for b in blocked.draw_ranef(cp, beta, sigma, Ls, rng)])
                          for _ in range(n)])  # fmt: skip
    sd = np.sqrt(np.diag(cov))
    z = (draws.mean(axis=0) - mean) / (sd / np.sqrt(n))
    assert np.abs(z).max() < 4.5
    ratio = draws.std(axis=0) / sd
    assert np.abs(ratio - 1).max() < 0.1
    i, j = 0, d.blocks[0].k  # a covariance between two different levels' effects
    emp = np.cov(draws[:, i], draws[:, j])[0, 1]
    assert emp == pytest.approx(cov[i, j], abs=5 * np.sqrt(cov[i, i] * cov[j, j] / n))


@pytest.mark.parametrize("case", ["crossed", "nested", "wide_first"])
def test_sparse_rest_path_equals_dense_rest_path(case, monkeypatch):
    """Large designs keep Zr'Z1 sparse; the result must not depend on it."""

    d = _design(case)
    rng = np.random.default_rng(5)
    beta, sigma, Ls = _params(d, rng)
    dense = gaussian_crossproducts(d)
    monkeypatch.setattr(blocked, "DENSE_MAX", 0)
    sparse = gaussian_crossproducts(d)
    assert dense.Ar1_dense is not None and sparse.Ar1_dense is None
    a, b = blocked.loglik_grad(dense, beta, sigma, Ls), blocked.loglik_grad(sparse, beta, sigma, Ls)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9)
    assert a[2] == pytest.approx(b[2], rel=1e-9)
    for x, y in zip(a[3], b[3], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
    r1 = blocked.draw_ranef(dense, beta, sigma, Ls, np.random.default_rng(0))
    r2 = blocked.draw_ranef(sparse, beta, sigma, Ls, np.random.default_rng(0))
    for x, y in zip(r1, r2, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
