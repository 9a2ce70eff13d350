"""Partial marginalization (only the first factor integrated out): likelihood, conditional draws, choice, posterior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import Prior, build_pymc_model
from hierbayes.bayesian.crossprod import gaussian_crossproducts
from hierbayes.bayesian.model import PARTIAL_COST_MIN, full_marginal_cost, resolve_marginalize
from hierbayes.bayesian.partial import draw_first_block, partial_loglik, rest_coupling
from tests.bayesian.conftest import quiet_fit
from tests.bayesian.test_agreement import Z_MAX, _zscores
from tests.bayesian.test_blocked import _design, _params


def _dense_parts(design, L1):
    Z1 = design.blocks[0].z_sparse().toarray()
    Zr = np.hstack([b.z_sparse().toarray() for b in design.blocks[1:]])
    Sig1 = np.kron(np.eye(design.blocks[0].nlevels), L1 @ L1.T)
    return Z1, Zr, Sig1


def _compiled(cp):
    beta, sigma, L1, br = pt.dvector("beta"), pt.dscalar("sigma"), pt.dmatrix("L1"), pt.dvector("br")
    ll = partial_loglik(cp, rest_coupling(cp), beta, sigma, L1, br)
    return pytensor.function([beta, sigma, L1, br], [ll, *pytensor.grad(ll, [beta, sigma, L1, br])])


@pytest.mark.parametrize("case", ["crossed", "nested", "wide_first"])
def test_partial_loglik_is_the_gaussian_density_given_the_other_effects(case):
    d = _design(case)
    rng = np.random.default_rng(6)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    br = rng.normal(size=cp.qr)
    Z1, Zr, Sig1 = _dense_parts(d, Ls[0])
    want = stats.multivariate_normal(d.X @ beta + Zr @ br, sigma**2 * np.eye(d.n) + Z1 @ Sig1 @ Z1.T).logpdf(d.y)
    f = _compiled(cp)
    ll, dbeta, dsigma, _, dbr = f(beta, sigma, Ls[0], br)
    assert ll == pytest.approx(want, rel=1e-10)
    # the gradient in the other effects: Zr' V^-1 (y - mean), and in beta: X' V^-1 (y - mean)
    V = sigma**2 * np.eye(d.n) + Z1 @ Sig1 @ Z1.T
    alpha = np.linalg.solve(V, d.y - d.X @ beta - Zr @ br)
    np.testing.assert_allclose(dbr, Zr.T @ alpha, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dbeta, d.X.T @ alpha, rtol=1e-8, atol=1e-10)
    h = 1e-6
    assert dsigma == pytest.approx((f(beta, sigma + h, Ls[0], br)[0] - f(beta, sigma - h, Ls[0], br)[0]) / (2 * h),
                                   rel=1e-5)  # fmt: skip


@pytest.mark.parametrize("case", ["crossed", "wide_first"])
def test_first_block_draws_have_the_exact_conditional_moments(case):
    d = _design(case)
    rng = np.random.default_rng(7)
    beta, sigma, Ls = _params(d, rng)
    cp = gaussian_crossproducts(d)
    br = rng.normal(size=cp.qr)
    Z1, Zr, Sig1 = _dense_parts(d, Ls[0])
    # b1 | y, b_r ~ N(C Z1'r / sigma^2, C), C = (Z1'Z1 / sigma^2 + Sig1^-1)^-1
    C = np.linalg.inv(Z1.T @ Z1 / sigma**2 + np.linalg.inv(Sig1))
    mean = C @ Z1.T @ (d.y - d.X @ beta - Zr @ br) / sigma**2
    n = 4000
    tiled = (np.tile(beta, (n, 1)), np.full(n, sigma), np.tile(Ls[0], (n, 1, 1)), np.tile(br, (n, 1)))
    draws = draw_first_block(cp, rest_coupling(cp), *tiled, rng, chunk=1000).reshape(n, -1)
    sd = np.sqrt(np.diag(C))
    assert np.abs((draws.mean(axis=0) - mean) / (sd / np.sqrt(n))).max() < 4.5
    assert np.abs(draws.std(axis=0) / sd - 1).max() < 0.1
    if d.blocks[0].k > 1:  # the covariance within a level
        emp = np.cov(draws[:, 0], draws[:, 1])[0, 1]
        assert emp == pytest.approx(C[0, 1], abs=5 * np.sqrt(C[0, 0] * C[1, 1] / n))


def _crossed(n_rest: int, n_first: int = 30, seed: int = 0, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n_first, n)
    r = rng.integers(0, n_rest, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, n_first)[s] + rng.normal(0, 0.5, n_rest)[r] + rng.normal(0, 1, n)
    return pd.DataFrame({"y": y, "x": x, "s": [f"s{i}" for i in s], "r": [f"r{i}" for i in r]})


def test_marginalize_choice():
    small = hb.Model("y ~ x + (1 | s) + (1 | r)", _crossed(8))
    large = hb.Model("y ~ x + (1 | s) + (1 | r)", _crossed(250, n_first=1000, n=6000))
    assert large.design.blocks[0].group == "s"
    assert full_marginal_cost(small.design) < PARTIAL_COST_MIN < full_marginal_cost(large.design)
    assert resolve_marginalize(small, None) == resolve_marginalize(small, True) == "full"
    assert resolve_marginalize(large, None) == resolve_marginalize(large, True) == "first"
    assert resolve_marginalize(large, "full") == "full" and resolve_marginalize(small, "First") == "first"
    assert resolve_marginalize(small, False) == "none"
    one = hb.Model("y ~ x + (1 | s)", _crossed(8))
    assert resolve_marginalize(one, "first") == "full"  # nothing left to sample: the same model
    with pytest.raises(hb.ModelError, match="marginalize must be"):
        resolve_marginalize(small, "partial")
    counts = hb.Model("y ~ x + (1 | s) + (1 | r)", _crossed(8).assign(y=lambda df: (df.y > 1).astype(int)),
                      family="bernoulli")  # fmt: skip
    with pytest.raises(hb.ModelError, match="exact only for the gaussian family"):
        resolve_marginalize(counts, "first")


def test_partially_marginalized_model_samples_only_the_other_factors():
    pmm = build_pymc_model(hb.Model("y ~ x + (1 | s) + (1 | r)", _crossed(8)), marginalize="first")
    free = sorted(v.name for v in pmm.free_RVs)
    assert "z__r" in free and not any(n.endswith("__s") and n.startswith(("z__", "r__")) for n in free)
    assert [p.name for p in pmm.potentials] == ["marginal_loglik"]


PRIORS = {
    "b": Prior("Normal", mu=0, sigma=3),
    "sd": Prior("HalfNormal", sigma=2),
    "sigma": Prior("HalfNormal", sigma=3),
}
GETTERS = [
    lambda f: f.fixef_draws(),
    lambda f: f.sd_draws("s"),
    lambda f: f.sd_draws("r"),
    lambda f: f.sigma_draws(),
    lambda f: f.ranef_draws("s"),  # drawn from the exact conditional after sampling
    lambda f: f.ranef_draws("r"),  # sampled by NUTS
]


@pytest.fixture(scope="module")
def crossed_model() -> hb.Model:
    return hb.Model("y ~ x + (1 | s) + (1 | r)", _crossed(12, n_first=25, seed=3), priors=PRIORS)


@pytest.fixture(scope="module")
def partial_fit(crossed_model):
    fit = quiet_fit(crossed_model, draws=800, tune=500, chains=2, cores=1, random_seed=31, marginalize="first")
    assert fit.info.marginalization == "first" and fit.info.marginalized
    return fit


def _same_posterior(a, b) -> None:
    assert set(a.posterior.data_vars) == set(b.posterior.data_vars)
    for get in GETTERS:
        assert np.nanmax(_zscores(get(a), get(b))) < Z_MAX


def test_partial_posterior_equals_full_posterior(crossed_model, partial_fit):
    """Same priors, same data: integrating out one factor or all of them gives one posterior."""
    full = quiet_fit(crossed_model, draws=800, tune=400, chains=2, cores=1, random_seed=32, marginalize="full")
    assert full.info.marginalization == "full"
    _same_posterior(partial_fit, full)
    # the spread of the conditionally drawn first factor and of the variance parameters agree too
    for get in (lambda f: f.ranef_draws("s"), lambda f: f.sd_draws("r"), lambda f: f.sigma_draws()):
        ratio = get(partial_fit).std(("chain", "draw")) / get(full).std(("chain", "draw"))
        np.testing.assert_allclose(np.asarray(ratio.values, dtype=float), 1.0, atol=0.15)


@pytest.mark.slow
def test_partial_posterior_equals_unmarginalized_posterior(crossed_model, partial_fit):
    none = quiet_fit(crossed_model, draws=800, tune=600, chains=2, cores=1, random_seed=33, marginalize=False,
                     target_accept=0.95)  # fmt: skip
    assert none.info.marginalization == "none"
    _same_posterior(partial_fit, none)
