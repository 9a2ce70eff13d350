"""Simulation-based calibration (Talts et al. 2018) of a small random-slopes model.

Slow (about 10 minutes on two cores); run it on its own with

    pytest -m slow tests/bayesian/test_sbc.py

Parameters are drawn from the prior, data simulated from them and the model
fitted; the rank of each true value among the posterior draws must be
uniform if the sampler (here: the marginalized path and the exact
conditional draws of the random effects) is correct.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import Prior, sample_prior_predictive
from tests.bayesian.conftest import quiet_fit

N_SIM = 100
N_BINS = 10
THIN = 5
PRIORS = {"b": Prior("Normal", mu=0, sigma=1), "(Intercept)": Prior("Normal", mu=0, sigma=1),
          "sd": Prior("HalfNormal", sigma=1), "sigma": Prior("HalfNormal", sigma=1), "eta": 2.0}  # fmt: skip


def _design() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), 6)
    return pd.DataFrame({"y": 0.0, "x": rng.normal(size=g.size), "g": [f"g{i}" for i in g]})


@pytest.mark.slow
@pytest.mark.parametrize("marginalize", [True, False])
def test_ranks_of_true_values_are_uniform(marginalize):
    data = _design()
    prior = sample_prior_predictive(hb.Model("y ~ x + (x | g)", data, priors=PRIORS), draws=N_SIM, random_seed=1)
    p, yy = prior.prior, prior.prior_predictive["y"].values[0]
    truth = {
        "b[(Intercept)]": p["beta"].values[0, :, 0],
        "b[x]": p["beta"].values[0, :, 1],
        "sd[g:(Intercept)]": p["sd__g"].values[0, :, 0],
        "sd[g:x]": p["sd__g"].values[0, :, 1],
        "corr[g:(Intercept),x]": p["corr__g"].values[0, :, 1, 0],
        "sigma": p["sigma"].values[0],
        "r[g:g0,x]": p["r__g"].values[0, :, 0, 1],
    }
    ranks = {k: [] for k in truth}
    for i in range(N_SIM):
        model = hb.Model("y ~ x + (x | g)", data.assign(y=yy[i]), priors=PRIORS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = quiet_fit(model, draws=250, tune=400, chains=2, random_seed=100 + i, marginalize=marginalize,
                            warn=False, log_likelihood=False, posterior_predictive=False)  # fmt: skip
        post = fit.parameters(ranef=True)
        for k, v in truth.items():
            draws = post[k].values[:, ::THIN].ravel()
            ranks[k].append(int((draws < v[i]).sum()))
    n_draws = 2 * 250 // THIN
    for k, r in ranks.items():
        counts = np.histogram(r, bins=N_BINS, range=(0, n_draws + 1))[0]
        pval = stats.chisquare(counts).pvalue
        assert pval > 0.001, f"{k}: rank histogram {counts.tolist()} (p = {pval:.2g})"
