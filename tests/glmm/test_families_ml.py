"""glmer for Gamma, inverse Gaussian and negative binomial against tests/reference/families_reference.json.

Targets (issue 22): logLik to 1e-6 relative, fixed effects to 1e-5, SDs, NB theta and the dispersion
to 1e-4 relative, against the right reference per family (tests/reference/README.md, make_families.R):

* Gamma and inverse Gaussian: the Laplace maximum (the script's independent maximiser ``laplace``,
  equal to glmmTMB to 1e-10; glmmTMB for the random-slope case). lme4 1.1-31 does not maximise it.
* Negative binomial: lme4's Laplace at glmer.nb's theta. ``laplace_expected`` (the exact maximum of
  lme4's objective) where the script has it (scalar random intercept), else glmer.nb tightly converged.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import DataError, HierbayesError, ModelError, OverdispersionWarning, SingularFitWarning
from tests.refdata import REFERENCE, case_data

#: R's factors in the families' data (tests/reference/README.md, make_families.R)
FACTORS = ("block", "g", "f1", "f2", "f", "trt", "subject")
LOGLIK_RTOL, BETA_TOL, PAR_RTOL = 1e-6, 1e-5, 1e-4


@cache
def families_reference() -> dict:
    with open(REFERENCE / "families_reference.json") as fh:
        return json.load(fh)


def data_of(case: dict) -> pd.DataFrame:
    d = case_data(case["data"]).copy()
    for col in FACTORS:
        if col in d:
            d[col] = d[col].astype(str).astype("category")
    return d


@cache
def fitted(kind: str, cid: str):
    case = families_reference()[kind][cid]
    d = data_of(case)
    if kind == "negative_binomial":
        if case["lme4"]["isSingular"]:
            with pytest.warns(SingularFitWarning):
                return hb.glmer_nb(case["formula"], d)
        return hb.glmer_nb(case["formula"], d)
    return hb.glmer(case["formula"], d, family=case["family"], link=case["link"])


def target(kind: str, case: dict) -> tuple[str, dict]:
    if kind == "negative_binomial":
        exact = case.get("laplace_expected")
        return ("laplace_expected", exact) if exact else ("lme4", case["lme4"])
    return ("laplace", case["laplace"]) if case.get("laplace") else ("glmmTMB", case["glmmTMB"])


def ref_sds(name: str, ref: dict) -> np.ndarray:
    if "sd" in ref:
        return np.atleast_1d(ref["sd"])
    if name == "glmmTMB":
        (vc,) = ref["varcorr"].values()
        return np.array([*vc["sd"].values(), vc["corr"][0][1]])
    return np.array([row["sdcor"] for row in ref["varcorr"]])


CASES = [
    (kind, cid)
    for kind in ("gamma", "inverse_gaussian", "negative_binomial")
    for cid in json.load(open(REFERENCE / "families_reference.json"))[kind]
]
SLOW = {"epil_nb"}  # ~20 s: a correlated random slope, glmer.nb's theta


@pytest.mark.parametrize(
    "kind,cid", [pytest.param(k, c, marks=pytest.mark.slow) if c in SLOW else (k, c) for k, c in CASES]
)
def test_matches_the_laplace_maximum(kind: str, cid: str) -> None:
    case = families_reference()[kind][cid]
    fit = fitted(kind, cid)
    name, ref = target(kind, case)
    ll = ref["logLik"] if "logLik" in ref else -0.5 * ref["minus2logLik"]
    assert fit.loglik == pytest.approx(ll, rel=LOGLIK_RTOL)
    beta = pd.Series(ref["beta"])
    assert list(fit.fixef.index) == list(beta.index) or len(beta) == fit.design.p
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta.to_numpy(), atol=BETA_TOL, rtol=0)
    sds = fit.varcorr["sdcor"].to_numpy()
    want = ref_sds(name, ref)
    np.testing.assert_allclose(sds[: len(want)], want, rtol=PAR_RTOL, atol=1e-4 * (name == "laplace_expected"))
    if kind == "negative_binomial":
        assert fit.nb_theta == pytest.approx(ref["nb_theta"], rel=PAR_RTOL)
        assert fit.sigma is None
        assert fit.npar == case["lme4"]["logLik_df"]  # theta counts, as in glmer.nb's logLik
    else:
        assert fit.sigma == pytest.approx(ref["sigma"], rel=PAR_RTOL)
        assert fit.nb_theta is None
        assert fit.varcorr["grp"].iloc[-1] == "Residual"


@pytest.mark.parametrize("cid", ["glmmext_gamma_log", "sim_gamma_identity"])
def test_gamma_standard_errors_are_glmmtmbs(cid: str) -> None:
    """SEs of beta: 2 H^{-1} of the Laplace deviance in all parameters, as glmmTMB's sdreport."""
    case = families_reference()["gamma"][cid]
    fit = fitted("gamma", cid)
    se = np.sqrt(np.diag(fit.vcov.to_numpy()))
    np.testing.assert_allclose(se, list(case["laplace"]["se_beta"].values()), rtol=1e-5)


