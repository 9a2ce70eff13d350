"""lme4's ``offset=`` argument: a column, an expression of columns or numbers, added to ``offset()`` terms.

lme4 evaluates ``offset =`` in the data, as it does ``weights =``, and adds it to
the formula's offsets. The external suite fits mlmRev's Mmmec with
``offset = log(expected)`` against lme4; tests/reml and tests/glmm compare the
lmer and glmer fits with R (``make_finish15_reference.R``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.errors import ArgumentError, DataError, DroppedRowsWarning


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 90
    g = np.repeat(np.arange(9), 10)
    expo = rng.uniform(0.5, 4.0, n)
    x = rng.normal(size=n)
    y = rng.poisson(expo * np.exp(0.2 + 0.5 * x + rng.normal(0, 0.4, 9)[g]))
    return pd.DataFrame({"y": y, "x": x, "expo": expo, "g": g, "my expo": expo})


def test_every_spelling_gives_the_same_offset(counts):
    want = np.log(counts["expo"].to_numpy())
    for offset in ("log(expo)", np.log(counts["expo"]), want, list(want), "log(`my expo`)"):
        d = build_design("y ~ x + (1 | g)", counts, offset=offset)
        np.testing.assert_allclose(d.offset, want, rtol=1e-15)
    d = build_design("y ~ x + (1 | g)", counts.assign(lo=want), offset="lo")
    np.testing.assert_allclose(d.offset, want)


def test_argument_and_formula_offsets_add_up(counts):
    d = build_design("y ~ x + (1 | g) + offset(log(expo))", counts, offset="2 * x")
    np.testing.assert_allclose(d.offset, np.log(counts["expo"]) + 2 * counts["x"])


def test_glmer_offset_argument_equals_offset_term(counts):
    before = counts.copy(deep=True)
    term = hb.glmer("y ~ x + (1 | g) + offset(log(expo))", counts, family="poisson")
    for offset in ("log(expo)", np.log(counts["expo"].to_numpy())):
        arg = hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offset=offset)
        np.testing.assert_allclose(arg.fixef.to_numpy(), term.fixef.to_numpy(), rtol=1e-9)
        assert arg.loglik == pytest.approx(term.loglik, rel=1e-12)
        np.testing.assert_allclose(arg.fitted, term.fitted, rtol=1e-9)
    pd.testing.assert_frame_equal(counts, before)


def test_new_data_replays_an_offset_given_by_expression(counts):
    fit = hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offset="log(expo)")
    new = counts.head(5).assign(expo=[1.0, 2.0, 3.0, 4.0, 5.0])
    eta = fit.predict(new)
    base = fit.predict(new.assign(expo=1.0))
    np.testing.assert_allclose(eta - base, np.log(new["expo"]), rtol=1e-12)


def test_new_data_cannot_supply_an_offset_given_as_numbers(counts):
    fit = hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offset=np.log(counts["expo"]))
    np.testing.assert_allclose(fit.predict(), fit.predict(re_form=None))  # the fitting rows: fine
    with pytest.raises(DataError, match=r"offset was given as numbers .* new data cannot supply it"):
        fit.predict(counts.head(3))


def test_subset_selects_the_offset_rows(counts):
    mask = counts["x"] > -0.5
    whole = np.log(counts["expo"].to_numpy())
    fit = hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offset=whole, subset=mask)
    ref = hb.glmer("y ~ x + (1 | g)", counts[mask], family="poisson", offset=whole[mask.to_numpy()])
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-10)


def test_missing_offset_values_drop_their_rows(counts):
    off = np.log(counts["expo"].to_numpy())
    off[[3, 7]] = np.nan
    with pytest.warns(DroppedRowsWarning, match="2"):
        d = build_design("y ~ x + (1 | g)", counts, offset=off)
    assert d.n == len(counts) - 2


def test_lmer_offset_argument_is_a_known_term():
    sleep = hb.datasets.load("sleepstudy")
    arg = hb.lmer("Reaction ~ Days + (Days | Subject)", sleep, offset="10 * Days")
    term = hb.lmer("Reaction ~ Days + (Days | Subject) + offset(10 * Days)", sleep)
    np.testing.assert_allclose(arg.fixef.to_numpy(), term.fixef.to_numpy(), rtol=1e-10)
    assert arg.fixef["Days"] == pytest.approx(hb.lmer("Reaction ~ Days + (Days | Subject)", sleep).fixef["Days"] - 10)


@pytest.mark.parametrize(
    ("offset", "error", "words"),
    [
        ("nope", DataError, "unknown column 'nope' in the offset"),
        ("log(nope)", DataError, "unknown column 'nope'"),
        (np.ones(3), DataError, "offset has 3 values for 90 rows"),
        ([1, "a"], DataError, "offset must be numbers"),
        (2.0, DataError, "offset must be numbers"),
        ({"a": 1}, DataError, "offset must be numbers"),
        (np.r_[np.inf, np.zeros(89)], DataError, "offset must be finite"),
    ],
)
def test_bad_offsets_are_named(counts, offset, error, words):
    with pytest.raises(error, match="offset") as info:
        hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offset=offset)
    assert words in str(info.value)


def test_offset_is_an_lme4_argument_of_every_entry_point(counts):
    with pytest.raises(ArgumentError, match="did you mean 'offset'"):
        hb.glmer("y ~ x + (1 | g)", counts, family="poisson", offest="log(expo)")


# --- against R (tests/reference/make_issue15_extra.R) ---------------------------------------------------------


def _ref(case: str) -> dict:
    import json

    from tests.refdata import REFERENCE

    with open(REFERENCE / "issue15_extra_reference.json") as fh:
        return json.load(fh)["offset"][case]


def _compare(fit, ref: dict, crit: float) -> None:
    assert crit == pytest.approx(ref["criterion"], rel=1e-8)
    np.testing.assert_allclose(fit.fixef[list(ref["fixef"])].to_numpy(), list(ref["fixef"].values()), rtol=2e-6)
    np.testing.assert_allclose(fit.theta.to_numpy(), list(ref["theta"].values()), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fit.fitted)[:6], ref["fitted_head"], rtol=1e-6)


def test_lmer_offset_argument_matches_lme4():
    sleep = hb.datasets.load("sleepstudy")
    numbers = hb.lmer("Reaction ~ Days + (Days | Subject)", sleep, offset=10 * sleep["Days"].to_numpy())
    _compare(numbers, _ref("lmer_numbers"), numbers.reml_criterion)
    both = hb.lmer("Reaction ~ Days + (Days | Subject) + offset(5 * Days)", sleep, offset="Days^2")
    _compare(both, _ref("lmer_both"), both.reml_criterion)


def test_glmer_offset_argument_matches_lme4():
    from tests.refdata import ROOT

    d = pd.read_csv(ROOT / "tests/reference/data/issue15extra_counts.csv")
    expr = hb.glmer("y ~ x + (1 | g)", d, family="poisson", offset="log(expo)")
    _compare(expr, _ref("glmer_expression"), -2 * expr.loglik)
    both = hb.glmer("y ~ x + (1 | g) + offset(0.5 * log(expo))", d, family="poisson", offset=0.5 * np.log(d["expo"]))
    _compare(both, _ref("glmer_both"), -2 * both.loglik)
