"""GLMM estimation edge cases as lme4 handles them, prior weights in glmer, and malformed options.

R numbers: tests/reference/lme4args_reference.json (make_lme4args_reference.R), ``glmer_edge`` and
``weighted_glmer`` (glmer converged tightly: tolPwrss 1e-12, BOBYQA in both stages).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, EstimationError, SeparationWarning
from tests.refdata import REFERENCE, ROOT

pytestmark = pytest.mark.filterwarnings(
    "ignore::hierbayes.errors.OverdispersionWarning", "ignore::hierbayes.errors.SingularFitWarning"
)
REF = pd.read_json(REFERENCE / "lme4args_reference.json", typ="series")
EDGE = REF["glmer_edge"]
WEIGHTED = REF["weighted_glmer"]


@pytest.fixture(scope="module")
def edge() -> pd.DataFrame:
    return pd.read_csv(ROOT / EDGE["data"])


def _v(d: dict) -> np.ndarray:
    return np.array(list(d.values()), dtype=float)


def test_constant_response_is_lme4s_error(edge) -> None:
    assert EDGE["poisson_all_zero"]["error"] == EDGE["binomial_all_one"]["error"] == "Response is constant"
    with pytest.raises(EstimationError, match="Response is constant: every value of 'y0' is 0"):
        hb.glmer("y0 ~ x + (1 | g)", edge, family="poisson")
    with pytest.raises(EstimationError, match="Response is constant: every value of 'y1' is 1"):
        hb.glmer("y1 ~ x + (1 | g)", edge, family="binomial")
    cbpp = hb.datasets.load("cbpp").assign(none=0)
    with pytest.raises(EstimationError, match="every proportion of 'cbind"):
        hb.glmer("cbind(none, size) ~ period + (1 | herd)", cbpp)
    # lme4's check.response.not.const = "warning": the intercept then runs off, named by the separation check
    with pytest.warns(SeparationWarning, match="'\\(Intercept\\)'"):
        fit = hb.glmer("y0 ~ x + (1 | g)", edge, family="poisson", control={"check.response.not.const": "warning"})
    assert fit.fixef["(Intercept)"] < -10


def test_lmer_constant_response_is_an_error_not_sigma_zero(edge) -> None:
    assert EDGE["lmer_constant"]["error"] is not None  # lme4 fails with an internal message
    with pytest.raises(EstimationError, match="the response 'y1' is constant \\(every value is 1\\)"):
        hb.lmer("y1 ~ x + (1 | g)", edge)
    exact = edge.assign(yx=2 * edge["x"] + 1)
    with pytest.raises(EstimationError, match="fit the response 'yx' exactly"):
        hb.lmer("yx ~ x + (1 | g)", exact)


def test_n_at_most_p_is_an_error() -> None:
    d = pd.DataFrame({"y": [1.0, 2.0, 3.5, 4.0, 6.0, 5.0], "a": [1, 2, 3, 4, 5, 7.0], "b": [2, 1, 0, 1, 3, 2.0],
                      "c": [0, 1, 1, 0, 2, 5.0], "e": [5, 3, 2, 2, 1, 0.0], "f": [1, 0, 0, 1, 1, 1.0],
                      "g": list("aabbcc")})  # fmt: skip
    with pytest.raises(EstimationError, match=r"6 observations for 6 fixed-effect coefficients .*n <= p"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hb.HierbayesWarning)
            hb.lmer("y ~ a + b + c + e + f + (1 | g)", d)


def test_counts_on_a_scale_of_1e12_fit_with_lme4s_warnings(edge) -> None:
    ref = EDGE["counts_1e12"]
    assert ref["error"] is None and any("failed to converge" in w or "unidentifiable" in w for w in ref["warnings"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = hb.glmer("big ~ x + (1 | g)", edge, family="poisson")
    assert any(issubclass(w.category, hb.ConvergenceWarning) for w in caught)
    np.testing.assert_allclose(fit.fixef.to_numpy(), _v(ref["beta"]), rtol=1e-3)


def test_complete_separation_is_a_fit_with_a_warning_naming_the_effect(edge) -> None:
    # lme4 stops with an internal PIRLS error here; hierbayes returns the fit, as it does for quasi-separation
    assert "pwrssUpdate did not converge" in EDGE["complete_separation"]["error"]
    with pytest.warns(SeparationWarning, match=r"separation: the estimate\(s\) of '\(Intercept\)', 'x' diverge"):
        fit = hb.glmer("ys ~ x + (1 | g)", edge, family="binomial")
    assert fit.fixef["x"] > 20 and np.isfinite(fit.deviance)


def test_quasi_separation_matches_lme4_on_the_other_effects(edge) -> None:
    ref = EDGE["quasi_separation"]
    with pytest.warns(SeparationWarning, match=r"the estimate\(s\) of 'fc' diverge"):
        fit = hb.glmer("yq ~ f + x + (1 | g)", edge, family="binomial")
    beta, se = _v(ref["beta"]), _v(ref["se"])
    ok = [n != "fc" for n in ref["beta"]]
    np.testing.assert_allclose(fit.fixef.to_numpy()[ok], beta[ok], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov.to_numpy()))[ok], se[ok], rtol=1e-3)
    # the diverging estimate is where the optimizer stopped, as in lme4: large, with a huge standard error
    assert fit.fixef["fc"] > 20 and np.sqrt(fit.vcov.loc["fc", "fc"]) > 1e5


def test_glmer_gaussian_falls_back_to_lmer_with_lme4s_warning(edge) -> None:
    ref = EDGE["gaussian"]
    with pytest.warns(
        hb.errors.DesignWarning,
        match=r"calling glmer\(\) with family=gaussian \(identity link\) as a "
        r"shortcut to lmer\(\) is deprecated; please call lmer\(\) directly",
    ):
        fit = hb.glmer("yg ~ x + (1 | g)", edge, family="gaussian")
    assert ref["class"] == "lmerMod" and ref["REML"] and fit.method == "reml"
    assert fit.reml_criterion == pytest.approx(ref["REMLcrit"], rel=1e-7)
    np.testing.assert_allclose(fit.fixef.to_numpy(), _v(ref["beta"]), rtol=1e-5)
    with pytest.raises(ArgumentError, match="nAGQ=5 applies to GLMMs"), pytest.warns(hb.errors.DesignWarning):
        hb.glmer("yg ~ x + (1 | g)", edge, family="gaussian", nAGQ=5)


def test_nagq_errors(edge) -> None:
    assert EDGE["nagq_vector"]["error"] == EDGE["nagq_two_terms"]["error"]
    lme4 = EDGE["nagq_vector"]["error"]  # nAGQ > 1 is only available for models with a single, scalar ...
    with pytest.raises(hb.ModelError, match=lme4):
        hb.glmer("yq ~ x + (x | g)", edge, family="binomial", nAGQ=5)
    with pytest.raises(hb.ModelError, match=lme4):
        hb.glmer("yq ~ x + (1 | g) + (1 | h)", edge.assign(h=np.tile(list("abcde"), 12)), family="binomial", nAGQ=5)
    for bad in ("a", -1, 1.5, True, None, 101):
        with pytest.raises(ArgumentError, match="nAGQ must be a whole number from 0 to 100"):
            hb.glmer("yq ~ x + (1 | g)", edge, family="binomial", nAGQ=bad)
    assert hb.glmer("yq ~ x + (1 | g)", edge, family="binomial", nAGQ=3.0).nAGQ == 3


@pytest.mark.parametrize("case_id", list(WEIGHTED))
def test_prior_weights_in_glmer_equal_lme4(case_id: str) -> None:
    ref = WEIGHTED[case_id]
    if case_id == "cbpp_prop":
        d = hb.datasets.load("cbpp").assign(prop=lambda x: x["incidence"] / x["size"])
    else:
        d = pd.read_csv(ROOT / ref["data"])
    fit = hb.glmer(ref["formula"], d, family=ref["family"], weights=ref["weights"])
    assert fit.deviance == pytest.approx(ref["minus2logLik"], rel=1e-9)
    assert fit.conditional_deviance == pytest.approx(ref["deviance"], rel=1e-6)
    np.testing.assert_allclose(fit.theta.to_numpy(), _v(ref["theta"]), rtol=1e-5)
    np.testing.assert_allclose(fit.fixef.to_numpy(), _v(ref["beta"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov.to_numpy())), _v(ref["se"]), rtol=1e-3)
    assert fit.nobs == ref["nobs"]


def test_poisson_weights_multiply_the_log_likelihood() -> None:
    """lme4's semantics for Poisson prior weights: weights 2 double the deviance terms (same estimates)."""
    d = pd.read_csv(ROOT / WEIGHTED["poisson_w2"]["data"])
    one = hb.glmer("y ~ x + (1 | block)", d, family="poisson")
    two = hb.glmer("y ~ x + (1 | block)", d, family="poisson", weights="w2")
    assert two.conditional_deviance > 1.9 * one.conditional_deviance
    with pytest.raises(hb.DataError, match="weights column 'w2' must be non-negative"):
        hb.glmer("y ~ x + (1 | block)", d.assign(w2=-d["w2"]), family="poisson", weights="w2")
