"""The posterior agrees with other routes to it: the full model, REML, and bambi.

Comparisons are within Monte Carlo error: for posterior means the
difference is divided by the combined MCSE (ArviZ's ``mcse``), a z-score.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

import hierbayes as hb
from hierbayes.bayesian import Prior
from tests.bayesian.conftest import SLEEP, assert_converged, quiet_fit

Z_MAX = 4.5  # a few dozen comparisons; a real discrepancy is many MCSEs away


def _mean_mcse(da) -> tuple[np.ndarray, np.ndarray]:
    mean = da.mean(("chain", "draw")).values
    mcse = az.mcse(da, method="mean").values
    return mean, mcse


def _zscores(a, b) -> np.ndarray:
    (ma, sa), (mb, sb) = _mean_mcse(a), _mean_mcse(b)
    return np.abs(ma - mb) / np.sqrt(sa**2 + sb**2)


@pytest.mark.slow  # about 3 minutes on two busy cores; the fast SBC (test_sbc_fast.py) checks the path on every change
def test_marginalized_posterior_equals_full_posterior(sleep_data):
    priors = {"b": Prior("Normal", mu=0, sigma=30), "sd": Prior("HalfNormal", sigma=30),
              "sigma": Prior("HalfNormal", sigma=50), "eta": 2.0}  # fmt: skip
    small = sleep_data[sleep_data["Subject"].isin(sorted(set(sleep_data["Subject"]))[:10])]
    m = hb.Model(SLEEP, small, priors=priors)
    marg = quiet_fit(m, draws=800, tune=400, chains=2, random_seed=21)
    full = quiet_fit(m, draws=800, tune=600, chains=2, random_seed=22, marginalize=False)
    assert marg.info.marginalized and not full.info.marginalized
    assert_converged(marg)
    assert_converged(full)
    getters = [
        lambda f: f.fixef_draws(),
        lambda f: f.sd_draws("Subject"),
        lambda f: f.sigma_draws(),
        lambda f: f.corr_draws("Subject").isel(term=1, term2=0),
        lambda f: f.ranef_draws("Subject"),
    ]
    for get in getters:
        z = _zscores(get(marg), get(full))
        assert np.nanmax(z) < Z_MAX
    # spread too: posterior SDs of the variance parameters agree within 15 %
    ratio = marg.sd_draws("Subject").std(("chain", "draw")) / full.sd_draws("Subject").std(("chain", "draw"))
    np.testing.assert_allclose(ratio.values, 1.0, atol=0.15)


def test_high_school_and_beyond_agrees_with_reml():
    hsb = hb.datasets.load("hsb")
    formula = "mathach ~ cses + (1 | school)"
    reml = hb.lmer(formula, hsb)
    post = quiet_fit(hb.Model(formula, hsb), draws=500, tune=300, chains=2, random_seed=4)
    assert_converged(post)
    fe = post.fixef_interval()
    assert (np.abs(fe["mean"] - reml.fixef.to_numpy()) / fe["sd"] < 0.15).all()
    s = post.sigma_draws()
    assert abs(float(s.mean()) - reml.sigma) / float(s.std()) < 0.15
    sd_school = post.sd_draws("school")
    assert abs(float(sd_school.mean()) - reml.varcorr["sdcor"][0]) / float(sd_school.std()) < 0.3


@pytest.fixture(scope="module")
def ours_uncorrelated(sleep_data):
    fit = quiet_fit(
        hb.Model("Reaction ~ Days + (Days || Subject)", sleep_data, priors={
            "(Intercept)": Prior("Normal", mu=250, sigma=50), "Days": Prior("Normal", mu=0, sigma=20),
            "sd[Subject:(Intercept)]": Prior("HalfNormal", sigma=40), "sd[Subject:Days]": Prior("HalfNormal", sigma=10),
            "sigma": Prior("HalfNormal", sigma=40)}),
        draws=800, tune=400, chains=2, random_seed=8,
    )  # fmt: skip
    assert_converged(fit)
    return fit


@pytest.mark.parametrize("inference_method", ["pymc", "nutpie"])
def test_same_posterior_as_bambi_with_the_same_priors(sleep_data, ours_uncorrelated, inference_method):
    """bambi 0.21 on PyMC 6 in this environment: its default NUTS (PyMC's) and nutpie, asked for explicitly."""
    bmb = pytest.importorskip("bambi")
    if inference_method == "nutpie":
        pytest.importorskip("nutpie")
    ours = ours_uncorrelated
    theirs_model = bmb.Model(
        "Reaction ~ Days + (Days | Subject)",  # bambi's group terms are always uncorrelated
        sleep_data,
        center_predictors=False,
        priors={
            "Intercept": bmb.Prior("Normal", mu=250, sigma=50),
            "Days": bmb.Prior("Normal", mu=0, sigma=20),
            "1|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=40)),
            "Days|Subject": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=10)),
            "sigma": bmb.Prior("HalfNormal", sigma=40),
        },
    )
    theirs = theirs_model.fit(draws=1000, tune=700, chains=2, random_seed=9, progressbar=False,
                              target_accept=0.9, cores=1, inference_method=inference_method)  # fmt: skip
    assert theirs.posterior.attrs["inference_library"] == inference_method
    assert_converged(theirs)
    tp = theirs.posterior
    pairs = [
        (ours.fixef_draws().sel(fixef="(Intercept)"), tp["Intercept"]),
        (ours.fixef_draws().sel(fixef="Days"), tp["Days"]),
        (ours.sd_draws("Subject").sel(term="(Intercept)"), tp["1|Subject_sigma"]),
        (ours.sd_draws("Subject").sel(term="Days"), tp["Days|Subject_sigma"]),
        (ours.sigma_draws(), tp["sigma"]),
        (ours.ranef_draws("Subject").sel(term="Days").isel(level=0), tp["Days|Subject"].isel(Subject__factor_dim=0)),
    ]
    for a, b in pairs:
        assert float(_zscores(a, b)) < Z_MAX


def test_nutpie_and_pymc_nuts_give_the_same_posterior(sleep_data, sleep_fit):
    """hierbayes' default, nutpie on the compiled log-density (hierbayes.bayesian.compiled), and PyMC's NUTS on
    the PyMC model."""
    pytest.importorskip("nutpie")
    nut = quiet_fit(hb.Model(SLEEP, sleep_data), draws=1000, tune=500, chains=2, random_seed=12, sampler="pymc")
    assert nut.info.sampler == "pymc" and sleep_fit.info.sampler == "nutpie" and sleep_fit.info.backend == "compiled"
    assert_converged(nut)  # sleep_fit: checked by its fixture
    for get in (lambda f: f.fixef_draws(), lambda f: f.sd_draws("Subject"), lambda f: f.sigma_draws(),
                lambda f: f.ranef_draws("Subject")):  # fmt: skip
        assert np.nanmax(_zscores(get(nut), get(sleep_fit))) < Z_MAX
