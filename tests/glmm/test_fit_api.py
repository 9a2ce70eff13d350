"""GlmerFit's extractors, summary, predictions, warnings and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ModelError, OverdispersionWarning, SingularFitWarning
from tests.glmm.cache import GLMER, glmer_fit
from tests.refdata import case_data, reference

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_summary_layout_matches_lme4() -> None:
    fit = glmer_fit("cbpp_laplace")
    text = str(fit.summary())
    lines = text.splitlines()
    # the lines lme4 1.1-31 prints for this model (R's print(summary(m)))
    assert lines[:3] == [
        "Generalized linear mixed model fit by maximum likelihood (Laplace",
        "  Approximation) [glmerMod]",
        " Family: binomial  ( logit )",
    ]
    assert "     AIC      BIC   logLik deviance df.resid " in lines
    assert "   194.1    204.2    -92.0    184.1       51 " in lines
    assert " herd   (Intercept) 0.4125   0.6423" in lines  # lme4 (default tolerance): 0.4123 0.6421
    assert "Number of obs: 56, groups:  herd, 15" in lines
    header = next(line for line in lines if "Estimate" in line)
    assert header.split() == ["Estimate", "Std.", "Error", "z", "value", "Pr(>|z|)"]
    assert "Correlation of Fixed Effects:" in lines


def test_coef_table_wald_z() -> None:
    fit = glmer_fit("cbpp_laplace")
    tab = fit.coef_table()
    assert list(tab.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    # against the tightly converged glmer (make_tight_extra.R): estimates, SEs and z to 5e-6, p to 1e-4
    # (p of z = -6 moves 36 times as much as z: d log p / d log z = z phi(z) / Phi(-z) ~ 36)
    tight = reference("tight_extra")["coef_cbpp"]
    assert list(tab.index) == tight["term"]
    np.testing.assert_allclose(tab["Estimate"], tight["estimate"], rtol=5e-6)
    np.testing.assert_allclose(tab["Std. Error"], tight["se"], rtol=5e-6)
    np.testing.assert_allclose(tab["z value"], tight["z"], rtol=5e-6)
    np.testing.assert_allclose(tab["Pr(>|z|)"], tight["p"], rtol=1e-4)  # measured 5.5e-5 (z: 1.5e-6)


def test_extractors_and_protocol() -> None:
    fit = glmer_fit("grouse_nested")
    assert fit.sigma is None
    assert "Residual" not in set(fit.varcorr["grp"])
    assert list(fit.sdcor.index) == [".sig01", ".sig02"]
    assert fit.method == "ml" and fit.refit_ml() is fit
    assert fit.aic == pytest.approx(fit.deviance + 2 * fit.npar)
    coef = fit.coef["LOCATION"]
    np.testing.assert_allclose(coef["(Intercept)"], fit.fixef["(Intercept)"] + fit.ranef["LOCATION"]["(Intercept)"])
    assert np.allclose(fit.residuals, fit.resid("deviance"))
    assert np.allclose(fit.fitted, fit.predict(type="response"))
    np.testing.assert_allclose(np.log(fit.fitted), fit.predict(), rtol=1e-12)


def test_predict_new_levels_and_re_form() -> None:
    fit = glmer_fit("cbpp_laplace")
    data = case_data(GLMER["cbpp_laplace"]["data"]).iloc[:3].copy()
    pop = fit.predict(data, re_form="~0")
    X = fit.design.fixed_matrix(data)
    np.testing.assert_allclose(pop, X @ fit.fixef.to_numpy())
    data["herd"] = data["herd"].astype(str)
    data.loc[data.index[0], "herd"] = "NEW"
    p = fit.predict(data, type="response", allow_new_levels=True)
    assert p[0] == pytest.approx(1 / (1 + np.exp(-pop[0])))
    with pytest.raises(hb.DataError, match="not seen"):
        fit.predict(data)  # lme4's default: allow.new.levels = FALSE


def test_overdispersion_warning() -> None:
    case = GLMER["grouse_nested"]
    with pytest.warns(OverdispersionWarning, match="overdispersed"):
        hb.glmer(case["formula"], case_data(case["data"]), family="poisson")


def test_singular_fit_warns() -> None:
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=200)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + 0.5 * x))))
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with pytest.warns(SingularFitWarning):
        fit = hb.glmer("y ~ x + (1 | g)", data, family="bernoulli")
    assert fit.is_singular and fit.convergence is None
    assert np.all(np.isfinite(fit.vcov.to_numpy()))


def test_bad_requests() -> None:
    d = hb.datasets.load("cbpp")
    with pytest.raises(ModelError, match="nAGQ"):
        hb.glmer(CBPP, d, nAGQ=-1)
    with pytest.raises(ModelError, match="start takes"):
        hb.glmer(CBPP, d, start={"beta": [0]})
    with pytest.raises(ModelError, match=r"start has 2 value\(s\); the model's theta has 1 value\(s\): herd"):
        hb.glmer(CBPP, d, start={"theta": [1.0, 2.0]})
    with pytest.raises(ModelError, match="method='bayes'"):
        hb.Model("incidence ~ period + (1 | herd)", d, family="zero_inflated_poisson").fit("ml")
    with pytest.raises(ValueError, match=r"type must be one of"):
        glmer_fit("cbpp_laplace").resid("studentized")


def test_recovers_known_parameters() -> None:
    """Simulated bernoulli data with a random intercept and slope: estimates within 3 SE of the truth."""
    rng = np.random.default_rng(2024)
    ng, per = 150, 30
    g = np.repeat(np.arange(ng), per)
    x = rng.normal(size=ng * per)
    u0 = rng.normal(0, 0.8, ng)
    u1 = rng.normal(0, 0.4, ng)
    eta = -0.4 + 0.9 * x + u0[g] + u1[g] * x
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = hb.glmer("y ~ x + (x || g)", data, family="bernoulli")
    se = np.sqrt(np.diag(fit.vcov))
    assert np.all(np.abs(fit.fixef.to_numpy() - [-0.4, 0.9]) < 3 * se)
    sds = fit.varcorr["sdcor"].to_numpy()
    assert abs(sds[0] - 0.8) < 0.2 and abs(sds[1] - 0.4) < 0.2


def test_poisson_offset() -> None:
    """An offset of log(exposure) shifts the intercept only."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(30), 8)
    expo = rng.uniform(1, 5, g.size)
    y = rng.poisson(expo * np.exp(0.2 + rng.normal(0, 0.5, 30)[g]))
    data = pd.DataFrame({"y": y, "g": g, "lexpo": np.log(expo)})
    fit = hb.glmer("y ~ 1 + offset(lexpo) + (1 | g)", data, family="poisson")
    data2 = data.assign(y2=y)
    fit2 = hb.glmer("y2 ~ 1 + lexpo + (1 | g)", data2, family="poisson")
    assert fit.fixef["(Intercept)"] == pytest.approx(0.2, abs=0.3)
    assert fit2.fixef["lexpo"] == pytest.approx(1.0, abs=0.2)
    np.testing.assert_allclose(fit.predict(data.iloc[:3]), fit.linear_predictor[:3], rtol=1e-10)
