"""Predictions that never lie and never change the fit (issue 15), for every engine's predict.

* new data is read as the types seen when fitting: int and str codes of one factor, categorical and
  object, int and float give the same predictions; a value matching no level is a new level, never
  another level;
* new levels of a grouping factor: lme4's error naming the factor and the levels, unless
  ``allow_new_levels=True`` (then that factor's effect is zero, the others are kept);
* a failed predict leaves the fit exactly as it was;
* grouping values that print the same but differ in type are an error when fitting;
* newdata that is a string, a list or has zero rows: a clear error or an empty result;
* lme4's ``re_form`` spellings.

LmerFit and GlmerFit are fitted here; PosteriorFit shares the encoding (design/newdata.py) and is
checked through the function its predict calls.
"""

from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.bayesian.predict import encode_rows as posterior_encode_rows
from hierbayes.errors import DataError, FormulaError
from hierbayes.fits.posterior import PosteriorFit

rng = np.random.default_rng(2026)
N = 120
DATA = pd.DataFrame(
    {
        "y": rng.normal(10, 1, N),
        "x": np.round(rng.uniform(0, 4, N), 2),
        "dose": np.tile([1, 2, 3], N // 3),  # int codes used as a factor
        "site": np.tile(["n", "s", "e", "w"], N // 4),  # text
        "late": np.tile([True, False], N // 2),
        "subj": np.repeat(np.arange(1, 13), 10),  # int grouping codes
        "rater": np.tile(["r1", "r2", "r3", "r4", "r5"], N // 5),
    }
)
DATA["y"] += DATA["dose"] * 0.5 + DATA["late"] * 0.3 + rng.normal(0, 1, 12)[DATA["subj"] - 1]
FORMULA = "y ~ scale(x) + poly(x, 2) + factor(dose) + site + late + (1 | subj) + (1 | rater)"


@pytest.fixture(scope="module")
def fit():
    before = DATA.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.lmer(FORMULA, DATA)
    pd.testing.assert_frame_equal(DATA, before, check_exact=True)
    return fit


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return DATA.iloc[[0, 13, 26, 39, 52, 65]].reset_index(drop=True)


# --- types of new data ------------------------------------------------------------------------------------------

COERCIONS = {
    "dose as str": lambda d: d.assign(dose=d["dose"].astype(str)),
    "dose as float": lambda d: d.assign(dose=d["dose"].astype(float)),
    "dose as categorical": lambda d: d.assign(dose=pd.Categorical(d["dose"], categories=[3, 2, 1])),
    "dose as str categorical": lambda d: d.assign(dose=pd.Categorical(d["dose"].astype(str))),
    "site as categorical": lambda d: d.assign(site=pd.Categorical(d["site"], categories=["w", "s", "n", "e", "x"])),
    "site as object": lambda d: d.assign(site=d["site"].astype(object)),
    "late as str": lambda d: d.assign(late=d["late"].map({True: "TRUE", False: "FALSE"})),
    "late as int": lambda d: d.assign(late=d["late"].astype(int)),
    "x as int-valued object": lambda d: d.assign(x=d["x"].astype(object)),
    "x as str": lambda d: d.assign(x=d["x"].astype(str)),
    "subj as str": lambda d: d.assign(subj=d["subj"].astype(str)),
    "subj as float": lambda d: d.assign(subj=d["subj"].astype(float)),
    "subj as categorical": lambda d: d.assign(subj=pd.Categorical(d["subj"], categories=sorted(d["subj"])[::-1])),
    "rater as categorical": lambda d: d.assign(rater=pd.Categorical(d["rater"])),
    "one row as a dict": None,
}


@pytest.mark.parametrize("case", list(COERCIONS))
def test_new_data_is_read_as_the_fitting_types(fit, rows, case: str) -> None:
    expected = fit.predict(rows)
    if COERCIONS[case] is None:
        one = {c: rows[c].iloc[2] for c in rows.columns}
        np.testing.assert_allclose(fit.predict(one), expected[2:3], rtol=1e-12)
        return
    new = COERCIONS[case](rows)
    before = new.copy(deep=True)
    np.testing.assert_allclose(fit.predict(new), expected, rtol=1e-12)
    pd.testing.assert_frame_equal(new, before, check_exact=True)


def test_fit_with_text_codes_predicts_from_int_codes() -> None:
    data = DATA.assign(dose=DATA["dose"].astype(str), subj=DATA["subj"].astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.lmer("y ~ dose + (1 | subj)", data)
    rows = data.iloc[[0, 11, 25]]
    np.testing.assert_allclose(
        fit.predict(rows.assign(dose=rows["dose"].astype(int), subj=rows["subj"].astype(int))), fit.predict(rows)
    )


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"dose": 7}, r"'factor\(dose\)' in new data has level\(s\) 7 not seen when fitting.*known levels: 1, 2, 3"),
        ({"dose": "1.5"}, r"'factor\(dose\)' in new data has level\(s\) 1.5 not seen"),
        ({"site": "north"}, r"column 'site' in new data has level\(s\) north not seen when fitting"),
        ({"site": 1}, r"column 'site' in new data has level\(s\) 1 not seen"),
        ({"x": "abc"}, r"column 'x' in new data has value\(s\) 'abc' that are not numbers"),
        ({"late": "maybe"}, r"column 'late' in new data has value\(s\) 'maybe' that are not TRUE or FALSE"),
    ],
)
def test_a_value_matching_no_level_is_never_another_level(fit, rows, change, pattern) -> None:
    with pytest.raises(DataError, match=pattern):
        fit.predict(rows.assign(**change))


# --- new levels of grouping factors -----------------------------------------------------------------------------


def test_new_grouping_levels_are_lme4s_error_by_default(fit, rows) -> None:
    new = rows.assign(subj=[1, 99, 2, 98, 3, 99])
    with pytest.raises(DataError, match=r"new levels detected in newdata.*'subj'.*: 99, 98.*allow_new_levels=True"):
        fit.predict(new)
    with pytest.raises(DataError, match="'subj'"):
        fit.predict(new, new_levels="error")


def test_allow_new_levels_predicts_that_factor_at_the_population_level(fit, rows) -> None:
    new = rows.assign(subj=[1, 99, 2, 98, 3, 99])
    p = fit.predict(new, allow_new_levels=True)
    no_subj = fit.predict(new, re_form="~(1 | rater)")  # the rater effects are kept
    seen = np.array([True, False, True, False, True, False])
    np.testing.assert_allclose(p[~seen], no_subj[~seen], rtol=1e-12)
    np.testing.assert_allclose(p[seen], fit.predict(new[seen]), rtol=1e-12)
    np.testing.assert_allclose(fit.predict(new, new_levels="population"), p)


def test_glmer_predict_new_levels_and_types() -> None:
    cbpp = hb.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    rows = cbpp.iloc[:4]
    as_text = rows.assign(herd=rows["herd"].astype(str).astype(object), period=rows["period"].astype(str))
    np.testing.assert_allclose(fit.predict(as_text), fit.predict(rows), rtol=1e-12)
    as_int = rows.assign(herd=rows["herd"].astype(int), period=rows["period"].astype(int))
    np.testing.assert_allclose(fit.predict(as_int), fit.predict(rows), rtol=1e-12)
    with pytest.raises(DataError, match=r"new levels detected in newdata.*'herd'"):
        fit.predict(rows.assign(herd="99"))
    pop = fit.predict(rows, re_form="NA")
    np.testing.assert_allclose(fit.predict(rows.assign(herd="99"), allow_new_levels=True), pop, rtol=1e-12)
    assert len(fit.predict(rows.iloc[:0])) == 0


# --- a failed predict changes nothing ---------------------------------------------------------------------------


def _state(fit):
    d = fit.design
    specs = [d.fixed_spec, *[s for b in d.blocks for s in b.specs]]
    return copy.deepcopy([(s.encoder_state, s.transform_state) for s in specs]), copy.deepcopy(d.offset_code)


BAD_NEWDATA = [
    lambda r: r.assign(x="abc"),
    lambda r: r.assign(late="maybe"),
    lambda r: r.assign(late="TRUE"),  # valid (read as TRUE), between failures
    lambda r: r.assign(dose=9),
    lambda r: r.assign(site=3),
    lambda r: r.assign(subj=999),
    lambda r: r.drop(columns="x"),
    lambda r: r.drop(columns="subj"),
    lambda r: "rows",
    lambda r: [1, 2, 3],
    lambda r: r.assign(x=r["x"].astype(object).where(r.index > 0, "1,5")),
]


def test_a_failed_predict_leaves_the_fit_exactly_as_it_was(fit, rows) -> None:
    before = fit.predict(rows)
    fitted = fit.fitted.copy()
    state = _state(fit)
    for make in BAD_NEWDATA:
        new = make(rows)
        copied = new.copy(deep=True) if isinstance(new, pd.DataFrame) else None
        try:
            fit.predict(new)
        except hb.HierbayesError:
            pass
        if copied is not None:
            pd.testing.assert_frame_equal(new, copied, check_exact=True)  # nor the user's new data
        np.testing.assert_array_equal(fit.predict(rows), before)
    for bad_re_form in ["~(1 | nobody)", 5, "~ (x | subj)"]:
        with pytest.raises(hb.HierbayesError):
            fit.predict(rows, re_form=bad_re_form)
    assert _state(fit) == state
    np.testing.assert_array_equal(fit.fitted, fitted)


# --- grouping values that print the same ------------------------------------------------------------------------


def test_grouping_values_printing_the_same_but_of_different_types_are_an_error_when_fitting() -> None:
    data = DATA.assign(subj=DATA["subj"].astype(object))
    data.loc[data["subj"] == 2, "subj"] = "2"
    data.loc[0, "subj"] = 2
    with pytest.raises(DataError, match=r"'subj' has values that print the same but differ in type: 2 \(int\) and '2'"):
        hb.lmer("y ~ x + (1 | subj)", data)
    floats_and_ints = DATA.assign(subj=DATA["subj"].astype(object))
    floats_and_ints.loc[0, "subj"] = 1.0  # 1.0 == 1: one value, as in R
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert hb.lmer("y ~ x + (1 | subj)", floats_and_ints).design.blocks[0].nlevels == 12


# --- what newdata can be ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["rows", ["a", "b"], np.zeros((3, 2)), 5, 2.5, None.__class__])
def test_newdata_that_is_not_a_frame_is_a_clear_error(fit, bad) -> None:
    with pytest.raises(DataError, match="newdata must be a pandas DataFrame"):
        fit.predict(bad)


def test_zero_rows_give_an_empty_result(fit, rows) -> None:
    assert fit.predict(rows.iloc[:0]).shape == (0,)
    assert fit.predict(rows.iloc[:0], re_form="~0").shape == (0,)
    assert fit.predict({c: [] for c in rows.columns}).shape == (0,)


def test_rows_with_missing_values_predict_nan(fit, rows) -> None:
    new = rows.assign(x=rows["x"].where(rows.index != 1), site=rows["site"].where(rows.index != 2, " "))
    p = fit.predict(new)
    assert np.isnan(p[[1, 2]]).all() and np.isfinite(p[[0, 3, 4, 5]]).all()


def test_a_series_is_one_row(fit, rows) -> None:
    np.testing.assert_allclose(fit.predict(rows.iloc[3]), fit.predict(rows)[3:4])


# --- re_form ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["NA", np.nan, float("nan"), pd.NA, "~0", "~ 0", " ~0 ", "0", "~1", "~ -1"])
def test_re_form_spellings_for_no_random_effects(fit, rows, spelling) -> None:
    np.testing.assert_allclose(fit.predict(rows, re_form=spelling), fit.design.fixed_matrix(rows) @ fit.fixef)


@pytest.mark.parametrize("spelling", ["~(1|subj)", "~ (1 | subj)", "(1 | subj)", "~ x + (1 | subj)"])
def test_re_form_with_a_subset_of_the_bars(fit, rows, spelling) -> None:
    pop = fit.predict(rows, re_form="~0")
    b = fit.ranef["subj"].loc[[str(s) for s in rows["subj"]], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(fit.predict(rows, re_form=spelling), pop + b, rtol=1e-12)


def test_re_form_none_and_all_bars_are_the_same(fit, rows) -> None:
    np.testing.assert_allclose(fit.predict(rows, re_form="~(1 | subj) + (1 | rater)"), fit.predict(rows))
    np.testing.assert_allclose(fit.predict(rows, re_form=None), fit.predict(rows))


def test_re_form_naming_what_the_model_lacks(fit, rows) -> None:
    with pytest.raises(FormulaError, match=r"grouping factors specified in re_form that were not present.*nobody"):
        fit.predict(rows, re_form="~(1 | nobody)")
    with pytest.raises(FormulaError, match=r"random effects specified in re_form that were not present.*: x"):
        fit.predict(rows, re_form="~(0 + x | subj)")
    with pytest.raises(DataError, match="re_form must be None"):
        fit.predict(rows, re_form=0)


def test_re_form_without_the_grouping_columns(fit, rows) -> None:
    """Population-level predictions need no grouping column (lme4's re.form = NA)."""
    p = fit.predict(rows.drop(columns=["subj", "rater"]), re_form="NA")
    np.testing.assert_allclose(p, fit.predict(rows, re_form="NA"))
    with pytest.raises(DataError, match=r"new data has no column 'subj'.*re_form='~0'"):
        fit.predict(rows.drop(columns="subj"))


# --- every engine ---------------------------------------------------------------------------------------------


def test_every_predict_takes_lme4s_arguments() -> None:
    for cls in (hb.fits.LmerFit, hb.fits.GlmerFit, PosteriorFit):
        params = inspect.signature(cls.predict).parameters
        assert "allow_new_levels" in params and "re_form" in params and params["new_levels"].default is None


def test_posterior_predict_encoding_shares_the_policy(fit, rows) -> None:
    """PosteriorFit.predict encodes through the same function: error by default, population, or sample."""
    new = rows.assign(subj=[1, 99, 2, 98, 3, 99])
    with pytest.raises(DataError, match=r"new levels detected.*'subj'.*or 'sample'"):
        posterior_encode_rows(fit.design, new, None)
    pop = posterior_encode_rows(fit.design, new, None, "population")
    codes = pop.blocks[[b.group for b in fit.design.blocks].index("subj")][0]
    assert list(codes < 0) == [False, True, False, True, False, True]
    sample = posterior_encode_rows(fit.design, new, None, "sample")
    codes = sample.blocks[[b.group for b in fit.design.blocks].index("subj")][0]
    assert codes[1] == codes[5] != codes[3] and sample.sample_new
    np.testing.assert_array_equal(posterior_encode_rows(fit.design, COERCIONS["subj as str"](rows), None).X, pop.X)
