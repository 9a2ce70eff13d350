"""emmeans as R users write it: two-sided specs (emm_list), pairs(), lmer.df, lsmeans.

References: tests/reference/emmlist_reference.json, made by tests/reference/make_emmlist.R
(emmeans 1.8.4-1, lme4 1.1-31, pbkrtest 0.5.2).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.refdata import reference

REF = reference("emmlist")
NUMERIC = ("emmean", "estimate", "odds.ratio", "SE", "df", "t.ratio", "z.ratio", "p.value", "lower.CL", "upper.CL")


@pytest.fixture(scope="module")
def oats():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hb.lmer("yield ~ Variety * nitro + (1 | Block/Variety)", hb.datasets.load("oats"))


@pytest.fixture(scope="module")
def cbpp():
    return hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))


def _same(table: pd.DataFrame, ref: dict, label: str, rtol: float = 1e-5) -> None:
    """Columns against emmeans on lme4's default fit (its BOBYQA stops ~1e-6 short of the optimum here)."""
    assert table[label].astype(str).tolist() == ref[label]
    for col in NUMERIC:
        if col in ref:
            want = np.array([np.inf if v is None else v for v in ref[col]], float)  # R's Inf df is JSON null
            np.testing.assert_allclose(table[col].to_numpy(float), want, rtol=rtol, err_msg=col)


def test_two_sided_specs_give_means_and_contrasts(oats):
    both = hb.emmeans(oats, "pairwise ~ Variety", **{"lmer.df": "satterthwaite"})
    assert isinstance(both, hb.interpret.EmmList) and list(both) == ["emmeans", "contrasts"]
    ref = REF["oats_pairwise_satt"]
    _same(both.emmeans, ref["emmeans"], "Variety")
    _same(both.contrasts, ref["contrasts"], "contrast")
    assert "$emmeans" in repr(both) and "$contrasts" in repr(both)


def test_two_sided_specs_take_the_method_and_adjust(oats):
    _same(hb.emmeans(oats, "trt.vs.ctrl ~ Variety", adjust="holm")["contrasts"], REF["oats_trt_holm"], "contrast")


def test_pairs_reverse(oats):
    _same(hb.pairs(hb.emmeans(oats, "Variety"), reverse=True), REF["oats_pairs_reverse"], "contrast")


def test_emtrends_two_sided(oats):
    trends = hb.emtrends(oats, "pairwise ~ Variety", var="nitro")
    _same(trends["contrasts"], REF["oats_trends_pairwise"], "contrast", rtol=1e-5)  # a difference quotient


def test_glmer_response_scale_contrasts_are_odds_ratios(cbpp):
    con = hb.emmeans(cbpp, "pairwise ~ period", type="response")["contrasts"]
    # glmer tightly converged (tolPwrss 1e-12, as make_emmeans.R): to 1e-4, as test_emmeans_reference's GLMMs
    _same(con, REF["cbpp_pairwise_response"], "contrast", rtol=1e-4)


def test_r_spellings(oats):
    a = hb.emmeans(oats, "Variety", lmer_df="satterthwaite")
    b = hb.emmeans(oats, "Variety", df="satterthwaite")
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    pd.testing.assert_frame_equal(pd.DataFrame(hb.lsmeans(oats, "Variety")), pd.DataFrame(hb.emmeans(oats, "Variety")))


def test_bad_arguments_are_argument_errors(oats):
    with pytest.raises(hb.ArgumentError, match=r"'lmer\.dff'"):
        hb.emmeans(oats, "Variety", **{"lmer.dff": "satterthwaite"})
    with pytest.raises(hb.ArgumentError, match="once"):
        hb.emmeans(oats, "Variety", df="satterthwaite", lmer_df="kenward-roger")
    with pytest.raises(hb.ArgumentError, match="names no variable"):
        hb.emmeans(oats, "pairwise ~ ")
    with pytest.raises(hb.ArgumentError):
        hb.emmeans(oats, "nonsense ~ Variety")