def test_lme4_differs_from_the_maximum_by_the_documented_amounts() -> None:
    """The issue's case: lme4 prints SD 0.63 (theta x sigma), the Laplace maximum is 0.89 (docs/families.md)."""
    case = families_reference()["gamma"]["glmmext_gamma_log"]
    fit = fitted("gamma", "glmmext_gamma_log")
    assert fit.varcorr["sdcor"].iloc[0] == pytest.approx(0.8948, abs=1e-4)
    assert case["lme4"]["varcorr"][0]["sdcor"] == pytest.approx(0.6316, abs=1e-4)
    assert fit.loglik > case["glmmTMB"]["logLik"] - 1e-6  # no higher Laplace likelihood exists


def test_fixed_theta_is_lme4s_glmer_at_that_theta() -> None:
    """``negative.binomial(theta)`` fixed: lme4's glmer at theta; theta not counted in logLik's df."""
    case = families_reference()["negative_binomial"]["nb_sim"]
    ref = case["laplace_expected"]
    d = data_of(case)
    fit = hb.glmer(case["formula"], d, family=hb.negative_binomial(ref["nb_theta"]))
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-8)
    assert fit.nb_theta == ref["nb_theta"]
    assert fit.npar == case["lme4"]["logLik_df"] - 1
    assert "Negative Binomial(0.448)" in str(fit.summary())


def test_r_spellings_and_default_links() -> None:
    case = families_reference()["gamma"]["glmmext_gamma_inverse_int"]
    d = data_of(case)
    a = hb.glmer(case["formula"], d, family="Gamma")  # R's Gamma(): inverse link
    assert a.family.link.name == "inverse"
    b = hb.glmer(case["formula"], d, family=hb.Gamma(link="inverse"))
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert hb.glmer(case["formula"], d, family="gamma", link="log").family.link.name == "log"
    ig = families_reference()["inverse_gaussian"]["sim_invgauss_mu2"]
    fit = hb.glmer(ig["formula"], data_of(ig), family="inverse.gaussian")
    assert fit.family.link.name == "1/mu^2"
    assert fit.loglik == pytest.approx(ig["laplace"]["logLik"], rel=1e-6)
    assert "Family: inverse.gaussian  ( 1/mu^2 )" in str(fit.summary())


def test_summary_predict_simulate_and_residuals() -> None:
    fit = fitted("gamma", "glmmext_gamma_log")
    text = str(fit.summary())
    assert "Family: Gamma  ( log )" in text and "Residual" in text
    mu = fit.predict(type="response")
    np.testing.assert_allclose(mu, np.exp(fit.predict()), rtol=1e-12)
    np.testing.assert_allclose(fit.fitted, mu, rtol=1e-12)
    sims = fit.simulate(nsim=200, seed=1)
    assert sims.shape == (fit.design.n, 200) and np.all(sims > 0)
    # the Gamma CV of the simulated responses, given the modes, is sigma
    cond = fit.simulate(nsim=400, seed=2, use_re=True)
    cv = np.std(cond / mu[:, None], axis=1).mean()
    assert cv == pytest.approx(fit.sigma, rel=0.05)
    nb = fitted("negative_binomial", "nb_sim")
    y = nb.simulate(nsim=300, seed=3, use_re=True)
    mu = nb.fitted
    var = y.var(axis=1).mean()
    assert var == pytest.approx(np.mean(mu + mu**2 / nb.nb_theta), rel=0.1)
    assert np.all(y == np.round(y)) and np.all(y >= 0)
    assert len(nb.resid("pearson")) == nb.design.n
    assert nb.aic == pytest.approx(families_reference()["negative_binomial"]["nb_sim"]["lme4"]["AIC"], rel=1e-6)


