"""Bad input to residual structures: clear hierbayes errors naming the culprit."""

from __future__ import annotations

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, ColumnNotFoundError, DataError, ModelError

OV = "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)"


@pytest.fixture(scope="module")
def ovary():
    return hb.datasets.load("ovary")


def test_missing_column(ovary):
    with pytest.raises(ColumnNotFoundError, match=r"corAR1\('~ visits \| Mare'\).*'visits'"):
        hb.lmer(OV, ovary, correlation=hb.corAR1("~ visits | Mare"))
    with pytest.raises(ColumnNotFoundError, match="'Horse'"):
        hb.lmer(OV, ovary, correlation=hb.corAR1("~ 1 | Horse"))
    with pytest.raises(ColumnNotFoundError, match="'age'"):
        hb.lmer(OV, ovary, variance=hb.varPower("~ age"))


def test_non_numeric_time_for_car1(ovary):
    d = ovary.assign(when=ovary["Time"].astype(str))
    with pytest.raises(DataError, match=r"covariate 'when' of corCAR1.*must be numeric"):
        hb.lmer(OV, d, correlation=hb.corCAR1("~ when | Mare"))


def test_duplicated_positions_for_ar1(ovary):
    d = ovary.copy()
    d.loc[3, "visit"] = d.loc[2, "visit"]
    with pytest.raises(DataError, match=r"position 'visit' of corAR1.*duplicated within a group: value 3"):
        hb.lmer(OV, d, correlation=hb.corAR1("~ visit | Mare"))
    with pytest.raises(DataError, match="must be integers"):
        hb.lmer(OV, ovary, correlation=hb.corAR1("~ Time | Mare"))


def test_varident_stratum_with_one_row(ovary):
    d = ovary.assign(s=np.where(np.arange(len(ovary)) == 5, "lonely", "many"))
    with pytest.raises(DataError, match="stratum 'lonely' has a single row"):
        hb.lmer(OV, d, variance=hb.varIdent("~ 1 | s"))
    with pytest.raises(DataError, match="single value"):
        hb.lmer(OV, ovary.assign(s="a"), variance=hb.varIdent("~ 1 | s"))


def test_structures_given_to_glmer(ovary):
    with pytest.raises(ModelError, match=r"correlation .*gaussian models only"):
        hb.glmer("follicles ~ Time + (1 | Mare)", ovary, family="poisson", correlation=hb.corAR1("~ 1 | Mare"))
    with pytest.raises(ModelError, match=r"variance .*gaussian models only"):
        hb.Model("follicles ~ Time + (1 | Mare)", ovary, family="poisson", variance=hb.varIdent("~ 1 | Mare"))


def test_bad_forms_and_objects(ovary):
    with pytest.raises(ArgumentError, match="one-sided"):
        hb.corAR1("Time | Mare")
    with pytest.raises(ArgumentError, match="more than one"):
        hb.corAR1("~ 1 | a | b")
    with pytest.raises(ArgumentError, match="correlation must be"):
        hb.lmer(OV, ovary, correlation="AR1")
    with pytest.raises(ArgumentError, match="variance must be"):
        hb.lmer(OV, ovary, variance=hb.corAR1("~ 1 | Mare"))
    with pytest.raises(ArgumentError, match="value of corAR1"):
        hb.lmer(OV, ovary, correlation=hb.corAR1("~ 1 | Mare", value=1.5))
    with pytest.raises(ArgumentError, match="varComb takes"):
        hb.varComb(hb.varIdent("~ 1 | Mare"))


def test_correlation_groups_must_nest_in_the_random_effects(ovary):
    d = ovary.assign(block=np.arange(len(ovary)) % 7)
    with pytest.raises(ModelError, match="not nested in the random-effects grouping 'Mare'"):
        hb.lmer(OV, d, correlation=hb.corAR1("~ 1 | block"))


def test_user_frame_untouched(ovary):
    before = ovary.copy()
    hb.lmer(OV, ovary, correlation=hb.corAR1("~ visit | Mare"))
    assert ovary.equals(before)
