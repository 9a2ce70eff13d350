"""A small simulation-based calibration that runs on every change (issue 17); the long one is test_sbc.py (slow).

Talts et al. (2018): draw the parameters from the prior, simulate data, fit, and take the rank of each true
value among the posterior draws; if prior, likelihood, sampler and the conditional draws of the random
effects are right, the ranks are uniform. Here: 30 replicates of ``y ~ 1 + (1 | g)`` with 6 groups of 4
rows, fitted by hb.bayes' default (marginalized) path with fixed seeds, the rank of each true value among 19
thinned draws, and three tests of uniformity per parameter: a chi-square test of the rank histogram (5 bins),
the mean rank (a biased sampler moves it) and the mean distance of the rank from the middle (an overconfident
sampler puts the truth in the tails, an underconfident one in the middle). Each p-value must exceed
``P_MIN``; with 4 parameters and 12 tests a calibrated sampler fails about 1% of seeds.

The threshold is checked to catch a miscalibrated sampler: the same tests applied to the same fits with the
posterior draws squeezed toward their mean by a factor 0.5 (an overconfident sampler), spread by a factor 2
(an underconfident one) or shifted by one posterior SD (a biased one) reject. (In simulations of ideal
normal posteriors, 30 replicates reject these with probability 0.97, 0.95 and 1; a calibrated one
(uniform ranks) is rejected in 0.8% of seeds.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import Prior, sample_prior_predictive

N_REP, N_BINS, N_RANK, DRAWS = 30, 5, 19, 190
PRIORS = {"(Intercept)": Prior("Normal", mu=0, sigma=1), "sd": Prior("HalfNormal", sigma=1),
          "sigma": Prior("HalfNormal", sigma=1)}  # fmt: skip
FORMULA = "y ~ 1 + (1 | g)"
#: the smallest p-value a calibrated sampler may give, for each of the 3 tests of each of the 4 parameters
P_MIN = 0.001

#: the rank r of the truth among N_RANK draws, as u = (r + 1/2) / (N_RANK + 1): uniform on N_RANK + 1 values
_U = (np.arange(N_RANK + 1) + 0.5) / (N_RANK + 1)


def _data() -> pd.DataFrame:
    g = np.repeat(np.arange(6), 4)
    return pd.DataFrame({"y": 0.0, "g": [f"g{i}" for i in g]})


def uniformity_pvalues(ranks: np.ndarray) -> dict[str, float]:
    """p-values of three tests that ``ranks`` (integers 0..N_RANK) are uniform."""
    ranks = np.asarray(ranks)
    n = ranks.size
    counts = np.histogram(ranks, bins=N_BINS, range=(-0.5, N_RANK + 0.5))[0]
    u = (ranks + 0.5) / (N_RANK + 1)
    dist = np.abs(_U - 0.5)
    z_mean = (u.mean() - _U.mean()) / np.sqrt(_U.var() / n)
    z_spread = (np.abs(u - 0.5).mean() - dist.mean()) / np.sqrt(dist.var() / n)
    return {
        "histogram": float(stats.chisquare(counts).pvalue),
        "mean rank": float(2 * stats.norm.sf(abs(z_mean))),
        "spread": float(2 * stats.norm.sf(abs(z_spread))),
    }


@pytest.fixture(scope="module")
def replicates() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per parameter: the true values (N_REP) and N_RANK thinned posterior draws per replicate (N_REP x N_RANK)."""
    data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = sample_prior_predictive(hb.Model(FORMULA, data, priors=PRIORS), draws=N_REP, random_seed=7)
    p, ys = prior.prior, prior.prior_predictive["y"].values[0]
    truth = {
        "b[(Intercept)]": p["beta"].values[0, :, 0],
        "sd[g:(Intercept)]": p["sd__g"].values[0, :, 0],
        "sigma": p["sigma"].values[0],
        "r[g:g0,(Intercept)]": p["r__g"].values[0, :, 0, 0],
    }
    draws = {k: np.empty((N_REP, N_RANK)) for k in truth}
    for i in range(N_REP):
        model = hb.Model(FORMULA, data.assign(y=ys[i]), priors=PRIORS)
        with warnings.catch_warnings():  # diagnostics are not the point here: the ranks are
            warnings.simplefilter("ignore")
            fit = model.fit("bayes", draws=DRAWS, tune=200, chains=1, cores=1, random_seed=100 + i, progressbar=False,
                            warn=False, log_likelihood=False, posterior_predictive=False)  # fmt: skip
        post = fit.parameters(ranef=True)
        for k in truth:
            draws[k][i] = post[k].values.ravel()[:: DRAWS // N_RANK][:N_RANK]
    return truth, draws


def _ranks(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    return (draws < truth[:, None]).sum(axis=1)


@pytest.mark.cpu_budget(90, reason="the first test of the module: fits the 30 replicates (55 CPU s in 2026-12)")
def test_ranks_of_true_values_are_uniform(replicates) -> None:
    truth, draws = replicates
    for k in truth:
        ranks = _ranks(truth[k], draws[k])
        for test, pval in uniformity_pvalues(ranks).items():
            hist = np.bincount(ranks, minlength=N_RANK + 1).tolist()
            assert pval > P_MIN, f"{k}, {test}: p = {pval:.2g}; rank counts {hist}"


def test_the_tests_accept_uniform_ranks_and_reject_skewed_ones() -> None:
    rng = np.random.default_rng(3)
    assert min(uniformity_pvalues(rng.integers(0, N_RANK + 1, size=N_REP)).values()) > P_MIN
    assert uniformity_pvalues(np.full(N_REP, N_RANK))["mean rank"] < 1e-6
    assert uniformity_pvalues(np.tile([0, N_RANK], N_REP // 2))["spread"] < 1e-6
    assert uniformity_pvalues(np.full(N_REP, N_RANK // 2))["spread"] < 1e-6


@pytest.mark.parametrize("kind", ["overconfident", "underconfident", "biased"])
def test_the_threshold_rejects_a_miscalibrated_sampler(replicates, kind: str) -> None:
    truth, draws = replicates
    worst = {}
    for k in truth:
        d = draws[k]
        mean, sd = d.mean(axis=1, keepdims=True), d.std(axis=1, keepdims=True)
        bad = {"overconfident": mean + 0.5 * (d - mean), "underconfident": mean + 2.0 * (d - mean),
               "biased": d + sd}[kind]  # fmt: skip
        pvals = uniformity_pvalues(_ranks(truth[k], bad))
        worst[k] = min(pvals.values())
    assert min(worst.values()) < P_MIN, f"a {kind} sampler passes the test: smallest p-values {worst}"
