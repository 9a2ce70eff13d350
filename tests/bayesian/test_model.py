"""The PyMC model: variables, dims and coords from the design; marginalize rules; prior predictive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.bayesian import Prior, build_pymc_model, sample_prior_predictive
from tests.refdata import ROOT


@pytest.fixture(scope="module")
def sleep():
    return hb.datasets.load("sleepstudy")


def test_correlated_block_gets_lkj_and_non_centered_effects(sleep):
    pmm = build_pymc_model(hb.Model("Reaction ~ Days + (Days | Subject)", sleep), marginalize=False)
    assert sorted(v.name for v in pmm.free_RVs) == ["beta", "chol__Subject", "sigma", "z__Subject"]
    assert {v.name for v in pmm.deterministics} == {"sd__Subject", "corr__Subject", "r__Subject"}
    assert pmm.named_vars_to_dims["r__Subject"] == ("Subject__level", "Subject__term")
    assert list(pmm.coords["Subject__level"])[:2] == ["308", "309"]
    assert list(pmm.coords["Subject__term"]) == ["(Intercept)", "Days"]
    assert list(pmm.coords["fixef"]) == ["(Intercept)", "Days"]


def test_independent_and_crossed_blocks(sleep):
    pmm = build_pymc_model(hb.Model("Reaction ~ Days + (Days || Subject)", sleep), marginalize=False)
    assert "sd__Subject" in {v.name for v in pmm.free_RVs}
    assert not any(v.name.startswith("chol") for v in pmm.free_RVs)
    df = pd.read_csv(ROOT / "tests" / "reference" / "data" / "sim_crossed.csv")
    pmm = build_pymc_model(hb.Model("score ~ treatment + (1 + treatment | rater) + (1 | student)", df),
                           marginalize=False)  # fmt: skip
    names = {v.name for v in pmm.free_RVs}
    assert {"chol__rater", "sd__student", "z__rater", "z__student"} <= names


def test_mixed_bars_on_one_factor(sleep):
    df = sleep.assign(D2=sleep["Days"] ** 2)
    pmm = build_pymc_model(hb.Model("Reaction ~ Days + (Days | Subject) + (0 + D2 | Subject)", df),
                           marginalize=False)  # fmt: skip
    point = pmm.initial_point()
    corr = pmm.compile_fn(pmm["corr__Subject"], inputs=pmm.value_vars, on_unused_input="ignore")(point)
    assert corr.shape == (3, 3)
    assert corr[2, 0] == 0 and corr[2, 1] == 0  # D2 is not correlated with the first bar


def test_marginalized_model_has_no_random_effect_variables(sleep):
    pmm = build_pymc_model(hb.Model("Reaction ~ Days + (Days | Subject)", sleep))
    assert not any(v.name.startswith(("z__", "r__")) for v in pmm.free_RVs)
    assert [p.name for p in pmm.potentials] == ["marginal_loglik"]


def test_marginalize_true_on_a_non_gaussian_family_says_why():
    cbpp = hb.datasets.load("cbpp")
    m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    with pytest.raises(hb.ModelError, match=r"exact only for the gaussian family.*binomial"):
        build_pymc_model(m, marginalize=True)
    with pytest.raises(hb.ModelError, match="numpyro"):
        m.fit("bayes", sampler="numpyro")


def test_prior_override_reaches_the_pymc_model(sleep):
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep, priors={"Days": Prior("Normal", mu=3.0, sigma=0.5)})
    pmm = build_pymc_model(m)
    logp = pmm.compile_logp(vars=[pmm["beta"]], sum=False)
    point = pmm.initial_point()
    got = logp({**point, "beta": np.array([250.0, 3.5])})[0]
    from scipy import stats

    prior_int = m.priors  # user dict is kept as given
    assert "Days" in prior_int
    want = stats.norm(3.0, 0.5).logpdf(3.5)
    assert got[1] == pytest.approx(want)


def test_prior_predictive_draws_have_the_model_shapes(sleep):
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep)
    idata = sample_prior_predictive(m, draws=40, random_seed=3)
    assert idata.prior_predictive["y"].shape == (1, 40, 180)
    assert idata.prior["r__Subject"].shape == (1, 40, 18, 2)
    again = sample_prior_predictive(m, draws=40, random_seed=3)
    np.testing.assert_array_equal(idata.prior["beta"].values, again.prior["beta"].values)


@pytest.mark.parametrize(
    ("family", "y", "msg"),
    [
        ("poisson", [-1.0, 2, 3, 4], "non-negative whole-number"),
        ("bernoulli", [0.0, 1, 2, 1], "0 or 1"),
        ("beta", [0.2, 0.5, 1.0, 0.3], "strictly between 0 and 1"),
        ("gamma", [1.0, 0.0, 2, 3], "positive"),
        ("negative_binomial", [1.5, 2, 3, 4], "whole-number"),
    ],
)
def test_response_validation_per_family(family, y, msg):
    df = pd.DataFrame({"y": y * 3, "x": np.arange(12.0), "g": list("aabbccddeeff")})
    with pytest.raises(hb.DataError, match=msg):
        hb.bayes("y ~ x + (1 | g)", df, family=family, draws=10)
