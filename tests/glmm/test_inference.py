"""Intervals (Wald, profile, bootstrap) and likelihood-ratio tests for GLMM fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.glmm.cache import GLMER, glmer_fit, tight
from tests.refdata import assert_close, reference


def _rows(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index("term").astype(float)


def test_wald_confint() -> None:
    fit = glmer_fit("cbpp_laplace")
    ci = fit.confint("wald")
    ref = _rows(GLMER["cbpp_laplace"]["confint_wald"]["rows"])
    assert list(ci.index) == list(ref.index)
    assert ci.loc[".sig01"].isna().all()
    # lme4's default SEs are up to 1.3% off its own converged ones (see test_glmer_reference.py)
    assert_close(ci.iloc[1:].to_numpy(), ref.iloc[1:].to_numpy(), atol=0.02)
    se = np.sqrt(np.diag(fit.vcov))
    np.testing.assert_allclose(ci["upper"].iloc[1:] - ci["lower"].iloc[1:], 2 * 1.959963984540054 * se)
    # against the tightly converged glmer (make_tight_extra.R): lme4's Wald interval, estimate -/+ qnorm(0.975) SE
    tight_coef = reference("tight_extra")["coef_cbpp"]
    est, tse = np.array(tight_coef["estimate"]), np.array(tight_coef["se"])
    want = np.column_stack([est - 1.959963984540054 * tse, est + 1.959963984540054 * tse])
    assert_close(ci.iloc[1:].to_numpy(), want, rtol=5e-6, atol=5e-6 * tse[:, None])


def test_profile_confint_cbpp() -> None:
    """lme4's profile intervals (tightly converged fit) to 1e-3; lme4 interpolates a spline, we solve for zeta."""
    fit = glmer_fit("cbpp_laplace")
    ci = fit.confint("profile")
    ref = _rows(tight()["confint"]["profile"])
    assert list(ci.index) == list(ref.index)
    assert_close(ci.to_numpy(), ref.to_numpy(), atol=1e-3)
    default = _rows(GLMER["cbpp_laplace"]["confint_profile"]["rows"])
    assert_close(ci.to_numpy(), default.to_numpy(), atol=2e-3)


def test_profile_sd_lower_limit_zero() -> None:
    """An SD whose profile stays below the cut at zero gets the lower limit 0, as lme4."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(12), 15)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.2 + rng.normal(0, 0.15, 12)[g]))))
    data = pd.DataFrame({"y": y, "g": g})
    with pytest.warns(hb.HierbayesWarning):
        fit = hb.glmer("y ~ 1 + (1 | g)", data, family="bernoulli")
    ci = fit.confint("profile", parm=[".sig01"])
    assert ci.loc[".sig01", "lower"] == 0.0
    assert ci.loc[".sig01", "upper"] > fit.sdcor[".sig01"]


def test_bootstrap_is_reproducible() -> None:
    fit = glmer_fit("cbpp_laplace")
    a = fit.confint("boot", nsim=8, seed=3)
    b = fit.confint("boot", nsim=8, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == [".sig01", *fit.fixef.index]
    assert np.all(a["lower"] <= a["upper"])
    sims = fit.simulate(nsim=2, seed=1)
    assert sims.shape == (fit.nobs, 2) and np.all(sims <= fit.design.trials[:, None])


@pytest.mark.slow
def test_bootstrap_matches_lme4_within_monte_carlo_error() -> None:
    """500 replicates against lme4's 500 (different random streams): ends within Monte Carlo error."""
    fit = glmer_fit("cbpp_laplace")
    ours = fit.confint("boot", nsim=500, seed=1)
    ref = _rows(tight()["confint"]["boot"]["rows"])
    width = (ref["upper"] - ref["lower"]).to_numpy()
    assert_close(ours.to_numpy(), ref.to_numpy(), atol=0.25 * width[:, None])


def test_anova_between_glmm_fits() -> None:
    """hb.anova(m0, m) against lme4's anova(cbpp_noperiod, cbpp_laplace)."""
    fit = glmer_fit("cbpp_laplace")
    rec = GLMER["cbpp_laplace"]["anova_vs_noperiod"]
    m0 = hb.glmer(rec["formula_m0"], hb.datasets.load("cbpp"))
    tab = hb.anova(m0, fit)
    ref = pd.DataFrame(rec["table"])
    np.testing.assert_array_equal(tab["npar"].to_numpy(), ref["npar"].to_numpy())
    np.testing.assert_allclose(tab["deviance"], ref["deviance"], rtol=1e-5)
    np.testing.assert_allclose(tab["AIC"], ref["AIC"], rtol=1e-5)
    # the statistic against the tightly converged fits (lme4's default deviances are ~6e-4 too high)
    ref_t = tight()["anova"]
    assert tab["Chisq"].iloc[1] == pytest.approx(ref_t["Chisq"][1], rel=1e-5)
    assert tab["Df"].iloc[1] == ref["Df"].iloc[1]
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(ref_t["p"][1], rel=1e-4)
