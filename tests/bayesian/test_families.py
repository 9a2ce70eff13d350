"""Every family samples, recovers a known slope, and reports its own parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import hierbayes as hb
from tests.bayesian.conftest import assert_converged, quiet_fit

N_GROUPS, N_PER = 20, 15


def _simulate(family: str, seed: int) -> tuple[pd.DataFrame, str, float, dict]:
    """Data with eta = b0 + b1 x + u_g, u_g ~ N(0, 0.5); returns data, formula, true b1, true family params."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), N_PER)
    x = rng.normal(size=g.size)
    u = rng.normal(0, 0.5, N_GROUPS)[g]
    b1 = 0.6
    formula = "y ~ x + (1 | g)"
    params: dict[str, float] = {}
    match family:
        case "bernoulli":
            y = rng.random(g.size) < special.expit(0.3 + b1 * x + u)
        case "binomial":
            trials = rng.integers(5, 15, g.size)
            y = rng.binomial(trials, special.expit(-0.5 + b1 * x + u))
            formula = "cbind(y, n - y) ~ x + (1 | g)"
        case "poisson":
            y = rng.poisson(np.exp(1.0 + b1 * x + u))
        case "negative_binomial":
            mu, params = np.exp(1.5 + b1 * x + u), {"alpha": 4.0}
            y = rng.poisson(rng.gamma(4.0, mu / 4.0))
        case "gamma":
            mu, params = np.exp(1.0 + b1 * x + u), {"shape": 6.0}
            y = rng.gamma(6.0, mu / 6.0)
        case "beta":
            mu, params = special.expit(b1 * x + u), {"phi": 25.0}
            y = rng.beta(mu * 25, (1 - mu) * 25)
        case "zero_inflated_poisson":
            params = {"psi": 0.7}
            y = np.where(rng.random(g.size) < 0.7, rng.poisson(np.exp(1.0 + b1 * x + u)), 0)
        case "student_t":
            params = {"nu": 4.0, "sigma": 1.0}
            y = 2.0 + b1 * x + u + rng.standard_t(4.0, g.size)
    df = pd.DataFrame({"y": np.asarray(y, dtype=float), "x": x, "g": [f"g{i:02d}" for i in g]})
    if family == "binomial":
        df["n"] = trials
    return df, formula, b1, params


FAMILIES = ["bernoulli", "binomial", "poisson", "negative_binomial", "gamma", "beta", "zero_inflated_poisson",
            "student_t"]  # fmt: skip


def _check_values(fit, family: str, b1: float, params: dict) -> None:
    """The known slope and family parameters, on converged chains."""
    assert_converged(fit)
    fe = fit.fixef_interval()
    assert abs(fe.loc["x", "mean"] - b1) < 4 * fe.loc["x", "sd"]
    for name, value in params.items():
        lo, hi = fit.interval(fit.param_draws(name), 0.99)
        assert float(lo) < value < float(hi), (name, float(lo), float(hi))


@pytest.mark.parametrize("family", FAMILIES)
def test_family_samples_with_its_own_parameters_and_scales(family):
    """Every family samples and its draws live on the right scale (short chains: no value is checked here)."""
    df, formula, _, params = _simulate(family, seed=FAMILIES.index(family))
    fit = quiet_fit(hb.Model(formula, df, family=family), draws=100, tune=100, chains=2, random_seed=1, warn=False)
    assert not fit.info.marginalized
    for name in params:
        assert fit.param_draws(name).sizes == {"chain": 2, "draw": 100}
    assert (fit.sigma is None) == (family != "student_t")
    mean = fit.fitted
    assert np.isfinite(mean).all()
    if family in ("bernoulli", "binomial", "beta"):
        assert ((mean > 0) & (mean < 1)).all()
    if family in ("poisson", "negative_binomial", "gamma", "zero_inflated_poisson"):
        assert (mean > 0).all()
    assert np.isfinite(fit.idata.log_likelihood["y"].values).all()
    pp = fit.idata.posterior_predictive["y"].values
    if family in ("poisson", "negative_binomial", "zero_inflated_poisson", "binomial"):
        assert (pp >= 0).all() and np.array_equal(pp, np.round(pp))


