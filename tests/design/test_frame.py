"""The model frame: unknown columns, unusable values dropped and counted, the user's data untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.errors import ColumnNotFoundError, DataError, DesignWarning, DroppedRowsWarning, FormulaError


@pytest.fixture
def sleep() -> pd.DataFrame:
    return hb.datasets.load("sleepstudy")


# --- unknown columns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "column", "where", "suggestion", "caret"),
    [
        ("Reaction ~ Dayz + (1 | Subject)", "Dayz", "in the fixed effects", "Days", 11),
        ("Reaction ~ log(Dayz) + (1 | Subject)", "Dayz", "in the fixed effects", "Days", 15),
        ("Reaction ~ Days + (Dayz | Subject)", "Dayz", "in the random-effects term (1 + Dayz | Subject)", "Days", 19),
        ("Reaction ~ Days + (1 | Subjects)", "Subjects", "in the grouping factor of (1 | Subjects)", "Subject", 23),
        ("Reactoin ~ Days + (1 | Subject)", "Reactoin", "in the response", "Reaction", 0),
        ("reaction ~ Days + (1 | Subject)", "reaction", "in the response", "Reaction", 0),
        ("Reaction ~ Days + offset(lg) + (1 | Subject)", "lg", "in the offset", None, 25),
    ],
)
def test_unknown_column_is_named_with_suggestions(sleep, formula, column, where, suggestion, caret):
    with pytest.raises(ColumnNotFoundError) as info:
        build_design(formula, sleep)
    msg = str(info.value)
    assert msg.startswith(f"unknown column '{column}' {where}")
    if suggestion:
        assert f"did you mean '{suggestion}'?" in msg
    lines = msg.splitlines()
    assert lines[1] == "  " + formula and lines[2] == "  " + " " * caret + "^"
    assert lines[3] == "  the data has: Reaction, Days, Subject"
    assert isinstance(info.value, KeyError) and isinstance(info.value, DataError)


def test_response_must_be_numeric(sleep):
    with pytest.raises(DataError, match=r"the response 'Subject' must be numeric; it is a factor \(categorical\)"):
        build_design("Subject ~ Days + (1 | Subject)", sleep)
    with pytest.raises(DataError, match=r"the response 'name' must be numeric"):
        build_design("name ~ Days + (1 | Subject)", sleep.assign(name=sleep["Subject"].astype(str)))


def test_formula_without_response_or_random_effects(sleep):
    with pytest.raises(FormulaError, match="no response"):
        build_design("~ Days + (1 | Subject)", sleep)
    with pytest.raises(FormulaError, match=r"no random-effects term.*ordinary regression"):
        build_design("Reaction ~ Days", sleep)
    assert build_design("Reaction ~ Days", sleep, require_random=False).blocks == ()


# --- missing, infinite and empty values -----------------------------------------------------------------------


def dirty(sleep: pd.DataFrame) -> pd.DataFrame:
    d = sleep.assign(Days=sleep["Days"].astype(float), s=sleep["Subject"].astype(str).astype(object))
    d.loc[3, "Reaction"] = np.nan
    d.loc[5, "Days"] = np.inf
    d.loc[8, "Days"] = -np.inf
    d.loc[7, "s"] = "  "
    d.loc[9, "s"] = None
    d.loc[11, "unused"] = 1.0  # NA elsewhere in columns the model does not use: no effect
    return d


def test_unusable_rows_are_dropped_counted_and_reported(sleep):
    data = dirty(sleep)
    with pytest.warns(DroppedRowsWarning) as record:
        d = build_design("Reaction ~ Days + (1 | s)", data)
    msg = str(record[0].message)
    assert msg.startswith("5 of 180 rows have missing, infinite or empty values in Reaction (1), Days (2), s (2)")
    assert "fit.n_dropped" in msg
    assert d.n == 175 and d.n_dropped == 5
    assert d.frame.dropped_by_column == {"Reaction": 1, "Days": 2, "s": 2}
    assert list(d.frame.row_index[:6]) == [0, 1, 2, 4, 6, 10]


def test_warnings_point_at_the_users_line(sleep):
    with pytest.warns(DroppedRowsWarning) as record:
        hb.lmer("Reaction ~ Days + (1 | s)", dirty(sleep))
    assert record[0].filename == __file__


def test_na_action_raise(sleep):
    with pytest.raises(DataError, match=r"5 of 180 rows .* Reaction \(1\), Days \(2\), s \(2\) \(na_action='raise'\)"):
        build_design("Reaction ~ Days + (1 | s)", dirty(sleep), na_action="raise")
    with pytest.raises(DataError, match="na_action must be 'omit' or 'raise', not 'drop'"):
        build_design("Reaction ~ Days + (1 | Subject)", sleep, na_action="drop")


def test_nothing_left_after_dropping(sleep):
    with pytest.raises(DataError, match=r"no rows left to fit: all 180 rows .* \(per column: r 180\)"):
        build_design("r ~ Days + (1 | Subject)", sleep.assign(r=np.nan))
    with pytest.raises(DataError, match="the data frame has no rows"):
        build_design("Reaction ~ Days + (1 | Subject)", sleep.iloc[:0])


@pytest.mark.filterwarnings("ignore::hierbayes.errors.DroppedRowsWarning")
def test_level_absent_after_dropping_is_named(sleep):
    data = sleep.assign(
        k=pd.Categorical(np.where(sleep["Days"] < 8, "early", "late"), categories=["early", "late", "never"]),
        r=sleep["Reaction"].where(sleep["Days"] < 8),
    )
    with pytest.warns(DesignWarning, match=r"level\(s\) 'late' of 'k' have no rows left") as record:
        # one level left: R's model.matrix refuses the factor, and so do we
        with pytest.raises(DataError, match=r"'k' has only one level \(early\).*contrasts can be applied only"):
            build_design("r ~ k + (1 | Subject)", data)
    assert all("never" not in str(w.message) for w in record)  # never present: dropped silently, like R
    data = data.assign(k=data["k"].cat.add_categories("mid"))
    data.loc[data["Days"] == 0, "k"] = "mid"
    with pytest.warns(DesignWarning, match=r"level\(s\) 'late' of 'k' have no rows left"):
        d = build_design("r ~ k + (1 | Subject)", data)
    assert d.x_names == ("(Intercept)", "kmid")


@pytest.mark.filterwarnings("ignore::hierbayes.errors.DroppedRowsWarning")
def test_string_and_grouping_levels_absent_after_dropping(sleep):
    data = sleep.assign(r=sleep["Reaction"].where(sleep["Subject"] != "308"), k=sleep["Days"].map(str))
    data.loc[data["Days"] == 0, "r"] = np.nan
    with pytest.warns(DesignWarning) as record:
        build_design("r ~ k + (1 | Subject)", data)
    messages = " ".join(str(w.message) for w in record if w.category is DesignWarning)
    assert "level(s) '0' of 'k'" in messages and "level(s) '308' of 'Subject'" in messages


def test_transform_making_non_finite_values_is_named(sleep):
    with pytest.raises(
        DataError, match=r"fixed-effects column 'log\(Days\)' is not finite in 18 row\(s\) \(-inf in row 0"
    ):
        build_design("Reaction ~ log(Days) + (1 | Subject)", sleep)
    with pytest.raises(DataError, match=r"response column 'log\(y\)' is not finite in 1 row"):
        build_design(
            "log(y) ~ Days + (1 | Subject)", sleep.assign(y=sleep["Days"].clip(lower=0.0) + (sleep.index != 40))
        )


# --- the data frame itself ------------------------------------------------------------------------------------


def test_duplicate_column_names(sleep):
    data = pd.concat([sleep, sleep[["Days"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names: Days"):
        build_design("Reaction ~ Days + (1 | Subject)", data)


def test_not_a_data_frame():
    with pytest.raises(DataError, match=r"must be a pandas DataFrame.*got int"):
        build_design("y ~ x + (1 | g)", 5)


def test_dict_of_columns_is_accepted(sleep):
    d = build_design("Reaction ~ Days + (1 | Subject)", {c: sleep[c].to_numpy() for c in sleep.columns})
    assert d.n == 180


def test_weights_wrong_length_or_negative(sleep):
    with pytest.raises(DataError, match="weights has 3 values for 180 rows"):
        build_design("Reaction ~ Days + (1 | Subject)", sleep, weights=np.ones(3))
    with pytest.raises(DataError, match="weights must be non-negative; 1 are negative"):
        build_design("Reaction ~ Days + (1 | Subject)", sleep, weights=np.r_[-1.0, np.ones(179)])
    with pytest.raises(ColumnNotFoundError, match="unknown column 'wt' in the weights"):
        build_design("Reaction ~ Days + (1 | Subject)", sleep, weights="wt")


def test_the_users_data_frame_is_never_modified(sleep):
    data = dirty(sleep).assign(
        k=pd.Categorical(np.tile(["x", "y", "z"], 60), categories=["z", "y", "x", "unused"]),
        w=np.linspace(1, 2, 180),
    )
    before = data.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_design("Reaction ~ scale(Days) + k + (Days | s)", data, weights="w")
        build_design("Reaction ~ Days + (1 | k)", data, weights=np.ones(180))
    pd.testing.assert_frame_equal(data, before, check_exact=True)
    assert list(data["k"].cat.categories) == ["z", "y", "x", "unused"]


def test_dates_as_predictors_are_a_clear_error_and_fine_as_groups():
    sleep = hb.datasets.load("sleepstudy")
    dated = sleep.assign(
        date=pd.Timestamp("2020-01-01") + pd.to_timedelta(sleep.Days, unit="D"),
        lag=pd.to_timedelta(sleep.Days, unit="h"),
    )
    with pytest.raises(hb.DataError, match=r"column 'date' holds dates/times .*\.dt\.days"):
        hb.lmer("Reaction ~ date + (1 | Subject)", dated)
    with pytest.raises(hb.DataError, match="column 'lag' holds time differences"):
        hb.lmer("Reaction ~ lag + (1 | Subject)", dated)
    assert hb.lmer("Reaction ~ Days + (1 | date)", dated).ngroups == {"date": 10}
