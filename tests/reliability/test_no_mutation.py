"""Fitting and predicting never modify the user's data frames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb


def messy_sleepstudy() -> pd.DataFrame:
    """sleepstudy with NA, inf and empty values, a categorical with unused levels and an object column."""
    s = hb.datasets.load("sleepstudy")
    d = s.assign(
        Days=s["Days"].astype(float),
        subj=s["Subject"].astype(str).astype(object),
        shift=pd.Categorical(np.tile(["day", "night", "day"], 60), categories=["night", "day", "never"]),
        note="x",
    )
    d.loc[2, "Reaction"] = np.nan
    d.loc[9, "Days"] = np.inf
    d.loc[11, "subj"] = " "
    d.index = d.index * 3 + 7  # a non-default index
    return d


@pytest.mark.parametrize("reml", [True, False])
def test_lmer_does_not_modify_the_data(reml):
    data = messy_sleepstudy()
    before = data.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.lmer("Reaction ~ scale(Days) + shift + (Days | subj)", data, reml=reml)
        fit.predict(data, allow_new_levels=True)
        fit.predict(data, re_form="~0")
        fit.fitted, fit.residuals, fit.ranef, fit.coef
    pd.testing.assert_frame_equal(data, before, check_exact=True)
    assert list(data["shift"].cat.categories) == ["night", "day", "never"]


def test_predict_does_not_modify_newdata():
    s = hb.datasets.load("sleepstudy")
    fit = hb.lmer("Reaction ~ Days + (Days | Subject)", s)
    new = pd.DataFrame({"Days": [0.0, 5.0, np.nan], "Subject": pd.Categorical(["308", "999", "309"])}, index=[5, 1, 9])
    before = new.copy(deep=True)
    fit.predict(new, allow_new_levels=True)
    pd.testing.assert_frame_equal(new, before, check_exact=True)


def test_glmer_does_not_modify_the_data():
    cbpp = hb.datasets.load("cbpp")
    before = cbpp.copy(deep=True)
    hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    pd.testing.assert_frame_equal(cbpp, before, check_exact=True)
