"""lme4's arguments, spelled lme4's way (issue 15): REML, control/optimizer, start, subset, na_action,
devFunOnly, verbose, and one clear error for an unknown keyword.

R numbers: tests/reference/lme4args_reference.json (make_lme4args_reference.R).
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, EstimationError
from tests.refdata import REFERENCE, ROOT

REF = pd.read_json(REFERENCE / "lme4args_reference.json", typ="series")
SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture
def sleep() -> pd.DataFrame:
    return hb.datasets.load("sleepstudy")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return fn(*args, **kwargs)


def _v(d: dict) -> np.ndarray:
    return np.array(list(d.values()), dtype=float)


# --- REML ---------------------------------------------------------------------------------------
def test_REML_is_lme4s_name_for_reml(sleep) -> None:
    ml = hb.lmer(SLEEP, sleep, REML=False)
    assert ml.method == "ml" and ml.objective == pytest.approx(1751.939345, abs=1e-5)
    assert hb.lmer(SLEEP, sleep, reml=False).objective == ml.objective
    assert hb.lmer(SLEEP, sleep, False).method == "ml"  # lme4's third positional argument
    model = hb.Model(SLEEP, sleep)
    assert model.fit(REML=False).method == "ml" and model.fit(REML=True).method == "reml"
    assert model.fit().method == "reml" and model.fit("ml", REML=False).method == "ml"
    with pytest.raises(ArgumentError, match="REML=True contradicts method='ml'"):
        model.fit("ml", REML=True)
    with pytest.raises(ArgumentError, match="disagree"):
        hb.lmer(SLEEP, sleep, REML=True, reml=False)
    with pytest.raises(ArgumentError, match="REML must be True or False"):
        model.fit(REML="no")
    assert hb.Model(CBPP, hb.datasets.load("cbpp"), family="binomial").fit(REML=False).method == "ml"


# --- unknown keywords -----------------------------------------------------------------------------
def test_unknown_keywords_are_one_error_listing_the_valid_names(sleep) -> None:
    cbpp = hb.datasets.load("cbpp")
    cases = [
        (lambda: hb.lmer(SLEEP, sleep, foo=1), "hb.lmer() got unknown keyword argument(s) 'foo'"),
        (lambda: hb.lmer(SLEEP, sleep, family="poisson"), "for another family call hb.glmer"),
        (lambda: hb.lmer(SLEEP, sleep, **{"na.action": "na.omit"}), "'na.action': did you mean 'na_action'?"),
        (lambda: hb.lmer(SLEEP, sleep, contrl={}), "did you mean 'control'?"),
        (lambda: hb.glmer(CBPP, cbpp, nagq=2), "did you mean 'nAGQ'?"),
        (lambda: hb.Model(SLEEP, sleep).fit("reml", nAGQ=1), "'nAGQ'"),
        (lambda: hb.Model(SLEEP, sleep).fit(draws=10), "'draws'"),
        (lambda: hb.Model(CBPP, cbpp, family="binomial").fit("ml", tune=3), "'tune'"),
    ]
    for call, text in cases:
        with pytest.raises(ArgumentError) as err:
            call()
        msg = str(err.value)
        assert text in msg, msg
        assert "valid:" in msg and "_fit" not in msg
        assert isinstance(err.value, TypeError)  # still a TypeError for code that catches one


def test_unknown_keyword_for_bayes_is_checked_before_sampling(sleep) -> None:
    with pytest.raises(ArgumentError, match=r"hb.bayes\(\) got unknown keyword argument\(s\) 'drawz'"):
        hb.bayes(SLEEP, sleep, drawz=10)
    with pytest.raises(ArgumentError, match="'nAGQ'"):
        hb.Model(SLEEP, sleep).fit("bayes", nAGQ=1)


def _public_callables(obj):
    for name in dir(obj):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(type(obj), name, None)
        if isinstance(attr, (property, functools.cached_property)):
            continue
        value = getattr(obj, name)
        if callable(value) and not isinstance(value, type):
            yield name, value


def test_no_public_method_answers_an_unknown_keyword_with_a_private_name(sleep) -> None:
    """Every public method of the REML/ML and GLMM fits and of Model, and every public hb function: an unknown
    keyword is an ArgumentError, or Python's TypeError naming that public callable itself."""
    fits = [quiet(hb.lmer, SLEEP, sleep), quiet(hb.glmer, CBPP, hb.datasets.load("cbpp")), hb.Model(SLEEP, sleep)]
    callables = [(f"{type(o).__name__}.{n}", c) for o in fits for n, c in _public_callables(o)]
    callables += [(f"hb.{n}", getattr(hb, n)) for n in ("lmer", "glmer", "bayes", "anova", "Model", "lmerControl",
                                                         "glmerControl", "compare", "pooling", "load")]  # fmt: skip
    checked = 0
    for label, fn in callables:
        if label.endswith(("save", "pymc_model")):  # io and the PyMC model belong to the Bayesian/io layers
            continue
        try:
            fn(bogus_keyword=1)
        except ArgumentError as err:
            assert "bogus_keyword" in str(err), label
        except TypeError as err:
            msg = str(err)
            assert "bogus_keyword" in msg or "missing" in msg, (label, msg)
            assert not re.search(r"(?<![\w_])_[A-Za-z]", msg), (label, msg)  # no private name (dunders are fine)
            short = label.split(".")[-1]
            assert short in msg or "__init__" in msg or "missing" in msg, (label, msg)
        except hb.HierbayesError:
            pass
        else:
            pytest.fail(f"{label} accepted an unknown keyword")
        checked += 1
    assert checked >= 30


