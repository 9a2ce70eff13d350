"""Design checks after lme4: scaling of X, slopes that do not vary, level counts, aliasing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design, check_lmm_levels
from hierbayes.design.checks import check_scaling, drop_aliased
from hierbayes.errors import DataError, DesignWarning, ScalingWarning


def design_warnings(formula: str, data: pd.DataFrame) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_design(formula, data)
    return record


# --- badly scaled predictors ----------------------------------------------------------------------------------


def test_grouseticks_height_in_metres_warns():
    """Seed-style grouseticks: HEIGHT (about 400-530 m) far from zero next to the intercept."""
    grouse = hb.datasets.load("grouseticks")
    with pytest.warns(ScalingWarning) as record:
        build_design("TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", grouse)
    msg = str(record[0].message)
    assert "'HEIGHT'" in msg and "far from zero" in msg and "mean 462.2" in msg
    assert "centering and scaling" in msg and "scale(x)" in msg


@pytest.mark.parametrize("term", ["cHEIGHT", "scale(HEIGHT)", "center(HEIGHT)"])
def test_grouseticks_centred_height_does_not_warn(term):
    grouse = hb.datasets.load("grouseticks")
    record = design_warnings(f"TICKS ~ YEAR + {term} + (1 | BROOD) + (1 | LOCATION)", grouse)
    assert not [w for w in record if issubclass(w.category, ScalingWarning)]


@pytest.mark.parametrize(
    ("dataset", "formula"),
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
        ("hsb", "mathach ~ cses + (1 | school)"),
        ("hsb", "mathach ~ mean_ses * cses + sector + (cses | school)"),
        ("hsb", "mathach ~ ses + minority + sex + (1 | school)"),
    ],
)
def test_ordinary_data_does_not_warn(dataset, formula):
    record = design_warnings(formula, hb.datasets.load(dataset))
    assert [str(w.message) for w in record] == []


@pytest.mark.parametrize("factor", [1e4, 1e-4])
def test_very_different_scales_warn_like_checkScaleX(factor):
    sleep = hb.datasets.load("sleepstudy")
    with pytest.warns(ScalingWarning, match=r"very different scales \(SDs Days2: .*\)"):
        build_design("Reaction ~ Days2 + (1 | Subject)", sleep.assign(Days2=sleep["Days"] * factor))


def test_check_scaling_ignores_dummy_columns():
    X = np.column_stack([np.ones(40), np.tile([0.0, 1.0], 20), np.linspace(-1, 1, 40)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_scaling(X, ["(Intercept)", "kb", "x"])


# --- random slopes that do not vary within groups -------------------------------------------------------------


def test_slope_constant_within_every_group_warns():
    sleep = hb.datasets.load("sleepstudy")
    data = sleep.assign(age=sleep["Subject"].cat.codes * 1.5 + 20)  # one age per subject
    with pytest.warns(DesignWarning, match=r"random slope 'age' does not vary within any level of 'Subject'"):
        build_design("Reaction ~ age + (age | Subject)", data)


def test_slope_that_varies_does_not_warn():
    record = design_warnings("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    assert not [w for w in record if issubclass(w.category, DesignWarning)]


# --- level counts (lme4's checkNlevels / checkZdims, errors for LMMs) -----------------------------------------


def test_grouping_factor_with_one_level():
    sleep = hb.datasets.load("sleepstudy").assign(one="a")
    with pytest.raises(DataError, match=r"grouping factor 'one' has only 1 level \(a\).*at least two"):
        check_lmm_levels(build_design("Reaction ~ Days + (1 | one)", sleep))


def test_as_many_levels_as_observations():
    sleep = hb.datasets.load("sleepstudy")
    d = build_design("Reaction ~ Days + (1 | obs)", sleep.assign(obs=np.arange(180)))
    with pytest.raises(DataError, match=r"grouping factor 'obs' has as many levels \(180\) as observations \(180\)"):
        check_lmm_levels(d)


def test_as_many_random_effects_as_observations():
    sleep = hb.datasets.load("sleepstudy")
    two = sleep[sleep["Days"].isin([0, 9])]
    d = build_design("Reaction ~ Days + (Days | Subject)", two)
    with pytest.raises(
        DataError, match=r"observations \(36\) <= number of random effects \(36\).*\(Intercept\) \+ Days"
    ):
        check_lmm_levels(d)


# --- aliasing -------------------------------------------------------------------------------------------------


def test_drop_aliased_keeps_earlier_columns():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 30))
    X = np.column_stack([np.ones(30), a, b, a + 2 * b, np.zeros(30), 3 * a])
    assert drop_aliased(X) == [0, 1, 2]
