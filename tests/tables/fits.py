"""Fits shared by the compare and plots tests, each made once per session (tests/inference/cache.py's idea).

The Bayesian fit is a marginalized Gaussian model, drawn long enough to converge
(R-hat < 1.01, bulk ESS >= 400: tests/bayesian/conftest.py's assert_converged), since
the tables and plots tests also check its values (agreement with REML, coverage).
"""

from __future__ import annotations

import warnings
from functools import cache

import hierbayes as hb
from tests.bayesian.conftest import assert_converged

SLEEP = "Reaction ~ Days + (Days | Subject)"
SLEEP2 = "Reaction ~ days_deprived + (days_deprived | Subject)"
HSB_NULL = "mathach ~ 1 + (1 | school)"
HSB_CSES = "mathach ~ cses + (1 | school)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


@cache
def data(name: str):
    return hb.datasets.load(name)


@cache
def reml(formula: str, dataset: str, reml: bool = True):
    return _quiet(hb.lmer, formula, data(dataset), reml=reml)


@cache
def glmm(formula: str = CBPP, dataset: str = "cbpp"):
    return _quiet(hb.glmer, formula, data(dataset), family="binomial")


@cache
def bayes(formula: str = SLEEP, dataset: str = "sleepstudy", draws: int = 1000):
    """The posterior of a Gaussian model (marginalized: cheap), on converged chains (tests check its values)."""
    fit = _quiet(
        hb.bayes, formula, data(dataset), draws=draws, tune=500, chains=2, random_seed=20240501, progressbar=False
    )
    assert_converged(fit)
    return fit