# --- control and optimizer -----------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap"])
def test_lme4_optimizers_reach_lme4s_optimum(optimizer: str, sleep) -> None:
    ref = REF["optimizers"][optimizer]
    for fit in (hb.lmer(SLEEP, sleep, optimizer=optimizer), hb.lmer(SLEEP, sleep, control={"optimizer": optimizer}),
                hb.lmer(SLEEP, sleep, control=hb.lmerControl(optimizer=optimizer))):  # fmt: skip
        assert fit.reml_criterion <= ref["REMLcrit"] + 1e-9
        assert fit.reml_criterion == pytest.approx(ref["REMLcrit"], abs=1e-6)
        np.testing.assert_allclose(fit.theta.to_numpy(), _v(ref["theta"]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fit.fixef.to_numpy(), _v(ref["beta"]), rtol=1e-6)
    assert hb.lmer(SLEEP, sleep, optimizer="Nelder_Mead").optinfo.method == "Nelder-Mead (NLopt)"
    assert hb.lmer(SLEEP, sleep, optimizer="nlminbwrap").optinfo.method.startswith("L-BFGS-B")


def test_optimizer_errors_name_the_optimizer(sleep) -> None:
    with pytest.raises(
        ArgumentError, match=r"optimizer 'optimx' is not available in hierbayes \(it calls the R package"
    ):
        hb.lmer(SLEEP, sleep, optimizer="optimx")
    with pytest.raises(ArgumentError, match="unknown optimizer 'bobyqaa'; did you mean 'bobyqa'"):
        hb.lmer(SLEEP, sleep, control={"optimizer": "bobyqaa"})
    with pytest.raises(ArgumentError, match="optimizer must be a name"):
        hb.lmer(SLEEP, sleep, optimizer=3)
    with pytest.raises(ArgumentError, match="optCtrl has 'maxfun', which optimizer 'nloptwrap' does not take"):
        hb.lmer(SLEEP, sleep, control={"optCtrl": {"maxfun": 10}})
    with pytest.raises(ArgumentError, match="optCtrl has 'maxeval', which optimizer 'bobyqa' does not take"):
        hb.lmer(SLEEP, sleep, optimizer="bobyqa", control={"optCtrl": {"maxeval": 10}})
    with pytest.raises(ArgumentError, match=r"unknown lmerControl setting 'calc\.deriv'; did you mean 'calc\.derivs'"):
        hb.lmer(SLEEP, sleep, control={"calc.deriv": False})
    with pytest.raises(ArgumentError, match=r"'sparseX' = True is not available in hierbayes"):
        hb.lmer(SLEEP, sleep, control=hb.lmerControl(sparseX=True))
    with pytest.raises(ArgumentError, match=r"control must be hb\.lmerControl"):
        hb.lmer(SLEEP, sleep, control="fast")
    with pytest.raises(ArgumentError, match=r"optCtrl algorithm 'NLOPT_LD_MMA' is not available"):
        hb.lmer(SLEEP, sleep, control={"optCtrl": {"algorithm": "NLOPT_LD_MMA"}})
    with pytest.raises(ArgumentError, match=r"'boundary\.tol' must be a number >= 0"):
        hb.lmer(SLEEP, sleep, control={"boundary.tol": -1})


def test_optctrl_settings_take_effect(sleep) -> None:
    with pytest.warns(hb.ConvergenceWarning, match="convergence code from nloptwrap: NLOPT maxeval reached"):
        fit = hb.lmer(SLEEP, sleep, control={"optCtrl": {"maxeval": 5}, "calc.derivs": False})
    assert fit.optinfo.feval == 5
    sbplx = hb.lmer(SLEEP, sleep, control={"optCtrl": {"algorithm": "NLOPT_LN_SBPLX", "xtol_rel": 1e-10}})
    assert sbplx.optinfo.method == "Subplex (NLopt)"
    assert sbplx.reml_criterion == pytest.approx(1743.628272, abs=1e-5)
    bq = hb.lmer(SLEEP, sleep, optimizer="bobyqa", control={"optCtrl": {"rhobeg": 0.5, "rhoend": 1e-10}})
    assert bq.reml_criterion == pytest.approx(1743.628272, abs=1e-6)


def test_optimizer_none_evaluates_the_start(sleep) -> None:
    """lme4's optimizer = NULL: no optimisation, the fit at ``start``."""
    fit = hb.lmer(SLEEP, sleep, optimizer=None, start={"theta": [0.9, 0.05, 0.2]})
    np.testing.assert_array_equal(fit.theta.to_numpy(), [0.9, 0.05, 0.2])
    assert fit.objective == pytest.approx(fit.devfun([0.9, 0.05, 0.2]))
    assert fit.optinfo.method == "none" and fit.convergence is None


def test_convergence_check_actions(sleep) -> None:
    dyestuff2 = pd.read_csv(ROOT / "tests/reference/data/dyestuff2.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = hb.lmer("Yield ~ 1 + (1 | Batch)", dyestuff2, control={"check.conv.singular": "ignore"})
    assert fit.is_singular
    with pytest.raises(EstimationError, match=r"boundary \(singular\) fit.*check.conv.singular = 'stop'"):
        hb.lmer("Yield ~ 1 + (1 | Batch)", dyestuff2, control={"check.conv.singular": {"action": "stop"}})
    with pytest.raises(EstimationError, match=r"Model failed to converge with max\|grad\|"):
        hb.lmer(SLEEP, sleep, control={"check.conv.grad": {"action": "stop", "tol": 0.0}})
    with pytest.warns(hb.ConvergenceWarning, match=r"max\|relative grad\|"):
        hb.lmer(SLEEP, sleep, control={"check.conv.grad": {"action": "warning", "tol": 2e-3, "relTol": 0.0}})
    ok = hb.lmer(SLEEP, sleep, control={"calc.derivs": False})
    assert ok.convergence is None


def test_design_checks_in_control() -> None:
    rankdef = pd.read_csv(ROOT / "tests/reference/data/sim_rankdef.csv")
    with pytest.raises(EstimationError, match=r"rank deficient \(x2 .*check.rankX = 'stop.deficient'"):
        quiet(hb.lmer, "y ~ x1 + x2 + x3 + (1 | g)", rankdef, control={"check.rankX": "stop.deficient"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.errors.RankDeficiencyWarning)
        fit = hb.lmer("y ~ x1 + x2 + x3 + (1 | g)", rankdef, control={"check.rankX": "silent.drop.cols"})
    assert fit.design.aliased == ("x2",)
    grouse = hb.datasets.load("grouseticks")
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.errors.ScalingWarning)
        quiet_fit = hb.Model("TICKS ~ HEIGHT + (1 | LOCATION)", grouse, family="poisson",
                             control={"check.scaleX": "ignore"})  # fmt: skip
    assert quiet_fit.design.p == 2
    with pytest.raises(EstimationError, match=r"check\.scaleX = 'stop'"):
        hb.Model("TICKS ~ HEIGHT + (1 | LOCATION)", grouse, family="poisson", control={"check.scaleX": "stop"})


def test_verbose_prints_every_evaluation(sleep, capsys) -> None:
    fit = hb.lmer(SLEEP, sleep, verbose=1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("iteration:")]
    assert len(lines) >= 30 and lines[0].startswith("iteration: 1  f(x) = ")
    assert len(lines) <= fit.optinfo.feval
    with pytest.raises(ArgumentError, match="verbose must be a whole number"):
        hb.lmer(SLEEP, sleep, verbose="loud")


# --- start ----------------------------------------------------------------------------------------
def test_start_in_lme4s_forms(sleep) -> None:
    ref = REF["glmer_edge"]
    a = hb.lmer(SLEEP, sleep, start=[1.0, 0.0, 1.0])
    b = hb.lmer(SLEEP, sleep, start={"theta": [1.0, 0.0, 1.0]})
    assert a.reml_criterion == pytest.approx(ref["start_list"]["REMLcrit"], abs=1e-6)
    assert b.reml_criterion == a.reml_criterion
    c = hb.lmer(SLEEP, sleep, start=a.theta)  # a named Series, e.g. another fit's theta
    np.testing.assert_allclose(c.optinfo.initial, a.theta)
    d = hb.lmer(SLEEP, sleep, start={"theta": [1.0, 0.0, 1.0], "fixef": [250, 10]})  # fixef: unused by lmer
    assert d.reml_criterion == a.reml_criterion


def test_start_errors_name_the_expected_theta(sleep) -> None:
    assert ref_error("start_length") == "incorrect number of theta components (!=3)"
    with pytest.raises(
        ArgumentError,
        match=r"start has 2 value\(s\); the model's theta has 3 value\(s\): "
        r"Subject.\(Intercept\), Subject.Days.\(Intercept\), Subject.Days",
    ):
        hb.lmer(SLEEP, sleep, start=[1, 2])
    assert ref_error("start_names") == "incorrect components in start list: foo"
    with pytest.raises(ArgumentError, match="start has foo; lme4's start list takes 'theta'"):
        hb.lmer(SLEEP, sleep, start={"foo": 1})
    with pytest.raises(ArgumentError, match="start must be a vector of theta"):
        hb.lmer(SLEEP, sleep, start="1,0,1")
    with pytest.raises(ArgumentError, match="start must be numbers"):
        hb.lmer(SLEEP, sleep, start=[1, "a", 1])
    with pytest.raises(ArgumentError, match="start must be finite"):
        hb.lmer(SLEEP, sleep, start=[1, np.nan, 1])
    with pytest.raises(ArgumentError, match="start names a, b, c"):
        hb.lmer(SLEEP, sleep, start=pd.Series([1.0, 0, 1], index=["a", "b", "c"]))
    with pytest.raises(ArgumentError, match=r"start\['fixef'\] needs 4 finite value\(s\)"):
        hb.glmer(CBPP, hb.datasets.load("cbpp"), start={"fixef": [1, 2]})


def ref_error(name: str) -> str:
    return REF["glmer_edge"][name]["error"]


# --- subset -----------------------------------------------------------------------------------------
def test_subset_as_a_condition_a_column_or_a_mask(sleep) -> None:
    ref = REF["subset"]
    tight = ref["tight"]
    fits = [
        hb.lmer(SLEEP, sleep, subset="Days > 2"),
        hb.lmer(SLEEP, sleep.assign(keep=sleep["Days"] > 2), subset="keep"),
        hb.lmer(SLEEP, sleep, subset=(sleep["Days"] > 2).to_numpy()),
        hb.lmer(SLEEP, sleep, subset=list(sleep["Days"] > 2)),
        hb.lmer(SLEEP, sleep, subset="!(Days %in% c(0, 1, 2))"),
    ]
    for fit in fits:
        assert fit.nobs == ref["nobs"] == 126
        assert fit.n_dropped == 0  # rows outside the subset are not "dropped"
        assert fit.reml_criterion == pytest.approx(tight["objective"], abs=1e-8)
        assert fit.reml_criterion <= ref["objective"]
        np.testing.assert_allclose(fit.theta.to_numpy(), _v(tight["theta"]), rtol=1e-5)
        np.testing.assert_allclose(fit.fixef.to_numpy(), _v(tight["beta"]), rtol=1e-6)
    assert list(sleep.columns) == ["Reaction", "Days", "Subject"] and len(sleep) == 180


def test_subset_applies_to_weights_given_per_row(sleep) -> None:
    w = np.linspace(0.5, 2.0, len(sleep))
    a = hb.lmer(SLEEP, sleep, weights=w, subset="Days > 2")
    keep = (sleep["Days"] > 2).to_numpy()
    b = hb.lmer(SLEEP, sleep[keep], weights=w[keep])
    assert a.reml_criterion == pytest.approx(b.reml_criterion, rel=1e-12)


def test_subset_errors(sleep) -> None:
    with pytest.raises(
        hb.ColumnNotFoundError, match="unknown column 'Dayz' in the subset 'Dayz > 2'; did you mean 'Days'"
    ):
        hb.lmer(SLEEP, sleep, subset="Dayz > 2")
    with pytest.raises(hb.DataError, match=r"the subset 'Days >' could not be evaluated \(SyntaxError"):
        hb.lmer(SLEEP, sleep, subset="Days >")
    with pytest.raises(hb.DataError, match="must give True/False for each row"):
        hb.lmer(SLEEP, sleep, subset="Days + 1")
    with pytest.raises(hb.DataError, match="subset has 3 values for 180 rows"):
        hb.lmer(SLEEP, sleep, subset=[True, False, True])
    with pytest.raises(hb.DataError, match="integer positions are not accepted"):
        hb.lmer(SLEEP, sleep, subset=np.arange(10))
    with pytest.raises(hb.DataError, match="subset column 'Days' must give True/False"):
        hb.lmer(SLEEP, sleep, subset="Days")
    with pytest.raises(hb.DataError, match="selects none of the 180 rows"):
        hb.lmer(SLEEP, sleep, subset="Days > 100")
    with pytest.raises(hb.DataError, match="subset must be a boolean mask"):
        hb.lmer(SLEEP, sleep, subset=3.5)


# --- na_action ------------------------------------------------------------------------------------
def test_na_action_names_of_R() -> None:
    ref = REF["na_exclude"]
    d = pd.read_csv(ROOT / ref["data"], dtype={"Subject": str})
    before = d.copy()
    omit = quiet(hb.lmer, SLEEP, d, na_action="na.omit")
    assert omit.n_dropped == 3 and len(omit.residuals) == ref["omit"]["n_residuals"] == 177
    assert quiet(hb.lmer, SLEEP, d, na_action="omit").reml_criterion == omit.reml_criterion
    with pytest.raises(hb.DataError, match=r"3 of 180 rows .* \(na_action='na.fail'\)"):
        hb.lmer(SLEEP, d, na_action="na.fail")
    with pytest.raises(hb.DataError, match=r"na_action must be 'omit' or 'raise', not 'na\.pass'"):
        hb.lmer(SLEEP, d, na_action="na.pass")
    excl = quiet(hb.lmer, SLEEP, d, na_action="na.exclude")
    assert excl.reml_criterion == omit.reml_criterion
    tight = ref["tight"]
    resid = np.array([np.nan if v is None else v for v in tight["residuals"]])
    fitted = np.array([np.nan if v is None else v for v in tight["fitted"]])
    assert len(excl.residuals) == ref["n_residuals"] == 180
    np.testing.assert_array_equal(np.isnan(excl.residuals), np.isnan(resid))
    np.testing.assert_allclose(excl.residuals, resid, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(excl.fitted, fitted, rtol=1e-6, equal_nan=True)
    assert excl.reml_criterion == pytest.approx(tight["REMLcrit"], abs=1e-8)
    assert len(excl.weights) == 180 and len(excl.resid("pearson", scaled=True)) == 180
    assert "Number of obs: 177" in str(excl.summary())
    assert excl.augment().shape[0] == 177
    pd.testing.assert_frame_equal(d, before)


def test_na_exclude_for_a_glmm() -> None:
    cbpp = hb.datasets.load("cbpp")
    cbpp.loc[3, "size"] = np.nan
    fit = quiet(hb.glmer, CBPP, cbpp, na_action="na.exclude")
    for values in (fit.residuals, fit.fitted, fit.resid("pearson"), fit.weights):
        assert len(values) == 56 and np.isnan(values[3]) and np.isfinite(np.delete(values, 3)).all()
    assert fit.nobs == 55 and fit.overdispersion()["df_residual"] == 50


# --- devFunOnly -----------------------------------------------------------------------------------
def test_devfunonly_returns_the_criterion(sleep) -> None:
    fit = hb.lmer(SLEEP, sleep)
    f = hb.lmer(SLEEP, sleep, devFunOnly=True)
    assert f(fit.theta.to_numpy()) == pytest.approx(fit.reml_criterion, rel=1e-12)
    g = hb.glmer(CBPP, hb.datasets.load("cbpp"), devFunOnly=True)
    gfit = hb.glmer(CBPP, hb.datasets.load("cbpp"))
    assert g(np.r_[gfit.theta, gfit.fixef]) == pytest.approx(gfit.deviance, rel=1e-9)
    g0 = hb.glmer(CBPP, hb.datasets.load("cbpp"), devFunOnly=True, nAGQ=0)
    assert np.isfinite(g0([0.6]))
    with pytest.raises(ArgumentError, match="devFunOnly must be True or False"):
        hb.lmer(SLEEP, sleep, devFunOnly="yes")


# --- controls through glmer -----------------------------------------------------------------------
def test_glmer_controls() -> None:
    cbpp = hb.datasets.load("cbpp")
    base = hb.glmer(CBPP, cbpp)
    for control in (hb.glmerControl(optimizer="bobyqa"), {"optimizer": ["bobyqa", "Nelder_Mead"]},
                    hb.glmerControl(optimizer=("nloptwrap", "bobyqa")), {"nAGQ0initStep": False},
                    hb.glmerControl(tolPwrss=1e-10)):  # fmt: skip
        fit = hb.glmer(CBPP, cbpp, control=control)
        assert fit.deviance == pytest.approx(base.deviance, abs=1e-6)
        np.testing.assert_allclose(fit.fixef, base.fixef, atol=1e-4)
    nm = hb.glmer(CBPP, cbpp, optimizer=("bobyqa", "Nelder_Mead"))
    assert nm.optinfo[1].method == "Nelder-Mead (NLopt)"
    skipped = hb.glmer(CBPP, cbpp, control={"nAGQ0initStep": False})
    assert skipped.optinfo[0].method == "none"
    no_derivs = hb.glmer(CBPP, cbpp, control={"calc.derivs": False})
    assert no_derivs.convergence is None and no_derivs.estimates.vcov_source == "RX"
    with pytest.raises(ArgumentError, match="restart_edge is not available for glmer"):
        hb.glmer(CBPP, cbpp, control={"restart_edge": True})
    with pytest.raises(ArgumentError, match="optimizer takes one or two names"):
        hb.glmer(CBPP, cbpp, control={"optimizer": ["bobyqa", "bobyqa", "bobyqa"]})
    with pytest.raises(ArgumentError, match="unknown glmerControl setting 'tolPwrs'; did you mean 'tolPwrss'"):
        hb.glmer(CBPP, cbpp, control={"tolPwrs": 1e-8})
    # an lmerControl in glmer keeps the shared settings (lme4 converts it too)
    assert hb.glmer(CBPP, cbpp, control=hb.lmerControl(calc_derivs=False)).convergence is None


# --- lme4's re.form / use.u spellings where hierbayes' methods take them ----------------------------
def test_simulate_and_bootstrap_take_lme4s_spellings(sleep) -> None:
    fit = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    np.testing.assert_array_equal(fit.simulate(2, seed=3, re_form=None), fit.simulate(2, seed=3, use_re=True))
    np.testing.assert_array_equal(fit.simulate(2, seed=3, re_form="NA"), fit.simulate(2, seed=3, use_re=False))
    np.testing.assert_array_equal(fit.simulate(2, seed=3, re_form="~0"), fit.simulate(2, seed=3))
    with pytest.raises(ArgumentError, match="simulate's re_form must be None"):
        fit.simulate(2, re_form="~(1 | Subject)")
    with pytest.raises(ArgumentError, match="nsim must be a positive whole number"):
        fit.simulate(0)
    a = fit.bootstrap(nsim=5, seed=1, use_u=True, n_jobs=1, progress=False)
    b = fit.bootstrap(nsim=5, seed=1, use_re=True, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(a.t, b.t)
    g = quiet(hb.glmer, CBPP, hb.datasets.load("cbpp"))
    np.testing.assert_array_equal(g.simulate(2, seed=1, re_form=None), g.simulate(2, seed=1, use_re=True))


def test_a_fit_with_a_control_saves_and_loads(sleep, tmp_path) -> None:
    fit = hb.lmer(
        SLEEP, sleep, control={"optimizer": "bobyqa", "check.conv.singular": "ignore"}, weights=np.full(180, 2.0)
    )
    path = tmp_path / "fit.nc"
    fit.save(path)
    back = hb.load(path)
    assert back.reml_criterion == pytest.approx(fit.reml_criterion, rel=1e-12)
    assert back.estimates.control == fit.estimates.control


# --- audit of issue 15: odd keywords and scales (tests/design/test_offset_arg.py has offset=) -----------------
def test_predict_unknown_keywords_are_one_error_with_lme4s_spelling(sleep) -> None:
    fit = hb.lmer(SLEEP, sleep)
    for kw, meant in (("allow.new.levels", "allow_new_levels"), ("re.form", "re_form"), ("newdat", "newdata")):
        with pytest.raises(ArgumentError, match=f"did you mean '{meant}'.*valid: newdata, re_form"):
            fit.predict(sleep.head(2), **{kw: True})
    # lme4's type= is accepted by a linear mixed model (link and response are the same)
    np.testing.assert_array_equal(fit.predict(sleep.head(3), type="response"), fit.predict(sleep.head(3)))
    with pytest.raises(ArgumentError, match="type must be 'link' or 'response'"):
        fit.predict(sleep.head(3), type="resp")


def test_confint_unknown_keyword_is_named(sleep) -> None:
    fit = hb.lmer(SLEEP, sleep)
    with pytest.raises(ArgumentError, match="'methd': did you mean 'method'"):
        fit.confint(methd="Wald")
    cbpp = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    with pytest.raises(ArgumentError, match="'levl': did you mean 'level'"):
        cbpp.confint(levl=0.9)


def test_subset_with_an_unsupported_operator_names_it(sleep) -> None:
    with pytest.raises(hb.DataError, match="RShift is not supported in a condition") as info:
        hb.lmer(SLEEP, sleep, subset="Days >> 2")
    assert "Visitor" not in str(info.value)


@pytest.mark.parametrize(("scale", "word"), [(1e200, "overflow"), (1e-200, "underflow")])
def test_response_on_an_extreme_scale_is_named_not_an_exact_fit(sleep, scale, word) -> None:
    """lme4 returns an infinite criterion (R 4.2.2, lme4 1.1-31); hierbayes says why, and how to rescale."""
    with pytest.raises(hb.errors.EstimationError, match=f"squares {word} double precision.*rescale"):
        hb.lmer("c ~ Days + (1 | Subject)", sleep.assign(c=sleep["Reaction"] * scale))
    ok = hb.lmer("c ~ Days + (1 | Subject)", sleep.assign(c=sleep["Reaction"] * 1e100))
    ref = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    np.testing.assert_allclose(ok.fixef.to_numpy() / 1e100, ref.fixef.to_numpy(), rtol=1e-6)


def test_bad_weights_are_described_briefly(sleep) -> None:
    with pytest.raises(hb.DataError, match=r"not a ndarray of 180 values of dtype <U1$"):
        hb.lmer(SLEEP, sleep, weights=np.array(["a"] * 180))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"draws": 0}, "draws must be at least 1"),
        ({"chains": 0}, "chains must be at least 1"),
        ({"tune": -1}, "tune must be at least 0"),
        ({"draws": 2.5}, "draws must be an integer"),
        ({"chains": True}, "chains must be an integer"),
        ({"target_accept": 1.0}, "target_accept must be a number strictly between 0 and 1"),
        ({"target_accept": 0}, "target_accept must be a number strictly between 0 and 1"),
        ({"random_seed": "x"}, "random_seed must be an integer"),
        ({"priors": [1, 2]}, "priors must be a dict"),
    ],
)
def test_sampler_settings_are_checked_before_anything_is_built(sleep, monkeypatch, options, words) -> None:
    import hierbayes.model as model_module

    def never(*a, **k):  # nothing may be built or compiled before the settings are checked
        raise AssertionError("the sampler was reached")

    monkeypatch.setattr(model_module, "sample_posterior", never)
    monkeypatch.setattr(model_module, "build_pymc_model", never)
    with pytest.raises(ArgumentError, match=words):
        hb.bayes("Reaction ~ Days + (1 | Subject)", sleep, **options)
