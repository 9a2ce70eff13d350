"""anova types under lmerTest's (and nlme's) spellings: I, II, III, marginal, against lmerTest 3.1-3.

R numbers: tests/reference/lme4args_reference.json, ``anova_types`` (make_lme4args_reference.R). A
boolean predictor is a factor with levels FALSE/TRUE, as in R: its tables equal those of the same
column spelled "TRUE"/"FALSE".
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError
from tests.refdata import REFERENCE, ROOT

TYPES = pd.read_json(REFERENCE / "lme4args_reference.json", typ="series")["anova_types"]


def _sleep() -> pd.DataFrame:
    d = hb.datasets.load("sleepstudy")
    return d.assign(b=d["Days"] > 4, s=np.where(d["Days"] > 4, "TRUE", "FALSE"))


MODELS = {
    "hsb_sector": ("mathach ~ sector * cses + mean_ses + (cses | school)", lambda: hb.datasets.load("hsb")),
    "sleep_boolean": ("Reaction ~ b * Days + (1 | Subject)", _sleep),
    "sleep_strings": ("Reaction ~ s * Days + (1 | Subject)", _sleep),
    "transforms_k": (
        "y ~ k * z + log(x) + (1 | g)",
        lambda: pd.read_csv(ROOT / "tests/reference/data/sim_transforms.csv"),
    ),
}
#: hsb's REML optimum is flat: lme4's default stops ~1e-5 (relative) from it in the variance parameters
TOL = {"hsb_sector": 1e-4}


@cache
def fitted(case_id: str):
    formula, data = MODELS[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.lmer(formula, data())


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index("term")


@pytest.mark.parametrize("case_id", list(TYPES))
@pytest.mark.parametrize("kind", ["I", "II", "III", "marginal", "II_kenward_roger"])
def test_anova_types_equal_lmerTest(case_id: str, kind: str) -> None:
    ref = _table(TYPES[case_id][kind])
    fit = fitted(case_id)
    ours = fit.anova(type=kind.split("_")[0], ddf="kenward-roger" if kind.endswith("roger") else "satterthwaite")
    assert list(ours.index) == list(ref.index)
    tol = TOL.get(case_id, 1e-7)
    for col in ("F value", "DenDF", "Sum Sq", "Mean Sq"):
        np.testing.assert_allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=tol, err_msg=col)
    # tiny p-values magnify F's relative differences (by F, up to ~100 here)
    np.testing.assert_allclose(ours["Pr(>F)"].to_numpy(float), ref["Pr(>F)"].to_numpy(float), rtol=100 * tol)
    np.testing.assert_array_equal(ours["NumDF"].to_numpy(int), ref["NumDF"].to_numpy(int))


def test_every_spelling_of_a_type_gives_the_same_table() -> None:
    fit = fitted("transforms_k")
    for spellings in ((3, "3", "III", "iii"), (2, "2", "II"), (1, "1", "I", "sequential"), ("marginal", "Marginal")):
        tables = [fit.anova(type=t) for t in spellings]
        for t in tables[1:]:
            pd.testing.assert_frame_equal(t, tables[0])
    assert not fit.anova(type="II").equals(fit.anova(type="III"))  # k:z makes them differ


def test_a_boolean_predictor_is_the_factor_R_makes_of_it() -> None:
    for kind in ("I", "II", "III", "marginal"):
        a, b = fitted("sleep_boolean").anova(type=kind), fitted("sleep_strings").anova(type=kind)
        np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-10)
        assert [i.replace("b", "s") for i in a.index] == list(b.index)
    assert list(fitted("sleep_boolean").fixef.index) == ["(Intercept)", "bTRUE", "Days", "bTRUE:Days"]


def test_unknown_types_and_ddf_are_argument_errors() -> None:
    fit = fitted("transforms_k")
    for bad in ("IV", 4, "yates", "3b", 2.5, None):
        with pytest.raises(ArgumentError, match="anova type must be one of 1, 2, 3"):
            fit.anova(type=bad)
    with pytest.raises(ArgumentError, match="ddf must be"):
        fit.anova(ddf="bogus")
    # nlme's containment df (issue 20) is a coef_table ddf, not an anova one
    with pytest.raises(ArgumentError, match=r"anova tables use .* not 'containment'"):
        fit.anova(ddf="containment")
    with pytest.raises(ArgumentError, match="anova tables use ddf='satterthwaite' or 'kenward-roger', not 'wald'"):
        fit.anova(ddf="wald")
