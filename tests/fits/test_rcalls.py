"""lme4's calls on a fit under lme4's names: getME, update, refit, ngrps.

References: tests/reference/rcalls_reference.json, made by tests/reference/make_rcalls.R
(lme4 1.1-31, tightly converged fits).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.formula.update import update_formula
from tests.refdata import reference

REF = reference("rcalls")
TIGHT = {"ftol_abs": 1e-14, "ftol_rel": 1e-14, "xtol_abs": 1e-12, "xtol_rel": 1e-12, "maxeval": 100000}


def _lmer(formula, data, **kw):
    return hb.lmer(formula, data, control=hb.lmerControl(optCtrl=TIGHT), **kw)


@pytest.fixture(scope="module")
def fits():
    ss = hb.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "sleepstudy": _lmer("Reaction ~ Days + (Days | Subject)", ss),
            "sleepstudy_double": _lmer("Reaction ~ Days + (Days || Subject)", ss),
            "penicillin": _lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", hb.datasets.load("penicillin")),
            "cbpp": hb.glmer(
                "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                hb.datasets.load("cbpp"),
                family="binomial",
                control=hb.glmerControl(optimizer="bobyqa", optCtrl={"rhoend": 1e-12, "maxfun": 100000}),
            ),
        }


@pytest.mark.parametrize("case", ["sleepstudy", "sleepstudy_double", "penicillin", "cbpp"])
def test_getme_matches_lme4(fits, case):
    fit, ref = fits[case], REF["getme"][case]
    # cbpp: hierbayes' optimum is lower than tightly converged glmer's (-2 logLik 184.05256 against 184.05313;
    # theta 0.64226 against 0.64206), so estimates agree to 1e-3; the layout checks are exact for every case
    rtol = 1e-3 if case == "cbpp" else 1e-5
    Z = fit.getME("Z")
    assert list(Z.shape) == ref["Z_dim"]
    np.testing.assert_allclose(np.asarray(Z.sum(axis=0)).ravel(), ref["Z_colsums"], rtol=1e-12)
    # which rows feed each column, in lme4's column order
    np.testing.assert_allclose(Z.T @ np.arange(1, Z.shape[0] + 1), ref["Z_rowindex"], rtol=1e-12)
    lam = fit.getME("Lambda").toarray()
    column_major = lam.ravel(order="F")
    np.testing.assert_allclose(column_major[column_major != 0], ref["Lambda_x"], rtol=rtol)
    np.testing.assert_allclose(fit.getME("b"), ref["b"], rtol=rtol, atol=rtol * np.max(np.abs(ref["b"])))
    assert fit.getME("Gp").tolist() == ref["Gp"]
    for name in ("l_i", "q_i", "m_i"):
        assert list(fit.getME(name)) == ref[name], name
    assert fit.getME("n_rtrms") == ref["n_rtrms"]
    assert fit.getME("n_rfacs") == ref["n_rfacs"]
    assert fit.getME("q") == ref["q"] and fit.getME("N") == ref["N"]
    assert fit.getME("REML") == ref["REML"]
    cnms = fit.getME("cnms")
    assert [name.split(".")[0] for name in cnms] == ref["cnms_names"]  # lme4 repeats a name; VarCorr's are unique
    assert list(cnms.values()) == [ref["cnms"][k] for k in ref["cnms"]]
    for group, levels in ref["flist_levels"].items():
        assert list(fit.getME("flist")[group].cat.categories) == levels
    np.testing.assert_allclose(fit.getME("theta").to_numpy(), list(ref["theta"].values()), rtol=rtol)


def test_getme_pieces_rebuild_the_fit(fits):
    for fit in fits.values():
        eta = fit.getME("X") @ fit.getME("beta") + fit.getME("Z") @ fit.getME("b")
        assert np.allclose(fit.getME("Lambdat").toarray(), fit.getME("Lambda").toarray().T)
        if isinstance(fit, hb.fits.LmerFit):
            np.testing.assert_allclose(eta, fit.fitted, rtol=1e-10)
    fit = fits["sleepstudy"]
    assert fit.ngrps == {"Subject": 18}
    assert set(fit.getME(["X", "y"])) == {"X", "y"}
    assert fit.getME("is_REML") is True and fit.getME("sigma") == pytest.approx(fit.sigma)


def test_getme_unknown_names_are_errors(fits):
    with pytest.raises(hb.ArgumentError, match="internals are not exposed"):
        fits["sleepstudy"].getME("RX")
    with pytest.raises(hb.ArgumentError, match="valid: X, Z"):
        fits["sleepstudy"].getME("Zeta")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"formula": ". ~ . - Days"}, "drop_days"),
        ({"formula": ". ~ . - (Days | Subject) + (1 | Subject)", "REML": False}, "intercept_ml"),
        ({"subset": "Days > 1"}, "subset"),
    ],
)
def test_update_matches_lme4(fits, change, key):
    ref = REF["update"][key]
    new = fits["sleepstudy"].update(**change)
    assert new.nobs == ref["nobs"]
    assert new.objective == pytest.approx(ref["criterion"], rel=1e-10)
    np.testing.assert_allclose(new.fixef.to_numpy(), list(ref["beta"].values()), rtol=1e-6)
    assert new.reml == ("REML" not in change)


def test_update_glmer_keeps_family_and_changes_nagq(fits):
    ref = REF["update"]["glmer_nagq5"]
    new = fits["cbpp"].update(nAGQ=5)
    assert new.nAGQ == 5 and new.family.name == "binomial"
    assert new.loglik == pytest.approx(ref["logLik"], rel=1e-7)
    np.testing.assert_allclose(new.fixef.to_numpy(), list(ref["beta"].values()), rtol=1e-5)


def test_refit_matches_lme4(fits):
    """The refit equals lmer on the new response (lme4's refit stores a wrong REMLcrit: see make_rcalls.R)."""
    ref = REF["refit"]
    new = fits["sleepstudy"].refit(np.array(ref["newresp"]))
    assert new.objective == pytest.approx(ref["sleepstudy"]["criterion"], rel=1e-10)
    np.testing.assert_allclose(new.fixef.to_numpy(), list(ref["sleepstudy"]["beta"].values()), rtol=1e-6)
    np.testing.assert_allclose(new.theta.to_numpy(), list(ref["sleepstudy"]["theta"].values()), rtol=1e-5)
    assert new.formula == fits["sleepstudy"].formula


def test_refit_and_update_errors_name_the_problem(fits):
    fit = fits["sleepstudy"]
    with pytest.raises(hb.DataError, match="10 values; the fitted model has 180 rows"):
        fit.refit(np.ones(10))
    with pytest.raises(hb.DataError, match="position 3"):
        fit.refit(np.r_[np.ones(3), np.nan, np.ones(176)])
    with pytest.raises(hb.ArgumentError, match="'foo'"):
        fit.update(foo=1)
    with pytest.raises(hb.FormulaError, match="not in the formula"):
        fit.update(". ~ . - (1 | Subject)")
    w = np.linspace(0.5, 2, 180)
    weighted = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"), weights=w)
    with pytest.raises(hb.ArgumentError, match="weights= was given as numbers"):
        weighted.update(data=hb.datasets.load("sleepstudy").head(100))


def test_refit_of_a_binomial_glmer_keeps_trials(fits):
    fit = fits["cbpp"]
    new = fit.refit(fit.design.y)
    np.testing.assert_allclose(new.fixef.to_numpy(), fit.fixef.to_numpy(), rtol=1e-5)


def test_user_frame_untouched_by_update():
    ss = hb.datasets.load("sleepstudy")
    before = ss.copy()
    fit = hb.lmer("Reaction ~ Days + (1 | Subject)", ss)
    fit.update(data=ss, subset="Days > 3")
    pd.testing.assert_frame_equal(ss, before)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("y ~ x + (x | g)", ". ~ . - x", "y ~ x + (x | g) - x"),
        ("y ~ x + (x | g)", "~ . + z", "y ~ x + (x | g) + z"),
        ("y ~ x + (x | g)", "log(.) ~ .", "log(y) ~ x + (x | g)"),
        ("y ~ x", "z ~ a - .", "z ~ a - (x)"),
        ("y ~ `a.b` + x.1", ". ~ . + z", "y ~ `a.b` + x.1 + z"),
        ("y ~ x + (x|g)", ". ~ . - ( x | g ) + (1 | g)", "y ~ x + (1 | g)"),
        ("y ~ (1 | g)", ". ~ . - (1|g)", "y ~ 1"),
        ("y ~ x", "w ~ q", "w ~ q"),
    ],
)
def test_update_formula(old, new, expected):
    assert update_formula(old, new) == expected


def test_update_formula_errors():
    with pytest.raises(hb.FormulaError, match="exactly one '~'"):
        update_formula("y ~ x", ". - z")
    with pytest.raises(hb.FormulaError, match="not in the formula"):
        update_formula("y ~ x + (1 | g)", ". ~ . - (1 | h)")
