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
    return quiet_fit(hb.Model(SLEEP, sleep_data), draws=400, tune=400, chains=2, random_seed=11)


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