def test_poisson_recovers_the_slope_on_converged_chains():
    """The non-Gaussian (unmarginalized) path's values, in the default suite: the intercept trades off against the
    mean of the group effects (bulk ESS ~0.15 per draw), so 4 x 1000 draws (measured: 4 x 1500 gave R-hat 1.005,
    bulk ESS 843; 2 x 250 gave R-hat 1.04, ESS 53)."""
    df, formula, b1, params = _simulate("poisson", seed=FAMILIES.index("poisson"))
    fit = quiet_fit(hb.Model(formula, df, family="poisson"), draws=1000, tune=1000, chains=4, random_seed=1)
    _check_values(fit, "poisson", b1, params)


@pytest.mark.slow  # 4 x 1500 draws of eight unmarginalized models: minutes each on two shared cores
@pytest.mark.parametrize("family", FAMILIES)
def test_family_recovers_slope_and_parameters(family):
    df, formula, b1, params = _simulate(family, seed=FAMILIES.index(family))
    fit = quiet_fit(hb.Model(formula, df, family=family), draws=1500, tune=1000, chains=4, random_seed=1)
    _check_values(fit, family, b1, params)


def test_binomial_proportions_with_weights_equal_cbind():
    df, _, _, _ = _simulate("binomial", seed=11)
    df["p"] = df["y"] / df["n"]
    a = hb.Model("cbind(y, n - y) ~ x + (1 | g)", df, family="binomial")
    b = hb.Model("p ~ x + (1 | g)", df, family="binomial", weights="n")
    fa = quiet_fit(a, draws=150, tune=250, chains=2, random_seed=4, posterior_predictive=False)
    fb = quiet_fit(b, draws=150, tune=250, chains=2, random_seed=4, posterior_predictive=False)
    np.testing.assert_allclose(fa.posterior["beta"].values, fb.posterior["beta"].values)


def _simulate_link(link: str, seed: int) -> tuple[pd.DataFrame, str, str]:
    """Data whose linear predictor b0 + 0.6 x + u_g (u_g ~ N(0, 0.3)) is mapped by ``link``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), N_PER)
    x = rng.uniform(-1, 1, g.size)
    u = rng.normal(0, 0.3, N_GROUPS)[g]
    match link:
        case "cloglog":  # binomial, 10 trials
            p = 1 - np.exp(-np.exp(-0.5 + 0.6 * x + u))
            df, family = pd.DataFrame({"y": rng.binomial(10, p), "n": 10}), "binomial"
            formula = "cbind(y, n - y) ~ x + (1 | g)"
        case "sqrt":  # Poisson, sqrt(mu) = 2 + 0.6 x + u > 0
            df, family = pd.DataFrame({"y": rng.poisson((2.0 + 0.6 * x + u) ** 2)}), "poisson"
            formula = "y ~ x + (1 | g)"
        case "inverse":  # Gamma with shape 8, 1 / mu = 2 + 0.6 x + u
            mu = 1.0 / (2.0 + 0.6 * x + u)
            df, family, formula = pd.DataFrame({"y": rng.gamma(8.0, mu / 8.0)}), "gamma", "y ~ x + (1 | g)"
    df["x"], df["g"] = x, [f"g{i:02d}" for i in g]
    return df, family, formula


#: mu = eta^2 is unchanged when (b, u) -> (-b, -u), and the priors are symmetric: the posterior has two mirror
#: modes and the chains split between them (measured: R-hat 1.53, 124 divergences). R's poisson(link = "sqrt")
#: declares eta > 0 valid only (valideta); the Bayesian model does not restrict it yet.
SQRT_BIMODAL = pytest.mark.xfail(strict=True, reason="sqrt-link posterior has mirror modes (eta and -eta)")


@pytest.mark.slow  # 4 x 1500 draws of three unmarginalized models
@pytest.mark.parametrize("link", ["cloglog", pytest.param("sqrt", marks=SQRT_BIMODAL), "inverse"])
def test_links_recover_the_slope(link):
    """The binomial cloglog, Poisson sqrt and Gamma inverse links: the true slope 0.6 inside the 99 % interval."""
    df, family, formula = _simulate_link(link, seed=["cloglog", "sqrt", "inverse"].index(link) + 40)
    fit = quiet_fit(hb.Model(formula, df, family=family, link=link), draws=1500, tune=1000, chains=4, random_seed=3)
    assert fit.model.family.link.name == link
    _check_values(fit, family, 0.6, {})