def test_bad_input() -> None:
    d = data_of(families_reference()["gamma"]["glmmext_gamma_log"])
    bad = d.assign(y_log=d["y_log"].where(d.index != 5, 0.0))
    with pytest.raises(DataError, match=r"gamma family needs the response 'y_log' to be positive.*row 5"):
        hb.glmer("y_log ~ x + (1 | block)", bad, family="Gamma", link="log")
    with pytest.raises(DataError, match="inverse_gaussian family needs the response 'y_log' to be positive"):
        hb.glmer("y_log ~ x + (1 | block)", bad, family="inverse.gaussian")
    counts = data_of(families_reference()["negative_binomial"]["nb_sim"])
    for value in (-1.0, 2.5):
        with pytest.raises(DataError, match="non-negative whole-number counts"):
            hb.glmer_nb("z ~ x + (1 | f)", counts.assign(z=counts["z"].where(counts.index != 3, value)))
    with pytest.raises(ModelError, match="theta must be a positive number"):
        hb.negative_binomial(-2.0)
    with pytest.raises(ModelError, match="takes the links"):
        hb.glmer("y_log ~ x + (1 | block)", d, family="Gamma", link="logit")
    with pytest.raises(HierbayesError, match="Laplace approximation only"):
        hb.glmer("y_log ~ x + (1 | block)", d, family="Gamma", link="log", nAGQ=5)
    with pytest.raises(HierbayesError, match="glmer_nb fits the negative binomial"):
        hb.glmer_nb("z ~ x + (1 | f)", counts, family="poisson")
    assert d["y_log"].iloc[5] != 0.0  # the user's frame is untouched


def test_intervals_and_comparison() -> None:
    """Wald and bootstrap intervals (the dispersion re-estimated per replicate), anova of Poisson vs NB."""
    fit = fitted("gamma", "glmmext_gamma_inverse_int")
    boot = fit.confint("boot", nsim=4, seed=1)
    assert list(boot.index) == [".sig01", ".sigma", "(Intercept)"]
    assert boot.notna().all().all() and (boot["lower"] <= boot["upper"]).all()
    assert 0.5 < boot.loc[".sigma", "lower"] <= boot.loc[".sigma", "upper"] < 1.0
    wald = fit.confint("wald")
    se = np.sqrt(fit.vcov.to_numpy()[0, 0])
    assert wald.loc["(Intercept)", "upper"] - fit.fixef.iloc[0] == pytest.approx(1.959964 * se, rel=1e-5)
    with pytest.raises(HierbayesError, match="profile intervals are not available for a gamma fit"):
        fit.confint()
    g = hb.datasets.load("grouseticks")
    with pytest.warns(OverdispersionWarning, match="negative binomial model"):
        po = hb.glmer("TICKS ~ YEAR + (1 | LOCATION)", g, family="poisson")
    nb = hb.glmer_nb("TICKS ~ YEAR + (1 | LOCATION)", g)
    table = hb.anova(po, nb)
    assert table["npar"].tolist() == [4, 5]
    assert table["Chisq"].iloc[1] == pytest.approx(2 * (nb.loglik - po.loglik), rel=1e-10)
    assert nb.overdispersion()["ratio"] < 1.5 < po.overdispersion()["ratio"]
    pool = hb.pooling(nb)  # the no-pooling GLMs at the fitted theta
    assert pool[("complete pooling", "(Intercept)")].notna().all()
