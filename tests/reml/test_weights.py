"""Prior weights in lmer (lme4's ``weights=``: residual variance sigma^2 / w_i) against lme4 1.1-31.

Reference: tests/reference/lme4args_reference.json (make_lme4args_reference.R), cases from lme4's
tests/priorWeights.R and priorWeightsModComp.R. Where lme4's default optimizer stops short, the
targets are lme4's tightly converged refits (``tight``); lme4's own numbers are checked at the
tolerances of tests/fits (criterion 1e-6 relative and at least as low).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.reml.direct import direct_criterion
from tests.refdata import REFERENCE, ROOT, assert_close

REF = pd.read_json(REFERENCE / "lme4args_reference.json", typ="series")
WEIGHTED = REF["weighted_lmer"]


def _data(path: str) -> pd.DataFrame:
    d = pd.read_csv(ROOT / path)
    for col in ("g", "Subject"):
        if col in d:
            d[col] = d[col].astype(str)
    return d


@cache
def fitted(case_id: str) -> hb.fits.LmerFit:
    case = WEIGHTED[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.lmer(case["formula"], _data(case["data"]), weights=case["weights"], REML=case["REML"])


def _values(d: dict) -> np.ndarray:
    return np.array(list(d.values()), dtype=float)


@pytest.mark.parametrize("case_id", list(WEIGHTED))
def test_weighted_fit_equals_lme4(case_id: str) -> None:
    case, fit = WEIGHTED[case_id], fitted(case_id)
    tight = case.get("tight", case)
    # the criterion: lme4's to 1e-8 relative and never higher; the tight optimum's to 1e-10
    assert fit.objective == pytest.approx(case["objective"], rel=1e-8)
    assert fit.objective <= case["objective"] + 1e-9 * abs(case["objective"])
    assert fit.objective == pytest.approx(tight["objective"], rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(fit.theta.to_numpy(), _values(tight["theta"]), rtol=1e-5, atol=1e-6)
    se = _values(case["se"])
    assert_close(fit.fixef.to_numpy(), _values(tight["beta"]), rtol=1e-6, atol=1e-5 * se)
    assert fit.sigma == pytest.approx(tight["sigma"], rel=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov.to_numpy())), se, rtol=1e-4)
    assert fit.loglik == pytest.approx(case["logLik"], rel=1e-8)
    assert fit.aic == pytest.approx(case["AIC"], rel=1e-8)
    assert fit.nobs == case["nobs"]
    if fit.reml:
        assert fit.deviance == pytest.approx(case["deviance_ml"], rel=1e-6)


@pytest.mark.parametrize("case_id", [c for c in WEIGHTED if c.startswith("priorweights_")])
def test_weighted_fit_agrees_with_nlme_varfixed(case_id: str) -> None:
    """lme4's own check (priorWeights.R, there at 1e-2): nlme's lme with varFixed(~v), v = 1/w, fits the same
    model; nlme's optimizer stops ~1e-4 away, so estimates agree to 1e-3 and the likelihoods to 1e-6."""
    nlme, fit = WEIGHTED[case_id]["nlme"], fitted(case_id)
    assert fit.loglik == pytest.approx(nlme["logLik"], rel=1e-6)
    assert fit.loglik >= nlme["logLik"] - 1e-6
    assert_close(fit.fixef.to_numpy(), _values(nlme["beta"]), rtol=1e-3, atol=1e-3 * _values(WEIGHTED[case_id]["se"]))
    assert fit.sigma == pytest.approx(nlme["sigma"], rel=1e-3)


def test_constant_weights_change_sigma_only() -> None:
    """priorWeights.R: weights all 5 give the unweighted deviance; sigma scales by sqrt(5)."""
    case = WEIGHTED["sleep_constant5_ml"]
    fit = fitted("sleep_constant5_ml")
    assert fit.deviance == pytest.approx(case["deviance_unweighted"], rel=1e-9)
    plain = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"), REML=False)
    assert fit.sigma == pytest.approx(plain.sigma * np.sqrt(5), rel=1e-6)
    np.testing.assert_allclose(fit.fixef, plain.fixef, rtol=1e-8)
    np.testing.assert_allclose(fit.theta * np.sqrt(5), plain.theta, rtol=1e-5)  # sigma^2 Lambda Lambda' unchanged


def test_zero_weights_drop_the_rows() -> None:
    """A row of weight zero contributes nothing: the fit of the other rows (lme4 1.1-31 returns Inf here)."""
    case = WEIGHTED["sleep_zero_weights_reml"]
    assert case["lme4_with_zero_rows"]["REMLcrit"] is None  # R's Inf, written as null
    fit = fitted("sleep_zero_weights_reml")
    d = _data(case["data"])
    sub = hb.lmer("Reaction ~ Days + (Days | Subject)", d[d["w0"] > 0], weights="w0")
    assert fit.reml_criterion == pytest.approx(sub.reml_criterion, rel=1e-12)
    np.testing.assert_allclose(fit.theta, sub.theta, rtol=1e-7)
    assert fit.nobs == 175 == sub.nobs and fit.design.n == 180
    assert fit.df_resid == 175 - fit.npar
    # every row has a fitted value and a residual, as in R's lm with zero weights
    assert np.isfinite(fit.residuals).all() and len(fit.residuals) == 180
    assert fit.resid("pearson")[d["w0"].to_numpy() == 0] == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(5))
