"""A posterior fit shared by the interpret tests, its bambi twin, and our draws in bambi's layout.

The model is sleepstudy with a categorical predictor: ``Reaction ~ Days + phase + (Days || Subject)``
(``phase`` is ``adapt`` for Days 0-1, ``deprived`` after), with the same explicit priors in both
libraries (bambi's group terms are uncorrelated, hence ``||`` here).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierbayes as hb
from hierbayes.bayesian import Prior
from tests.bayesian.conftest import assert_converged

logging.getLogger("pymc").setLevel(logging.ERROR)

FORMULA = "Reaction ~ Days + phase + (Days || Subject)"
BAMBI_FORMULA = "Reaction ~ Days + phase + (Days | Subject)"
SAMPLER = "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
OURS_PRIORS = {
    "(Intercept)": Prior("Normal", mu=250, sigma=50),
    "Days": Prior("Normal", mu=0, sigma=20),
    "phasedeprived": Prior("Normal", mu=0, sigma=50),
    "sd[Subject:(Intercept)]": Prior("HalfNormal", sigma=40),
    "sd[Subject:Days]": Prior("HalfNormal", sigma=10),
    "sigma": Prior("HalfNormal", sigma=40),
}


def bambi_priors(bmb) -> dict:
    return {
        "Intercept": bmb.Prior("Normal", mu=250, sigma=50),
        "Days": bmb.Prior("Normal", mu=0, sigma=20),
        "phase": bmb.Prior("Normal", mu=0, sigma=50),
        "1|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=40)),
        "Days|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=10)),
        "sigma": bmb.Prior("HalfNormal", sigma=40),
    }


def phase_data() -> pd.DataFrame:
    d = hb.datasets.load("sleepstudy")
    phase = np.where(d["Days"] < 2, "adapt", "deprived")
    return d.assign(phase=pd.Categorical(phase, categories=["adapt", "deprived"]))


@pytest.fixture(scope="session")
def sleep_phase() -> pd.DataFrame:
    return phase_data()


@pytest.fixture(scope="session")
def posterior(sleep_phase):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="pytensor.*")
        fit = hb.bayes(FORMULA, sleep_phase, priors=OURS_PRIORS, draws=1000, tune=600, chains=2, random_seed=21,
                       sampler=SAMPLER, progressbar=False)  # fmt: skip
    assert_converged(fit)  # the interpret tests check its values against bambi and emmeans
    return fit


@pytest.fixture(scope="session")
def bambi_model(sleep_phase):
    bmb = pytest.importorskip("bambi")
    model = bmb.Model(BAMBI_FORMULA, sleep_phase, center_predictors=False, priors=bambi_priors(bmb))
    model.build()
    return model


def as_bambi_posterior(fit, data: pd.DataFrame) -> xr.DataTree:
    """Our posterior draws under bambi's names, dims and coordinates, with the observed data bambi expects."""
    post = fit.posterior
    beta = post["beta"]
    r = fit.ranef_draws("Subject")
    sd = fit.sd_draws("Subject")
    subject = "Subject__factor_dim"
    ds = xr.Dataset({
        "Intercept": beta.sel(fixef="(Intercept)", drop=True),
        "Days": beta.sel(fixef="Days", drop=True),
        "phase": beta.sel(fixef=["phasedeprived"]).rename(fixef="phase_dim").assign_coords(phase_dim=["deprived"]),
        "1|Subject": r.sel(term="(Intercept)", drop=True).rename(level=subject),
        "Days|Subject": r.sel(term="Days", drop=True).rename(level=subject),
        "1|Subject_sigma": sd.sel(term="(Intercept)", drop=True),
        "Days|Subject_sigma": sd.sel(term="Days", drop=True),
        "sigma": post["sigma"],
    })  # fmt: skip
    ds = ds.assign_coords({subject: [str(x) for x in ds[subject].values]})
    obs = xr.Dataset({"Reaction": ("__obs__", data["Reaction"].to_numpy())}, coords={"__obs__": np.arange(len(data))})
    return xr.DataTree.from_dict({"posterior": ds, "observed_data": obs})
