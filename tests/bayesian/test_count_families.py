"""Zero-inflated and hurdle count families (issue 22): densities, and recovery from simulated data.

Each recovery test asserts converged chains first (R-hat < 1.01, bulk ESS >= 400 over the
fixed effects, the SD and the family's parameters), then that the truth lies in the posterior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.errors import DataError
from hierbayes.families import get_family
from tests.bayesian.conftest import quiet_fit

NEW = ["zero_inflated_negative_binomial", "zero_inflated_binomial", "hurdle_poisson", "hurdle_negative_binomial"]
PARAMS = {
    "zero_inflated_negative_binomial": {"psi": 0.7, "alpha": 3.0},
    "zero_inflated_binomial": {"psi": 0.7},
    "hurdle_poisson": {"psi": 0.6},
    "hurdle_negative_binomial": {"psi": 0.6, "alpha": 3.0},
}
B0, B1, SD = 1.0, 0.5, 0.4
N_GROUPS, N_PER = 25, 24


@pytest.mark.parametrize("name", NEW)
def test_density_sums_to_one_and_equals_pymc(name):
    pm = pytest.importorskip("pymc")
    fam, params = get_family(name), PARAMS[name]
    eta = np.array([-0.5, 0.7, 1.8])
    trials = np.full(3, 10.0) if fam.has_trials else None
    y = np.arange(0, 11 if trials is not None else 120, dtype=float)
    lp = fam.logpdf(y[:, None], eta[None, :], params, trials)
    np.testing.assert_allclose(np.exp(lp).sum(axis=0), 1.0, rtol=1e-8)
    mean = (np.exp(lp) * y[:, None]).sum(axis=0) / (10.0 if trials is not None else 1.0)
    np.testing.assert_allclose(fam.response_mean(eta, params), mean, rtol=1e-8)
    # the PyMC likelihood is the same density
    with pm.Model():
        rv = fam.pymc_likelihood(np.float64(0.7), np.array([0.0, 3.0]), None if trials is None else trials[:2],
                                 params, None)  # fmt: skip
    got = pm.logp(rv, np.array([0.0, 3.0])).eval()
    np.testing.assert_allclose(got, fam.logpdf(np.array([0.0, 3.0]), np.full(2, 0.7), params,
                                               None if trials is None else trials[:2]), rtol=1e-7)  # fmt: skip


def simulate(name: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), N_PER)
    x = rng.normal(size=g.size)
    eta = B0 + B1 * x + rng.normal(0, SD, N_GROUPS)[g]
    fam = get_family(name)
    trials = np.full(g.size, 12.0) if fam.has_trials else None
    if fam.has_trials:
        eta = eta - 1.0  # p around 0.5
    y = fam.rvs(eta, PARAMS[name], trials, rng)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})
    if trials is not None:
        df["n"] = trials
    return df


@pytest.mark.slow  # ~3-5 min each on 2 shared cores
@pytest.mark.parametrize("name", NEW)
def test_recovers_known_parameters(name):
    df = simulate(name, NEW.index(name) + 10)
    formula = "cbind(y, n - y) ~ x + (1 | g)" if get_family(name).has_trials else "y ~ x + (1 | g)"
    # binomial rows of 12 trials inform each group's effect well: the centered parametrisation mixes better
    # there, but the intercept still trades off against the mean of the group effects (bulk ESS ~0.15/draw)
    centered = get_family(name).has_trials
    fit = quiet_fit(hb.Model(formula, df, family=name), draws=1500 if centered else 700, tune=1000, chains=4,
                    random_seed=2, centered=centered)  # fmt: skip
    table = fit.summary(prob=0.99)  # fixed effects, the SD and the family's parameters
    assert table["r_hat"].max() < 1.01 and table["ess_bulk"].min() >= 400, table[["r_hat", "ess_bulk"]]
    b0 = B0 - 1.0 if get_family(name).has_trials else B0
    truth = {"b[(Intercept)]": b0, "b[x]": B1, "sd[g:(Intercept)]": SD, **PARAMS[name]}
    for row, value in truth.items():
        lo, hi = table.loc[row, "eti_0.5%"], table.loc[row, "eti_99.5%"]
        assert lo < value < hi, (row, value, lo, hi)
    # predictions on the response scale, LOO and posterior predictive draws of counts
    mean = fit.fitted
    assert np.all(np.isfinite(mean)) and np.all(mean >= 0)
    pp = fit.idata.posterior_predictive["y"].values
    assert (pp >= 0).all() and np.array_equal(pp, np.round(pp))
    observed_zeros = float(np.mean(df["y"] == 0))
    assert abs(float(np.mean(pp == 0)) - observed_zeros) < 0.05
    assert np.isfinite(fit.loo().elpd)


def test_bad_counts_are_data_errors():
    df = simulate("hurdle_poisson", 1)
    with pytest.raises(DataError, match="non-negative whole-number counts"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=df["y"] - 0.5), family="hurdle_poisson")
    with pytest.raises(DataError, match="non-negative whole-number counts"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=-df["y"]), family="zero_inflated_negative_binomial")


def test_scipy_agrees_for_the_zero_inflated_negative_binomial():
    fam, params = get_family("zero_inflated_negative_binomial"), PARAMS["zero_inflated_negative_binomial"]
    mu = np.exp(0.7)
    p = params["alpha"] / (params["alpha"] + mu)
    want = np.log(params["psi"]) + stats.nbinom.logpmf(4, params["alpha"], p)
    assert fam.logpdf(np.array([4.0]), np.array([0.7]), params, None)[0] == pytest.approx(want, rel=1e-12)
