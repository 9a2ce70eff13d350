"""Prediction intervals: coverage by simulation from a known model, and what they are made of.

The coverage study (:mod:`tests.interpret.coverage`): 30 groups of 8 observations of a random
intercept and slope model, refitted by REML for each replicate, 10 new observations per replicate
in groups the fit has seen and 10 in new groups. The default suite runs 120 replicates (2,400 new
observations) and checks the 95 % intervals' coverage within 3.5 standard errors of 0.95 (the
standard error from the replicates' coverages, so the dependence within a replicate counts); the
``slow`` study runs 4,000 replicates and checks 94-96 %.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, DataError, ModelError
from tests.interpret.coverage import study


@pytest.fixture(scope="module")
def sleep_fit():
    return hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))


def test_coverage_of_95_percent_prediction_intervals():
    res = study(120, first_seed=1)
    for kind in ("observed", "new"):
        cov, se = res[kind]
        assert abs(cov - 0.95) < 3.5 * se, f"{kind} groups: coverage {cov:.3f} (se {se:.3f})"


@pytest.mark.slow
def test_coverage_study_94_to_96_percent():
    res = study(4000, first_seed=10_000)
    for kind in ("observed", "new"):
        cov, se = res[kind]
        assert 0.94 <= cov <= 0.96, f"{kind} groups: coverage {cov:.4f} (se {se:.4f})"
        assert se < 0.002


def test_prediction_intervals_hold_every_source_of_uncertainty(sleep_fit):
    nd = pd.DataFrame({"Days": [0, 5, 9, 5], "Subject": ["308", "308", "308", "NEW"]})
    pi = sleep_fit.predict(nd, interval="prediction", allow_new_levels=True, nsim=4000, random_seed=1)
    ci = sleep_fit.predict(nd, interval="confidence", allow_new_levels=True)
    assert pi.columns.tolist() == ["estimate", "lower", "upper"]
    assert ci.columns.tolist() == ["estimate", "std_error", "lower", "upper"]
    np.testing.assert_allclose(pi["estimate"], sleep_fit.predict(nd, allow_new_levels=True))
    width = pi["upper"] - pi["lower"]
    # a new observation varies at least by the residual SD: the interval is wider than 2 * 1.96 sigma ...
    assert (width > 2 * 1.96 * sleep_fit.sigma).all()
    # ... and than the confidence interval of the mean; a new subject's is wider than a known one's
    assert (width > ci["upper"] - ci["lower"]).all()
    assert width[3] > width[1] * 1.3
    # a new subject: sd^2 = x'Vx + z'Sigma z + sigma^2 roughly (parameter uncertainty widens it a little)
    z = np.array([1.0, 5.0])
    var = z @ sleep_fit.vcov.to_numpy() @ z + z @ sleep_fit.covariances["Subject"] @ z + sleep_fit.sigma**2
    assert width[3] / (2 * 1.96 * np.sqrt(var)) == pytest.approx(1.0, abs=0.08)


def test_prediction_intervals_are_reproducible_and_keep_the_index(sleep_fit):
    nd = pd.DataFrame({"Days": [1.5, np.nan, 7], "Subject": ["309", "309", "310"]}, index=["a", "b", "c"])
    a = sleep_fit.predict(nd, interval="prediction", random_seed=3, nsim=500)
    b = sleep_fit.predict(nd, interval="prediction", random_seed=3, nsim=500)
    pd.testing.assert_frame_equal(a, b)
    assert a.index.tolist() == ["a", "b", "c"]
    assert a.loc["b"].isna().all() and a.drop(index="b").notna().all().all()


def test_population_prediction_interval_is_that_of_a_new_group(sleep_fit):
    """re_form="~0" leaves the subject out: its effects vary as a new subject's (same draws, same seed)."""
    nd = pd.DataFrame({"Days": [4.0, 8.0], "Subject": ["NEW", "NEW2"]})
    new = sleep_fit.predict(nd, interval="prediction", allow_new_levels=True, nsim=2000, random_seed=5)
    pop = sleep_fit.predict(nd[["Days"]], re_form="~0", interval="prediction", nsim=2000, random_seed=5)
    pd.testing.assert_frame_equal(pop, new)


