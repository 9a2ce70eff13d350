"""A factor response of a binomial model, as R's ``binomial()$initialize`` reads it: ``y != levels(y)[1]``.

lme4's model frame drops unused levels first, so the first level *present*
is failure and every other level success. The external suite compares whole
fits with such responses against lme4 (VerbAgg, Contraception, bacteria,
trees513); these tests pin the rules one by one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.errors import DataError, DroppedRowsWarning


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(0.3 + 0.8 * x + rng.normal(0, 0.7, 12)[g])))
    y01 = (rng.uniform(size=n) < p).astype(int)
    return pd.DataFrame({
        "y01": y01,
        "yn": np.where(y01 == 1, "Y", "N"),  # text: R's factor() levels N < Y
        "yc": pd.Categorical(np.where(y01 == 1, "yes", "no"), categories=["unused", "yes", "no"]),
        "yb": y01 == 1,
        "x": x,
        "g": g,
    })  # fmt: skip


def design(formula: str, data: pd.DataFrame, binary: bool = True):
    return build_design(formula, data, binary_response=binary)


def test_text_response_is_not_first_level(frame):
    d = design("yn ~ x + (1 | g)", frame)
    assert d.response_levels == ("N", "Y")
    np.testing.assert_array_equal(d.y, frame["y01"].to_numpy(dtype=float))


def test_categorical_first_present_level_is_failure(frame):
    """Categories (unused, yes, no): 'unused' has no rows, so 'yes' is failure, as lme4 (drop.unused.levels)."""
    d = design("yc ~ x + (1 | g)", frame)
    assert d.response_levels == ("yes", "no")
    np.testing.assert_array_equal(d.y, 1.0 - frame["y01"].to_numpy(dtype=float))


def test_logical_response_is_zero_one(frame):
    d = design("yb ~ x + (1 | g)", frame)
    assert d.response_levels == ()
    np.testing.assert_array_equal(d.y, frame["y01"].to_numpy(dtype=float))


def test_factor_calls_in_the_response(frame):
    assert design("factor(yn) ~ x + (1 | g)", frame).response_levels == ("N", "Y")
    releveled = design('relevel(factor(yn), "Y") ~ x + (1 | g)', frame)
    assert releveled.response_levels == ("Y", "N")
    np.testing.assert_array_equal(releveled.y, 1.0 - frame["y01"].to_numpy(dtype=float))
    more = design("factor(yn, levels = c('Y', 'N', 'Z')) ~ x + (1 | g)", frame)
    assert more.response_levels == ("Y", "N")


@pytest.mark.filterwarnings("ignore:level\\(s\\) 'a' of 'yc3' have no rows left")
def test_levels_are_those_of_the_complete_rows(frame):
    """Rows dropped for a missing x take their levels with them: the first level left is failure."""
    df = frame.copy()
    df["yc3"] = pd.Categorical(np.where(df["y01"] == 1, "b", "c"), categories=["a", "b", "c"])
    df.loc[0, "yc3"] = "a"
    df.loc[0, "x"] = np.nan
    with pytest.warns(DroppedRowsWarning):
        d = design("yc3 ~ x + (1 | g)", df)
    assert d.response_levels == ("b", "c")
    np.testing.assert_array_equal(d.y, 1.0 - df["y01"].to_numpy(dtype=float)[1:])


def test_more_than_two_levels_all_others_are_success():
    df = pd.DataFrame({"y": list("abcabcabca") * 3, "g": np.repeat(np.arange(5), 6)})
    d = design("y ~ 1 + (1 | g)", df)
    assert d.response_levels == ("a", "b", "c")
    np.testing.assert_array_equal(d.y, (df["y"] != "a").to_numpy(dtype=float))


@pytest.mark.parametrize("family", ["binomial", "bernoulli"])
def test_glmer_fit_equals_the_zero_one_fit(frame, family):
    before = frame.copy(deep=True)
    numeric = hb.glmer("y01 ~ x + (1 | g)", frame, family=family)
    for response in ("yn", "factor(yn)", "yb"):
        fit = hb.glmer(f"{response} ~ x + (1 | g)", frame, family=family)
        np.testing.assert_allclose(fit.fixef.to_numpy(), numeric.fixef.to_numpy(), rtol=1e-10)
        assert fit.loglik == pytest.approx(numeric.loglik, rel=1e-12)
    flipped = hb.glmer("yc ~ x + (1 | g)", frame, family=family)
    np.testing.assert_allclose(flipped.fixef.to_numpy(), -numeric.fixef.to_numpy(), rtol=1e-6)
    pd.testing.assert_frame_equal(frame, before)


def test_bayesian_model_reads_the_same_response(frame):
    """hb.bayes builds its likelihood from design.y: the factor is 0/1 there too (no sampling here)."""
    model = hb.Model("yn ~ x + (1 | g)", frame, family="bernoulli")
    np.testing.assert_array_equal(model.design.y, frame["y01"].to_numpy(dtype=float))


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda d: hb.lmer("yn ~ x + (1 | g)", d), "it is text"),
        (lambda d: hb.lmer("yc ~ x + (1 | g)", d), "must be numeric"),
        (lambda d: hb.glmer("yn ~ x + (1 | g)", d, family="poisson"), "family='binomial' or 'bernoulli'"),
        (lambda d: hb.lmer("factor(yn) ~ x + (1 | g)", d), "it is a factor"),
    ],
)
def test_a_factor_response_elsewhere_is_an_error_with_a_hint(frame, call, words):
    with pytest.raises(DataError, match="must be numeric") as info:
        call(frame)
    assert words in str(info.value)
    assert "'binomial'" in str(info.value)


def test_values_outside_the_given_levels_are_an_error(frame):
    with pytest.raises(DataError, match="not among its levels"):
        design("factor(yn, levels = 'Y') ~ x + (1 | g)", frame)
