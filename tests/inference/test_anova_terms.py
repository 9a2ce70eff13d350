"""F tests per term against lmerTest 3.1-3 / pbkrtest 0.5.2 (anova(m, type=, ddf=)).

inference_reference.json has one-df terms only; inference_extra_reference.json
(make_inference_extra.R) adds a three-level factor and a factor x numeric
interaction (multi-df Satterthwaite F tests, type III containment).
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.inference.contrasts import contrasts_type3, model_terms
from tests.inference.cache import INFERENCE, at_lme4_estimates, fitted
from tests.refdata import REFERENCE, assert_close, case_data

KEYS = {
    "anova_type3_satterthwaite": (3, "satterthwaite"),
    "anova_type1_satterthwaite": (1, "satterthwaite"),
    "anova_type3_kenward_roger": (3, "kenward-roger"),
    "anova_type1_kenward_roger": (1, "kenward-roger"),
}
CASES = [(c, k) for c in INFERENCE for k in KEYS if k in INFERENCE[c]]
EXTRA = json.loads((REFERENCE / "inference_extra_reference.json").read_text())["anova_cases"]
EXTRA_CASES = [(c, k) for c in EXTRA for k in KEYS if k in EXTRA[c]]


def _ref(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index("term").astype(float)


def _check(table: pd.DataFrame, ref: pd.DataFrame, rtol: float, df_rtol: float, p_rtol: float) -> None:
    assert list(table.index) == list(ref.index)
    assert list(table.columns) == ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    assert (table["NumDF"].astype(float) == ref["NumDF"]).all()
    for col in ["Sum Sq", "Mean Sq", "F value"]:
        assert_close(table[col].astype(float), ref[col], rtol=rtol)
    assert_close(table["DenDF"].astype(float), ref["DenDF"], rtol=df_rtol)
    big = ref["Pr(>F)"] > 1e-10
    assert_close(table["Pr(>F)"][big].astype(float), ref["Pr(>F)"][big], rtol=p_rtol)


@pytest.mark.parametrize(("case_id", "key"), CASES)
def test_anova_at_hierbayes_optimum(case_id: str, key: str) -> None:
    type_, ddf = KEYS[key]
    table = fitted(case_id).anova(type=type_, ddf=ddf)
    df_rtol = 1e-3 if ddf == "satterthwaite" else 1e-2
    _check(table, _ref(INFERENCE[case_id][key]), 1e-4, df_rtol, 1e-3)


@pytest.mark.parametrize(("case_id", "key"), CASES)
def test_anova_at_lme4_estimates(case_id: str, key: str) -> None:
    type_, ddf = KEYS[key]
    table = at_lme4_estimates(case_id).anova(type=type_, ddf=ddf)
    # df to 1e-5: numerical-derivative rounding noise differs from lmerTest's at 1e-6 (issue allows 1e-3)
    _check(table, _ref(INFERENCE[case_id][key]), 1e-7, 1e-5, 1e-5)


@cache
def _extra_fit(case_id: str) -> hb.fits.LmerFit:
    c = EXTRA[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.lmer(c["py_formula"] or c["formula"], case_data(c["data"]))


@pytest.mark.parametrize(("case_id", "key"), EXTRA_CASES)
def test_multi_df_terms(case_id: str, key: str) -> None:
    type_, ddf = KEYS[key]
    table = _extra_fit(case_id).anova(type=type_, ddf=ddf)
    _check(table, _ref(EXTRA[case_id][key]), 1e-6, 1e-5, 1e-5)


@pytest.mark.parametrize("case_id", list(EXTRA))
def test_extra_coefficient_tables(case_id: str) -> None:
    fit = _extra_fit(case_id)
    for key, ddf in [("coef_satterthwaite", "satterthwaite"), ("coef_kenward_roger", "kenward-roger")]:
        ref = _ref(EXTRA[case_id][key])
        table = fit.coef_table(ddf)
        assert list(table.index) == list(ref.index)
        assert_close(table["df"], ref["df"], rtol=1e-5)
        assert_close(table["Pr(>|t|)"], ref["Pr(>|t|)"], rtol=1e-4)


def test_terms_follow_the_design() -> None:
    fit = fitted("hsb_sector_reml")
    intercept, terms = model_terms(fit.design)
    assert intercept
    assert [(t.label, t.columns) for t in terms] == [
        ("sector", (1,)), ("cses", (2,)), ("mean_ses", (3,)), ("sector:cses", (4,))
    ]  # fmt: skip
    L = contrasts_type3(fit.design)
    # cses is contained in sector:cses (same covariate, one more variable): its type III contrast is not a unit vector
    assert np.count_nonzero(L["cses"]) == 2
    np.testing.assert_array_equal(L["mean_ses"], [[0, 0, 0, 1, 0]])


def test_intercept_only_model_has_no_terms() -> None:
    assert fitted("sleep_null_reml").anova().empty


def test_bad_type() -> None:
    for bad in (4, "IV", "3b", None, 2.5, True):
        with pytest.raises(hb.errors.ArgumentError, match="anova type must be one of"):
            fitted("sleep_int_reml").anova(type=bad)
