"""R's formula idioms, odd column names and lme4's predict, fitted end to end and checked against R.

References: tests/reference/make_formula_reference.R -> formula_reference.json (``fits``): lme4 fits
(converged tightly) of models written with ``poly()``, ``factor()``, ``C(, contr.sum)``, ``ordered()``,
``sin(2*pi*t)``, ``offset()``, ``scale()``, ``(1 | factor(g))``, ``(1 | interaction(h, k))``,
``cbind()``, and columns named `` `my y` ``, ``class``, `` `if` ``, ``N``/``I``, ``größe``,
`` `my group` `` and ``0``/``1``/``2``; and lme4's predictions with ``re.form = NULL / NA / ~(1 | g)``
and ``allow.new.levels = TRUE``. Where lme4's ``predict`` fails (a grouping factor made by
``factor()`` or ``interaction()``, a backticked column inside ``cbind()``) the script computes the
same prediction by hand from R's fixef, ranef and model matrix.
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.refdata import REFERENCE, ROOT

REF = json.loads((REFERENCE / "formula_reference.json").read_text(encoding="utf-8"))
FITS = REF["fits"]


@cache
def idioms() -> pd.DataFrame:
    data = pd.read_csv(ROOT / REF["meta"]["data"], encoding="utf-8")
    return data.rename(columns={"0": 0, "1": 1, "2": 2})  # integer column labels, as df.columns = [0, 1, 2]


def pred_rows() -> pd.DataFrame:
    nd = pd.DataFrame(REF["meta"]["newdata_predict"])
    return nd.rename(columns={"1": 1, "2": 2})


@cache
def fitted(case_id: str):
    case = FITS[case_id]
    data = idioms()
    before = data.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case["family"] == "gaussian":
            fit = hb.lmer(case["formula"], data)
        else:
            fit = hb.glmer(case["formula"], data, family=case["family"])
    pd.testing.assert_frame_equal(data, before, check_exact=True)  # the user's frame is untouched
    return fit


@pytest.mark.parametrize("case_id", list(FITS))
def test_fit_matches_lme4(case_id: str) -> None:
    case, fit = FITS[case_id], fitted(case_id)
    # glmer's optimum is flat to ~1e-6 in the log-likelihood even converged tightly (hierbayes' is
    # 8.5e-7 higher on binomial_cbind): coefficients are compared at that precision
    tol = {"rtol": 1e-5, "atol": 1e-6} if case["family"] == "gaussian" else {"rtol": 1e-4, "atol": 5e-5}
    assert list(fit.fixef.index) == list(case["fixef"])
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(case["fixef"].values()), **tol)
    assert list(fit.theta.index) == list(case["theta"])
    np.testing.assert_allclose(fit.theta.to_numpy(), list(case["theta"].values()), rtol=1e-4, atol=1e-5)
    assert fit.loglik == pytest.approx(case["logLik"], rel=1e-7)
    assert fit.loglik >= case["logLik"] - 1e-6
    if case["family"] == "gaussian":
        assert fit.reml_criterion == pytest.approx(case["REMLcrit"], rel=1e-8)
        assert fit.sigma == pytest.approx(case["sigma"], rel=1e-5)


@pytest.mark.parametrize("case_id", list(FITS))
def test_random_effects_are_named_and_ordered_as_lme4(case_id: str) -> None:
    case, fit = FITS[case_id], fitted(case_id)
    assert list(fit.ranef) == list(case["ranef"])
    for group, ref in case["ranef"].items():
        ours = fit.ranef[group]
        assert list(ours.index) == ref["levels"]
        assert list(ours.columns) == ref["terms"]
        np.testing.assert_allclose(ours.to_numpy(), np.array(ref["values"], dtype=float), rtol=1e-3, atol=1e-4)


def _ref(values):
    return None if isinstance(values, str) else np.asarray(values, dtype=float)


@pytest.mark.parametrize("case_id", list(FITS))
def test_predictions_match_lme4(case_id: str) -> None:
    case, fit = FITS[case_id], fitted(case_id)
    pred = case["predict"]
    nd = pred_rows()
    seen = nd.iloc[:4]
    tol = {"rtol": 1e-5, "atol": 1e-5} if case["family"] == "gaussian" else {"rtol": 1e-4, "atol": 1e-4}
    for key, ours in [
        ("re_form_NA", fit.predict(nd, re_form="NA")),
        ("re_form_NULL_seen", fit.predict(seen)),
        ("re_form_NULL_new_levels", fit.predict(nd, allow_new_levels=True)),
    ]:
        ref = _ref(pred[key])
        if ref is not None:
            np.testing.assert_allclose(ours, ref, **tol, err_msg=key)
    if "by_hand_new_levels" in pred:  # lme4's predict() fails here; R's own numbers by hand
        np.testing.assert_allclose(fit.predict(nd, allow_new_levels=True), pred["by_hand_new_levels"], **tol)
        np.testing.assert_allclose(fit.predict(nd, re_form=np.nan), pred["by_hand_NA"], **tol)
    for key in [k for k in pred if k.startswith("re_form_g_")]:
        np.testing.assert_allclose(fit.predict(seen, re_form="~(1 | g)"), pred[key], **tol, err_msg=key)


# the last row of the prediction data has a new level of every grouping factor but interaction(h, k)
NEW_LEVEL_CASES = [c for c in FITS if c != "ordered_interaction_group"]


@pytest.mark.parametrize("case_id", NEW_LEVEL_CASES)
def test_new_levels_are_an_error_by_default_as_in_lme4(case_id: str) -> None:
    """lme4: "new levels detected in newdata" (or, for factor(g), model.frame's "has new levels")."""
    assert "new level" in FITS[case_id]["new_levels_error"] or "undefined columns" in FITS[case_id]["new_levels_error"]
    fit = fitted(case_id)
    with pytest.raises(hb.DataError, match="new levels detected in newdata") as info:
        fit.predict(pred_rows())
    group = next(iter(FITS[case_id]["ranef"]))
    assert f"'{group}'" in str(info.value)  # unlike lme4, the message names the factor


def test_zcp_re_form_subset_keeps_only_the_intercept() -> None:
    """(x || g) predicted with re_form = ~(1 | g): the intercept effects only (lme4's re.form)."""
    fit = fitted("sum_contrasts_zcp")
    seen = pred_rows().iloc[:4]
    full, pop, sub = fit.predict(seen), fit.predict(seen, re_form="~0"), fit.predict(seen, re_form="~(1|g)")
    b = fit.ranef["g"].loc[[str(g) for g in seen["g"]], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(sub, pop + b, rtol=1e-12)
    assert not np.allclose(sub, full)
