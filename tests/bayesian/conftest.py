"""Fits shared by the Bayesian tests (each sampled once per session; few draws, small data)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb

logging.getLogger("pymc").setLevel(logging.ERROR)

SLEEP = "Reaction ~ Days + (Days | Subject)"


#: The convergence every Bayesian value check needs first (the brief: R-hat < 1.01, enough ESS).
RHAT_MAX = 1.01
ESS_MIN = 400


def assert_converged(fit, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN, divergences: int = 0) -> None:
    """Fail unless the chains of ``fit`` converged: every parameter's R-hat < 1.01 and bulk ESS >= 400.

    Call it before any assertion on a posterior's values: a value checked on chains
    that did not converge can pass by luck and fail on the next seed. ``fit`` is a
    PosteriorFit (its ``diagnostics`` cover every sampled parameter, random effects
    included, as the fit's own warnings do) or a peer's ArviZ posterior (a DataTree or
    Dataset, e.g. bambi's). Also fails on more than ``divergences`` divergent transitions.
    """
    d = fit.diagnostics if hasattr(fit, "diagnostics") else _diagnose_posterior(fit)
    assert d.chains >= 2, f"R-hat needs two or more chains, got {d.chains}"
    assert d.max_rhat < rhat_max, f"R-hat {d.max_rhat:.4f} >= {rhat_max} (worst: {d.worst_rhat}); {d}"
    assert d.min_ess_bulk >= ess_min, f"bulk ESS {d.min_ess_bulk:.0f} < {ess_min} (worst: {d.worst_ess}); {d}"
    assert d.n_divergences <= divergences, f"{d.n_divergences} divergent transitions; {d}"


def _diagnose_posterior(idata):
    from hierbayes.bayesian.diagnostics import diagnose

    post = idata["posterior"]
    names = [v for v, da in post.data_vars.items() if "__obs__" not in da.dims]  # bambi's per-row means: derived
    return diagnose(idata, names, lambda var, index: f"{var}{list(index)}")


def quiet_fit(model: hb.Model, **kwargs):
    """Fit with the given settings, silencing PyMC's chatter (not our SamplingWarning checks)."""
    kwargs.setdefault("progressbar", False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="pytensor.*")
        return model.fit("bayes", **kwargs)


@pytest.fixture(scope="session")
def sleep_data() -> pd.DataFrame:
    return hb.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def sleep_fit(sleep_data):
    """The sleepstudy posterior (marginalized: cheap), converged: the tests using it check its values."""
    fit = quiet_fit(hb.Model(SLEEP, sleep_data), draws=1000, tune=500, chains=2, random_seed=11)
    assert_converged(fit)
    return fit


@pytest.fixture(scope="session")
def sleep_lmer(sleep_data):
    return hb.lmer(SLEEP, sleep_data)


def simulate_slopes(n_groups: int = 30, n_per: int = 10, seed: int = 5) -> tuple[pd.DataFrame, dict]:
    """Sleepstudy-like data: y = 250 + 10 x + u0 + u1 x + e with correlated (u0, u1)."""
    rng = np.random.default_rng(seed)
    truth = {"(Intercept)": 250.0, "x": 10.0, "sd0": 25.0, "sd1": 6.0, "corr": 0.3, "sigma": 20.0}
    cov = np.array([[25.0**2, 0.3 * 25 * 6], [0.3 * 25 * 6, 6.0**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), n_per)
    x = np.tile(np.arange(n_per, dtype=float), n_groups)
    y = 250 + 10 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 20, len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]}), truth
