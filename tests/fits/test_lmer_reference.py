"""REML/ML fits against lme4 1.1-31 (tests/reference/lmer_reference.json).

Tolerances (issue 2): objective 1e-6 relative, fixed effects 1e-5, variance
components and correlations 1e-4, standard errors 1e-4, random effects 1e-3.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.refdata import assert_close, case_data, case_formula, cases, matrix, named

CASES = cases("lmer")

#: Fits whose criterion is so flat near the optimum that lme4's BOBYQA stops ~1e-5 from the minimiser in
#: theta (our objective there is as low as lme4's, see test_objective_is_at_least_as_good): parameters are
#: compared at 1e-4. The engine itself is checked exactly at lme4's theta for every case
#: (test_estimates_at_lme4_theta).
ILL_CONDITIONED = {"sleep_noint_reml": "no fixed intercept: the random intercept carries the mean (SD ~ 250)"}


@cache
def fitted(case_id: str) -> hb.fits.LmerFit:
    case = CASES[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.lmer(case_formula(case), case_data(case["data"]), reml=case["REML"])


@pytest.mark.parametrize("case_id", list(CASES))
def test_objective_and_likelihood(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    assert fit.objective == pytest.approx(case["objective"], rel=1e-6)
    assert fit.loglik == pytest.approx(case["logLik"], rel=1e-6)
    assert fit.aic == pytest.approx(case["AIC"], rel=1e-6)
    assert fit.bic == pytest.approx(case["BIC"], rel=1e-6)
    assert fit.npar == case["logLik_df"]
    assert fit.df_resid == case["df_residual"]
    assert fit.nobs == case["nobs"]
    assert fit.ngroups == case["ngrps"]
    if case["REML"]:
        assert fit.deviance == pytest.approx(case["deviance_ml"], rel=1e-6)
        assert fit.reml_criterion == pytest.approx(case["reml_crit"], rel=1e-6)


@pytest.mark.parametrize("case_id", list(CASES))
def test_fixed_effects_and_vcov(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    beta = named(case["beta"])
    assert list(fit.fixef.index) == case["X_colnames"] == list(beta.index)
    se_ref = np.sqrt(np.diag(matrix(case["vcov"])))
    tol = 1e-4 if case_id in ILL_CONDITIONED else 1e-5
    assert_close(fit.fixef.to_numpy(), beta.to_numpy(), rtol=tol, atol=tol * se_ref)
    se = np.sqrt(np.diag(fit.vcov.to_numpy()))
    np.testing.assert_allclose(se, se_ref, rtol=1e-4)
    corr = fit.vcov.to_numpy() / np.outer(se, se)
    np.testing.assert_allclose(corr, matrix(case["corr_fixef"]).to_numpy(), atol=1e-4)


@pytest.mark.parametrize("case_id", list(CASES))
def test_variance_components(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    ref = pd.DataFrame(case["varcorr"])
    ours = fit.varcorr
    assert list(ours["grp"]) == list(ref["grp"])
    for col in ("var1", "var2"):
        assert [None if pd.isna(v) else v for v in ours[col]] == [None if pd.isna(v) else v for v in ref[col]]
    # A covariance is judged on the scale of its two SDs (1e-4 in correlation
    # units): lme4's own optimum is only that precise in flat directions, while
    # the objective agrees to 1e-10.
    rows = list(ref[["grp", "var1", "var2", "vcov"]].itertuples(index=False))
    var = {(g, v): x for g, v, v2, x in rows if pd.isna(v2)}
    scale = [abs(x) if pd.isna(v2) else np.sqrt(var[(g, v1)] * var[(g, v2)]) for g, v1, v2, x in rows]
    assert_close(ours["vcov"], ref["vcov"].astype(float), rtol=1e-4, atol=1e-4 * np.asarray(scale) + 1e-10)
    np.testing.assert_allclose(ours["sdcor"], ref["sdcor"].astype(float), rtol=1e-4, atol=1e-4)
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-5)
    assert fit.is_singular == case["isSingular"]
    assert list(fit.theta.index) == list(case["theta"])


@pytest.mark.parametrize("case_id", list(CASES))
def test_random_effects(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    for group, ref in case["ranef"].items():
        ours = fit.ranef[group]
        assert list(ours.index) == ref["levels"]
        assert list(ours.columns) == ref["terms"]
        values = np.array(ref["values"], dtype=float)
        scale = max(float(np.nanmax(np.abs(values))), 1e-8)
        # lme4's default stops short of the optimum in flat directions: measured <= 2.9e-5 (modes), 3.5e-5
        # (conditional SDs), 2e-5 (coef), all in hsb_sector
        np.testing.assert_allclose(ours.to_numpy(), values, rtol=1e-4, atol=1e-4 * scale)
        condsd = np.sqrt(fit.ranef_condvar[group].to_numpy())
        np.testing.assert_allclose(condsd, np.array(ref["condsd"], dtype=float), rtol=1e-4, atol=1e-5 * scale)
        coef = np.array(case["coef"][group]["values"], dtype=float)
        col_scale = np.abs(coef).max(axis=0)
        ours_coef = fit.coef[group][case["coef"][group]["terms"]].to_numpy()
        assert_close(ours_coef, coef, rtol=5e-5, atol=5e-5 * col_scale)


@pytest.mark.parametrize("case_id", list(CASES))
def test_fitted_residuals_and_predictions(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    scale = np.abs(case["fitted"]).max()
    np.testing.assert_allclose(fit.fitted, case["fitted"], rtol=1e-5, atol=1e-4 * scale)
    np.testing.assert_allclose(fit.residuals, case["residuals"], atol=1e-4 * scale)
    q = named(case["scaled_residual_quantiles"])
    np.testing.assert_allclose(np.quantile(fit.residuals / fit.sigma, [0, 0.25, 0.5, 0.75, 1]), q, atol=1e-4)
    data = case_data(case["data"])
    head = data.iloc[[r - 1 for r in case["predict_head5"]["rows"]]]
    np.testing.assert_allclose(fit.predict(head), case["predict_head5"]["re_form_NULL"], rtol=1e-5, atol=1e-4 * scale)
    tol = 1e-4 if case_id in ILL_CONDITIONED else 1e-5
    np.testing.assert_allclose(fit.predict(head, re_form="~0"), case["predict_head5"]["re_form_NA"], rtol=tol)


@pytest.mark.parametrize("case_id", [c for c in CASES if "predict_new_levels" in CASES[c]])
def test_predict_new_levels(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    spec = case["predict_new_levels"]
    data = case_data(case["data"])
    new = data.iloc[[r - 1 for r in spec["rows"]]].copy()
    for var in spec["grouping_vars"]:
        col = new[var].astype(str).to_numpy(copy=True)
        col[[r - 1 for r in spec["new_level_rows"]]] = spec["new_level"]
        new[var] = col
    np.testing.assert_allclose(fit.predict(new, new_levels="population"), spec["re_form_NULL"], rtol=1e-5)
    with pytest.raises(hb.DataError, match=spec["new_level"]):
        fit.predict(new, new_levels="error")


@pytest.mark.parametrize("case_id", list(CASES))
def test_objective_is_at_least_as_good(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    assert fit.objective <= case["objective"] * (1 + 1e-9)


@pytest.mark.parametrize("case_id", list(CASES))
def test_estimates_at_lme4_theta(case_id: str) -> None:
    """Given lme4's theta, the engine's beta, vcov, sigma and modes equal lme4's (no optimizer involved)."""
    from hierbayes.reml import estimates_at

    case, fit = CASES[case_id], fitted(case_id)
    est = estimates_at(fit.devfun, np.array(list(case["theta"].values()), dtype=float), fit.optinfo)
    beta = named(case["beta"]).to_numpy()
    se_ref = np.sqrt(np.diag(matrix(case["vcov"])))
    assert_close(est.beta, beta, rtol=1e-8, atol=1e-8 * se_ref)
    assert_close(est.vcov, matrix(case["vcov"]).to_numpy(), rtol=1e-7, atol=1e-9 * np.outer(se_ref, se_ref))
    assert est.sigma == pytest.approx(case["sigma"], rel=1e-8)
    assert est.objective == pytest.approx(case["objective"], rel=1e-10)
    for block, b in zip(fit.design.blocks, est.b, strict=True):
        ref = np.array(case["ranef"][block.group]["values"], dtype=float)
        assert_close(b, ref, rtol=1e-6, atol=1e-6 * max(np.abs(ref).max(), 1e-8))


@pytest.mark.parametrize("case_id", list(CASES))
def test_objective_at_fixed_theta(case_id: str) -> None:
    case, fit = CASES[case_id], fitted(case_id)
    for point in case["devfun"].values():
        assert fit.devfun(np.array(point["theta"], dtype=float)) == pytest.approx(point["value"], rel=1e-6)


def test_rank_deficient_columns_are_dropped_like_lme4() -> None:
    case = CASES["sim_rankdef_reml"]
    with pytest.warns(hb.HierbayesWarning, match="rank deficient so dropping 1 column / coefficient: x2"):
        fit = hb.lmer(case_formula(case), case_data(case["data"]))
    assert fit.design.aliased == tuple(case["col_dropped"])


def test_singular_fit_is_detected_and_warned() -> None:
    case = CASES["dyestuff2_reml"]
    with pytest.warns(hb.SingularFitWarning, match="method='bayes'"):
        fit = hb.lmer(case_formula(case), case_data(case["data"]))
    assert fit.is_singular
    assert "singular" in str(fit.summary())