def test_new_levels_need_allow_new_levels(sleep_fit):
    with pytest.raises(DataError, match="new levels"):
        sleep_fit.predict({"Days": [1], "Subject": ["NEW"]}, interval="prediction")


def test_bad_interval_arguments(sleep_fit):
    with pytest.raises(ArgumentError, match="interval must be"):
        sleep_fit.predict({"Days": [1], "Subject": ["308"]}, interval="credible")
    with pytest.raises(ArgumentError, match="level"):
        sleep_fit.predict({"Days": [1], "Subject": ["308"]}, interval="confidence", level=95)
    with pytest.raises(ArgumentError, match="nsim"):
        sleep_fit.predict({"Days": [1], "Subject": ["308"]}, interval="prediction", nsim=1)
    cbpp = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    with pytest.raises(ModelError, match="method='bayes'"):
        cbpp.predict({"period": ["1"], "herd": ["1"]}, interval="prediction")
    ci = cbpp.predict({"period": ["1", "4"], "herd": ["1", "1"]}, interval="confidence", type="response")
    assert ((ci["lower"] > 0) & (ci["upper"] < 1) & (ci["lower"] < ci["estimate"])).all()


def test_posterior_predictive_interval(posterior, sleep_phase):
    nd = pd.DataFrame({"Days": [0, 9, 9], "phase": ["adapt", "deprived", "deprived"], "Subject": ["308", "308", "NEW"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pi = posterior.predict(nd, interval="prediction", allow_new_levels=True, random_seed=2)
        ci = posterior.predict(nd, interval="confidence", allow_new_levels=True)
    assert pi.columns.tolist() == ["estimate", "lower", "upper"] == ci.columns.tolist()
    width_pi, width_ci = pi["upper"] - pi["lower"], ci["upper"] - ci["lower"]
    assert (width_pi > width_ci).all()
    assert width_pi[2] > width_pi[1] * 1.3  # a new subject draws its effects from the fitted distribution
    sigma = float(posterior.sigma_draws().mean())
    assert (width_pi > 2 * 1.9 * sigma).all()
    draws = posterior.predict(nd.iloc[:2], kind="predictive", random_seed=2)
    lo, hi = np.quantile(draws.values.reshape(-1, 2), [0.025, 0.975], axis=0)
    np.testing.assert_allclose(pi[["lower", "upper"]].to_numpy()[:2].T, [lo, hi], rtol=0.02)


def test_posterior_predictive_leaves_out_terms_as_new_groups(posterior):
    """re_form='~0' on a posterior: the subject effects vary as a new subject's, as for REML fits."""
    nd = pd.DataFrame({"Days": [5, 5], "phase": ["deprived", "deprived"], "Subject": ["308", "NEW"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pop = posterior.predict(nd[["Days", "phase"]], re_form="~0", interval="prediction", random_seed=4)
        new = posterior.predict(nd, interval="prediction", allow_new_levels=True, random_seed=4)
    width_pop = float(pop["upper"].iloc[0] - pop["lower"].iloc[0])
    width_new = float(new["upper"].iloc[1] - new["lower"].iloc[1])
    assert width_pop == pytest.approx(width_new, rel=0.1)
    assert width_pop > 1.3 * float(new["upper"].iloc[0] - new["lower"].iloc[0])


def test_predict_intervals_need_only_import_hierbayes():
    """The fits reach hierbayes.interpret (a layer above them) through the function it registers on import;
    ``import hierbayes`` imports it, so a user who did nothing else gets intervals."""
    code = (
        "import hierbayes as hb\n"
        "from hierbayes.fits.base import _PREDICT_INTERVAL\n"
        "from hierbayes.interpret.intervals import predict_interval\n"
        "assert _PREDICT_INTERVAL == [predict_interval]\n"
        "fit = hb.lmer('Reaction ~ Days + (1 | Subject)', hb.datasets.load('sleepstudy'))\n"
        "print(fit.predict({'Days': [1], 'Subject': ['308']}, interval='confidence').columns.tolist())\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={"PYTHONPATH": str(root)}, check=True)  # fmt: skip
    assert out.stdout.strip() == "['estimate', 'std_error', 'lower', 'upper']"