def test_likelihood_ratio_tests_do_not_depend_on_the_scale_of_the_weights(seed: int) -> None:
    """priorWeightsModComp.R: anova(fm1, fm2) with weights w and 10 w are identical, and equal lme4's."""
    ref = REF["modcomp"][f"seed{seed}"]
    weights = pd.read_csv(ROOT / REF["modcomp"]["weights_data"])[ref["weights_column"]].to_numpy()
    d = hb.datasets.load("sleepstudy")
    tables = []
    for scale, key in ((1.0, "w"), (10.0, "w10")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hb.HierbayesWarning)
            fm1 = hb.lmer("Reaction ~ Days + (Days | Subject)", d, REML=False, weights=weights * scale)
            fm2 = hb.lmer("Reaction ~ Days + (1 | Subject)", d, REML=False, weights=weights * scale)
        tab = hb.anova(fm1, fm2)
        r = ref[key]
        np.testing.assert_allclose(tab["logLik"], r["logLik"], rtol=1e-8)
        np.testing.assert_allclose(tab["AIC"], r["AIC"], rtol=1e-8)
        assert tab["Chisq"].iloc[1] == pytest.approx(r["Chisq"][1], rel=1e-5, abs=1e-6)
        tables.append(tab)
    np.testing.assert_allclose(tables[0]["logLik"], tables[1]["logLik"], rtol=1e-9)
    assert tables[0]["Chisq"].iloc[1] == pytest.approx(tables[1]["Chisq"].iloc[1], rel=1e-6, abs=1e-7)


def test_weighted_criterion_equals_the_dense_gls_computation() -> None:
    """The fast path against the O(n^3) GLS with V0 = Z Lambda Lambda' Z' + W^-1, zero weights included."""
    d = hb.datasets.load("sleepstudy")
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(d))
    w[[0, 17, 90]] = 0.0
    for formula in ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"):
        m = hb.Model(formula, d, weights=w)
        from hierbayes.reml import LmmObjective

        for reml in (True, False):
            obj = LmmObjective(m.design, reml)
            theta = np.r_[0.9, 0.1, 0.3][: obj.layout.size]
            assert obj(theta) == pytest.approx(direct_criterion(m.design, theta, reml), rel=1e-10)


def test_weights_errors_name_the_weights() -> None:
    d = hb.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (Days | Subject)"
    bad = np.ones(len(d))
    bad[4] = -2.0
    with pytest.raises(hb.DataError, match=r"weights must be non-negative; 1 are negative \(-2 in row 4\)"):
        hb.lmer(f, d, weights=bad)
    bad[4] = np.nan
    with pytest.raises(hb.DataError, match=r"weights must be finite numbers; 1 are missing or infinite \(nan in row 4"):
        hb.lmer(f, d, weights=bad)
    with pytest.raises(hb.DataError, match="every weight is zero"):
        hb.lmer(f, d, weights=np.zeros(len(d)))
    with pytest.raises(hb.DataError, match="weights has 3 values for 180 rows"):
        hb.lmer(f, d, weights=[1, 2, 3])
    col = d.assign(wt=np.r_[np.nan, np.ones(len(d) - 1)])
    with pytest.raises(hb.DataError, match=r"weights column 'wt' must be finite numbers; 1 are missing"):
        hb.lmer(f, col, weights="wt")
    with pytest.raises(hb.ColumnNotFoundError, match="unknown column 'wt'"):
        hb.lmer(f, d, weights="wt")
    with pytest.raises(hb.DataError, match="weights must be numbers"):
        hb.lmer(f, d, weights=["a"] * len(d))
    assert list(d.columns) == ["Reaction", "Days", "Subject"]  # the data frame is untouched


def test_weighted_fit_supports_its_inference() -> None:
    fit = fitted("sleep_weights_reml")
    table = fit.coef_table()
    assert np.isfinite(table["df"]).all()
    assert fit.anova().loc["Days", "NumDF"] == 1
    with pytest.raises(hb.ModelError, match="Kenward-Roger's method is not available for a fit with prior weights"):
        fit.coef_table(ddf="kenward-roger")
    ci = fit.confint(method="profile", parm=".sigma")
    lo, hi = ci.iloc[0]
    assert lo < fit.sigma < hi
    sims = fit.simulate(nsim=3, seed=1)
    assert sims.shape == (180, 3) and np.isfinite(sims).all()
    boot = fit.bootstrap(nsim=10, seed=1, n_jobs=1, progress=False)
    assert boot.n_failed == 0
    assert list(fit.ranova().index) == ["<none>", "Days in (Days | Subject)"]
