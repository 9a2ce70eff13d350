"""The bad-input catalogue (issues 2 and 9), through the public API: hb.Model, hb.lmer, fit.predict.

Each case asserts the error (or warning) type and that the message names the
culprit. docs/errors.md lists the same cases with an example message each.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import (
    ColumnNotFoundError,
    DataError,
    DesignWarning,
    DroppedRowsWarning,
    FormulaError,
    ModelError,
    ScalingWarning,
)


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return hb.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return hb.lmer("Reaction ~ Days + (Days | Subject)", sleep)


# --- formulas -------------------------------------------------------------------------------------------------

SYNTAX = [
    ("unbalanced parentheses", "Reaction ~ Days + (Days | Subject", 18, "'(' is never closed"),
    ("empty bar left side", "Reaction ~ Days + (| Subject)", 19, "empty left side of '|'"),
    ("empty grouping factor", "Reaction ~ Days + (1 |)", 22, "empty grouping factor"),
    ("| in the response", "Reaction | Subject ~ Days + (1 | Subject)", 9, "'|' outside a random-effects term"),
    ("bar inside a bare bar", "Reaction ~ (1 | Subject) + Days | Subject", 14, "inside the left side of another"),
    ("unknown function", "Reaction ~ lg(Days) + (1 | Subject)", 11, "unknown function 'lg'"),
    ("missing ~", "Reaction Days + (1 | Subject)", 29, "needs '~'"),
    ("two ~", "Reaction ~ Days ~ Subject", 16, "exactly one '~'"),
    ("empty term", "Reaction ~ Days + + (1 | Subject)", 17, "empty term"),
]


@pytest.mark.parametrize(("case", "formula", "position", "words"), SYNTAX, ids=[c[0] for c in SYNTAX])
def test_formula_syntax_errors_point_at_the_position(sleep, case, formula, position, words):
    with pytest.raises(FormulaError) as info:
        hb.lmer(formula, sleep)
    assert words in info.value.message
    assert info.value.position == position
    assert str(info.value).endswith("\n  " + formula + "\n  " + " " * position + "^")


UNKNOWN = [
    ("fixed part", "Reaction ~ Dayz + (1 | Subject)", "Dayz", "fixed effects", "Days"),
    ("bar left side", "Reaction ~ Days + (Dayz | Subject)", "Dayz", "random-effects term", "Days"),
    ("grouping factor", "Reaction ~ Days + (1 | subject)", "subject", "grouping factor", "Subject"),
    ("response", "reaction ~ Days + (1 | Subject)", "reaction", "response", "Reaction"),
]


@pytest.mark.parametrize(("case", "formula", "column", "where", "close"), UNKNOWN, ids=[c[0] for c in UNKNOWN])
def test_unknown_columns_are_named_with_suggestions(sleep, case, formula, column, where, close):
    with pytest.raises(ColumnNotFoundError) as info:
        hb.lmer(formula, sleep)
    msg = str(info.value)
    assert f"unknown column '{column}' in the {where}" in msg
    assert f"did you mean '{close}'?" in msg


def test_no_random_effects_points_to_ordinary_regression(sleep):
    with pytest.raises(FormulaError, match=r"no random-effects term such as \(1 \| group\).*ordinary regression"):
        hb.lmer("Reaction ~ Days", sleep)


# --- the response ---------------------------------------------------------------------------------------------


def test_response_not_numeric(sleep):
    with pytest.raises(DataError, match="the response 'Subject' must be numeric"):
        hb.lmer("Subject ~ Days + (1 | Subject)", sleep)


COUNTS = "to be non-negative whole-number counts; "


@pytest.mark.parametrize(
    ("family", "y", "need"),
    [
        ("bernoulli", lambda s: s["Days"] % 3, "to be 0 or 1; 54 value(s) are not, e.g. 2 (row 2)"),
        (
            "poisson",
            lambda s: s["Days"] - 2,
            COUNTS + "36 value(s) are not, e.g. -2 (row 0)",
        ),
        (
            "poisson",
            lambda s: s["Days"] + 0.5,
            COUNTS + "180 value(s) are not, e.g. 0.5 (row 0)",
        ),
        ("beta", lambda s: s["Days"] / 9, "to be strictly between 0 and 1; 36 value(s) are not, e.g. 0 (row 0)"),
    ],
    ids=["bernoulli not 0/1", "poisson negative", "poisson not whole", "beta outside (0,1)"],
)
def test_response_outside_the_family_support(sleep, family, y, need):
    with pytest.raises(DataError) as info:
        hb.Model("y ~ Days + (1 | Subject)", sleep.assign(y=y(sleep)), family=family)
    assert f"the {family} family needs the response 'y' {need}" in str(info.value)


# --- grouping factors -----------------------------------------------------------------------------------------


def test_grouping_factor_with_one_level(sleep):
    with pytest.raises(DataError, match=r"grouping factor 'lab' has only 1 level \(A\)"):
        hb.lmer("Reaction ~ Days + (1 | lab)", sleep.assign(lab="A"))


def test_as_many_levels_as_observations(sleep):
    with pytest.raises(DataError, match=r"grouping factor 'row' has as many levels \(180\) as observations \(180\)"):
        hb.lmer("Reaction ~ Days + (1 | row)", sleep.assign(row=np.arange(180)))


def test_random_slope_that_does_not_vary_within_groups_warns(sleep):
    data = sleep.assign(age=sleep["Subject"].cat.codes + 20.0)
    with pytest.warns(DesignWarning, match="random slope 'age' does not vary within any level of 'Subject'"):
        hb.Model("Reaction ~ Days + (age | Subject)", data)


# --- missing, infinite and empty values -----------------------------------------------------------------------


def dirty(sleep: pd.DataFrame) -> pd.DataFrame:
    d = sleep.assign(Days=sleep["Days"].astype(float), subj=sleep["Subject"].astype(str).astype(object))
    d.loc[[3, 4], "Reaction"] = np.nan
    d.loc[5, "Days"] = np.inf
    d.loc[7, "subj"] = ""
    return d


def test_na_inf_and_empty_strings_are_dropped_and_counted(sleep):
    with pytest.warns(DroppedRowsWarning, match=r"4 of 180 rows .* Reaction \(2\), Days \(1\), subj \(1\)"):
        fit = hb.lmer("Reaction ~ Days + (1 | subj)", dirty(sleep))
    assert fit.n_dropped == 4 and fit.nobs == 176
    assert fit.design.frame.dropped_by_column == {"Reaction": 2, "Days": 1, "subj": 1}


def test_na_action_raise(sleep):
    with pytest.raises(DataError, match=r"4 of 180 rows .*\(na_action='raise'\)"):
        hb.lmer("Reaction ~ Days + (1 | subj)", dirty(sleep), na_action="raise")


def test_categorical_level_absent_after_dropping(sleep):
    data = sleep.assign(
        phase=pd.Categorical(np.select([sleep["Days"] < 2, sleep["Days"] < 6], ["baseline", "deprived"], "late")),
        Reaction=sleep["Reaction"].where(sleep["Days"] >= 2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        with pytest.warns(DesignWarning, match=r"level\(s\) 'baseline' of 'phase' have no rows left"):
            hb.Model("Reaction ~ phase + (1 | Subject)", data)


def test_empty_after_dropping(sleep):
    with pytest.raises(DataError, match="no rows left to fit: all 180 rows"):
        hb.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=np.nan))


# --- the data frame and weights -------------------------------------------------------------------------------


def test_duplicate_column_names(sleep):
    with pytest.raises(DataError, match="duplicate column names: Days"):
        hb.lmer("Reaction ~ Days + (1 | Subject)", pd.concat([sleep, sleep[["Days"]]], axis=1))


def test_weights_of_the_wrong_length(sleep):
    with pytest.raises(DataError, match="weights has 10 values for 180 rows"):
        hb.Model("Reaction ~ Days + (1 | Subject)", sleep, weights=np.ones(10))


def test_badly_scaled_predictor_warns():
    with pytest.warns(ScalingWarning, match="'HEIGHT' take values far from zero.*centering and scaling"):
        hb.Model("TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", hb.datasets.load("grouseticks"))


# --- prediction -----------------------------------------------------------------------------------------------


def test_newdata_missing_a_column(sleep_fit, sleep):
    with pytest.raises(DataError, match=r"new data lacks column.*Days"):
        sleep_fit.predict(sleep.drop(columns="Days"))
    with pytest.raises(DataError, match="new data has no column 'Subject'"):
        sleep_fit.predict(sleep.drop(columns="Subject"))


def test_newdata_with_an_unseen_level_under_new_levels_error(sleep_fit):
    new = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "999"]})
    with pytest.raises(DataError, match=r"level\(s\) of 'Subject' not seen when fitting: 999"):
        sleep_fit.predict(new, new_levels="error")
    with pytest.raises(DataError, match=r"new levels detected in newdata.*'Subject'.*: 999.*allow_new_levels=True"):
        sleep_fit.predict(new)  # lme4's default: allow.new.levels = FALSE
    assert np.isfinite(sleep_fit.predict(new, allow_new_levels=True)).all()


# --- priors (Bayesian engine) ---------------------------------------------------------------------------------


def test_prior_naming_a_parameter_the_model_does_not_have(sleep):
    from hierbayes.bayesian.priors import Prior, describe_priors

    model = hb.Model("Reaction ~ Days + (Days | Subject)", sleep, priors={"Dayz": Prior("Normal", mu=0, sigma=1)})
    with pytest.raises(ModelError, match=r"no parameter named 'Dayz'.*valid names are: .*b\[Days\]"):
        describe_priors(model)
