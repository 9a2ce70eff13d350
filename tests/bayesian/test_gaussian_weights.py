"""Gaussian prior weights in hb.bayes (residual variance sigma^2 / w_i, lme4's weights=; issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import blocked
from hierbayes.design import build_design

F = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def weighted():
    d = hb.datasets.load("sleepstudy")
    return d.assign(w=np.random.default_rng(5).uniform(0.3, 3.0, len(d)))


def test_weighted_marginal_loglik_is_the_dense_normal(weighted):
    """The marginalized likelihood (scaled cross-products + ldw/2) equals N(X beta, Z S Z' + sigma^2 W^-1)."""
    d = weighted.copy()
    d.loc[3, "w"] = 0.0  # a row of weight zero carries no information
    des = build_design(F, d, weights="w")
    cp = blocked.gaussian_crossproducts(des)
    beta, sigma = np.array([250.0, 10.0]), 28.0
    L = np.array([[20.0, 0.0], [2.0, 5.0]])
    ll = blocked.loglik(cp, beta, sigma, [L]) + 0.5 * cp.ldw
    keep = d["w"].to_numpy() > 0
    Z = des.z_sparse().toarray()[keep]
    S = np.kron(np.eye(des.blocks[0].nlevels), L @ L.T)
    V = Z @ S @ Z.T + sigma**2 * np.diag(1.0 / d["w"].to_numpy()[keep])
    want = stats.multivariate_normal(des.X[keep] @ beta, V).logpdf(des.y[keep])
    assert cp.n == keep.sum()
    assert ll == pytest.approx(want, rel=1e-10)


def test_weights_outside_gaussian_and_binomial_are_refused(weighted):
    with pytest.raises(hb.ModelError, match="gaussian and binomial families only"):
        counts = weighted.assign(c=(weighted["Reaction"] // 10).astype(int))
        hb.Model("c ~ Days + (1 | Subject)", counts, family="poisson", weights="w").pymc_model()


def test_zero_weights_need_the_marginalized_model(weighted):
    d = weighted.assign(w=np.where(np.arange(len(weighted)) == 0, 0.0, weighted["w"]))
    with pytest.raises(hb.ModelError, match="weights of zero"):
        hb.Model(F, d, weights="w").pymc_model(marginalize=False)


@pytest.mark.slow
@pytest.mark.parametrize("marginalize", ["full", False])
def test_weighted_posterior_agrees_with_weighted_reml(weighted, marginalize):
    reml = hb.lmer(F, weighted, weights="w")
    fit = hb.bayes(F, weighted, weights="w", draws=1000, tune=1000, chains=4, random_seed=2, marginalize=marginalize)
    assert fit.max_rhat < 1.01 and fit.min_ess_bulk >= 400 and fit.n_divergences == 0
    sd = fit.fixef_draws().std(("chain", "draw")).to_numpy()
    assert np.all(np.abs(fit.fixef.to_numpy() - reml.fixef.to_numpy()) < 0.25 * sd)
    assert abs(fit.sigma - reml.sigma) < 0.05 * reml.sigma


@pytest.mark.slow
def test_weighted_recovery():
    """Known beta and sigma recovered from data whose residual SD is sigma / sqrt(w)."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(size=len(g))
    w = rng.choice([0.25, 1.0, 4.0], len(g))
    y = 1.0 + 0.5 * x + rng.normal(0, 0.8, 40)[g] + rng.normal(0, 1.5, len(g)) / np.sqrt(w)
    import pandas as pd

    d = pd.DataFrame({"g": pd.Categorical(g), "x": x, "y": y, "w": w})
    fit = hb.bayes("y ~ x + (1 | g)", d, weights="w", draws=1000, tune=1000, chains=4, random_seed=3)
    assert fit.max_rhat < 1.01 and fit.min_ess_bulk >= 400
    ci = fit.fixef_interval(0.99)
    assert np.all((ci["lower"].to_numpy() < [1.0, 0.5]) & ([1.0, 0.5] < ci["upper"].to_numpy()))
    s = fit.sigma_draws()
    assert float(s.quantile(0.005)) < 1.5 < float(s.quantile(0.995))
