"""Families and links against R's make.link, binomial() and poisson(), and each family's own contract.

Reference numbers: tests/reference/make_family_functions.R -> family_functions_reference.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hierbayes.errors import DataError, ModelError
from hierbayes.families import FAMILIES, LINKS, get_family

REF = json.loads((Path(__file__).parent / "reference" / "family_functions_reference.json").read_text())


@pytest.mark.parametrize("name", list(REF["links"]))
def test_links_equal_r_make_link(name):
    ref, link = REF["links"][name], LINKS[name]
    eta = np.asarray(ref["eta"], float)
    np.testing.assert_allclose(link.linkinv_r(eta), ref["linkinv"], rtol=1e-14, atol=0)
    # logit: p (1 - p) here, R's exp(eta) / (1 + exp(eta))^2: equal to ~1e-12 far in the tails
    np.testing.assert_allclose(link.mu_eta_r(eta), ref["mu_eta"], rtol=1e-11, atol=0)
    np.testing.assert_allclose(link(np.asarray(ref["mu"], float)), ref["linkfun"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(LINKS))
def test_inverse_is_the_inverse_and_mu_eta_its_derivative(name):
    link = LINKS[name]
    positive = np.array([0.3, 1.0, 4.0])
    eta = {"inverse": positive, "sqrt": positive, "1/mu^2": positive, "cloglog": np.linspace(-3, 1.5, 7)}.get(
        name, np.linspace(-3, 3, 7)
    )
    np.testing.assert_allclose(link(link.inverse(eta)), eta, rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = (link.inverse(eta + h) - link.inverse(eta - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_eta(eta), fd, rtol=1e-6, atol=1e-10)
    fd2 = (link.mu_eta(eta + h) - link.mu_eta(eta - h)) / (2 * h)  # the observed information's second derivative
    np.testing.assert_allclose(link.mu_eta_deriv(eta), fd2, rtol=1e-6, atol=1e-9)
    # inside the range where R does not clamp, R's versions are the exact ones
    np.testing.assert_allclose(link.linkinv_r(eta), link.inverse(eta), rtol=1e-15)


@pytest.mark.parametrize("name", list(LINKS))
def test_pytensor_inverse_equals_numpy(name):
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    link = LINKS[name]
    eta = np.array([0.3, 1.0, 2.5])
    x = pt.dvector("eta")
    f = pytensor.function([x], link.pt_inverse(x))
    np.testing.assert_allclose(f(eta), link.inverse(eta), rtol=1e-12)


@pytest.mark.parametrize("fam,param", [("gamma", 0.4), ("inverse_gaussian", 0.3), ("negative_binomial", 2.5)])
def test_ml_family_pieces(fam, param):
    """Variance, deviance residuals and log-density of the glmer families with a parameter (R's formulas)."""
    family = get_family(fam, "log").with_parameter(param)
    y, mu, wt = np.array([0.5, 1.0, 3.0]), np.array([0.8, 1.2, 2.0]), np.ones(3)
    if fam == "negative_binomial":
        y = np.array([0.0, 1.0, 3.0])
        want = stats.nbinom.logpmf(y, param, param / (param + mu))
        np.testing.assert_allclose(family.variance(mu), mu + mu**2 / param, rtol=1e-14)
    elif fam == "gamma":
        want = stats.gamma.logpdf(y, 1 / param, scale=mu * param)
    else:
        want = stats.invgauss.logpdf(y, mu * param, scale=1 / param)
    np.testing.assert_allclose(family.loglik_terms(mu, y, wt, family.aic_setup(y, wt, wt)), want, rtol=1e-12)
    # the unit deviance is -2 (log p(y | mu) - log p(y | y)) times phi (Gamma, IG) or exactly (NB)
    dev = family.dev_resids(y, mu, wt)
    sat = family.loglik_terms(np.maximum(y, 1e-300) if fam != "negative_binomial" else y, y, wt,
                              family.aic_setup(y, wt, wt))  # fmt: skip
    scale = param if fam != "negative_binomial" else 1.0
    np.testing.assert_allclose(dev, -2 * scale * (want - sat), rtol=1e-10, atol=1e-12)
    # observed information weights: -d^2 log p / d eta^2 by finite differences
    eta, h = np.log(mu), 1e-4
    lp = lambda e: family.loglik_terms(np.exp(e), y, wt, family.aic_setup(y, wt, wt))  # noqa: E731
    fd = -(lp(eta + h) - 2 * lp(eta) + lp(eta - h)) / h**2
    np.testing.assert_allclose(family.observed_weights(y, mu, eta, wt / scale), fd, rtol=1e-5)


@pytest.mark.parametrize("fam", ["binomial", "poisson"])
def test_glm_pieces_equal_r(fam):
    ref = REF[fam]
    family = get_family(fam)
    y, mu, wt = (np.asarray(ref[k], float) for k in ("y", "mu", "wt"))
    np.testing.assert_allclose(family.variance(mu), ref["variance"], rtol=1e-15)
    np.testing.assert_allclose(family.dev_resids(y, mu, wt), ref["dev_resids"], rtol=1e-12, atol=1e-300)
    n = wt if fam == "binomial" else np.ones_like(y)
    setup = family.aic_setup(y, wt, n)
    assert -2 * family.loglik_terms(mu, y, wt, setup).sum() == pytest.approx(ref["aic"], rel=1e-13)


def test_get_family_names_aliases_and_links():
    assert get_family("normal").name == "gaussian" and get_family("gaussian").is_gaussian
    assert not get_family("gaussian", "log").is_gaussian
    assert get_family("zip").name == "zero_inflated_poisson"
    assert get_family("Binomial").link.name == "logit"
    assert get_family(get_family("poisson"), "sqrt").link.name == "sqrt"
    assert get_family("bernoulli").r_name == "binomial"
    with pytest.raises(ModelError, match="unknown family 'wald'"):
        get_family("wald")
    with pytest.raises(ModelError, match="takes the links logit, probit, cloglog, not 'log'"):
        get_family("binomial", "log")
    assert [n for n, f in FAMILIES.items() if f.ml] == [
        "bernoulli",
        "binomial",
        "poisson",
        "negative_binomial",
        "gamma",
        "inverse_gaussian",
    ]
    assert get_family("student_t").aux == ("sigma", "nu") and get_family("poisson").aux == ()


@pytest.mark.parametrize(
    ("family", "y", "trials", "needs"),
    [
        ("bernoulli", [0, 1, 2], None, "0 or 1"),
        ("binomial", [0.2, 1.5], None, "a proportion in"),
        ("binomial", [2, 5], [4, 4], "whole numbers of successes <= trials"),
        ("poisson", [1, -1], None, "non-negative whole-number counts"),
        ("negative_binomial", [1.5, 2], None, "non-negative whole-number counts"),
        ("gamma", [1.0, 0.0], None, "positive"),
        ("beta", [0.5, 1.0], None, "strictly between 0 and 1"),
    ],
)
def test_validate_names_the_response_and_rows(family, y, trials, needs):
    fam = get_family(family)
    t = None if trials is None else np.asarray(trials, float)
    with pytest.raises(DataError, match=f"the {family} family needs the response 'y' to be {needs}"):
        fam.validate(np.asarray(y, float), t, "y")
    fam.validate(np.asarray([1.0, 0.0])[: 1 if family in ("gamma", "beta") else 2] * (0.5 if family == "beta" else 1),
                 None, "y")  # fmt: skip


def test_binomial_counts_read_trials_from_cbind_or_weights():
    fam = get_family("binomial")
    y, t = fam.counts(np.array([0.5, 0.25]), None, np.array([4.0, 8.0]))
    np.testing.assert_array_equal(y, [2.0, 2.0])
    np.testing.assert_array_equal(t, [4.0, 8.0])
    with pytest.raises(ModelError, match="whole numbers of trials"):
        fam.counts(np.array([0.5]), None, np.array([2.5]))
    assert get_family("poisson").counts(np.array([3.0]), None, None)[1] is None


@pytest.mark.parametrize("family", ["gaussian", "student_t", "bernoulli", "binomial", "poisson",
                                    "negative_binomial", "gamma", "beta", "zero_inflated_poisson"])  # fmt: skip
def test_logpdf_is_normalised_and_rvs_has_the_mean(family):
    fam = get_family(family)
    params = {"sigma": np.array([[1.3]]), "nu": np.array([[5.0]]), "alpha": np.array([[2.0]]),
              "shape": np.array([[3.0]]), "phi": np.array([[6.0]]), "psi": np.array([[0.7]])}  # fmt: skip
    params = {k: v for k, v in params.items() if k in fam.aux}
    eta = np.array([[0.4]])
    trials = np.array([6.0]) if family == "binomial" else None
    rng = np.random.default_rng(1)
    draws = fam.rvs(np.full((20000, 1), 0.4), {k: v[0, 0] for k, v in params.items()}, trials, rng)
    mean = fam.response_mean(eta, params)[0, 0] * (6 if family == "binomial" else 1)
    assert draws.mean() == pytest.approx(mean, abs=5 * draws.std() / np.sqrt(len(draws)) + 1e-12)
    if family in ("gaussian", "student_t", "gamma", "beta"):
        lo, hi = (1e-6, 1 - 1e-6) if family == "beta" else (1e-6, 60) if family == "gamma" else (-60, 60)
        grid = np.linspace(lo, hi, 200001)
        dens = np.exp(fam.logpdf(grid[None, :], eta, params, None))[0]
        assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)
    else:
        support = np.arange(0, 7 if family in ("bernoulli", "binomial") else 200, dtype=float)
        if family == "bernoulli":
            support = support[:2]
        total = np.exp(fam.logpdf(support[None, :], eta, params, trials)).sum()
        assert total == pytest.approx(1.0, abs=1e-9)


def test_gaussian_logpdf_is_scipys():
    fam = get_family("gaussian")
    out = fam.logpdf(np.array([1.0, 2.0]), np.array([0.5, 0.5]), {"sigma": 2.0}, None)
    np.testing.assert_allclose(out, stats.norm.logpdf([1.0, 2.0], 0.5, 2.0), rtol=1e-14)


def test_ml_pieces_only_for_glmer_families():
    with pytest.raises(ModelError, match="no maximum-likelihood GLMM"):
        get_family("beta").variance(np.ones(2))
    with pytest.raises(ModelError, match="no likelihood for the"):
        from hierbayes.families import Family

        Family(LINKS["identity"]).logpdf(np.ones(1), np.ones(1), {}, None)


def test_mean_labels_are_emmeans_names():
    """emmeans' column of back-transformed means: prob (binomial, Bernoulli), rate (Poisson), response."""
    labels = {name: get_family(name).mean_label for name in ("binomial", "bernoulli", "poisson", "gaussian", "gamma")}
    assert labels == {"binomial": "prob", "bernoulli": "prob", "poisson": "rate", "gaussian": "response",
                      "gamma": "response"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "name", "link"),
    [
        ("poisson()", "poisson", "log"),
        ('binomial(link = "probit")', "binomial", "probit"),
        ("binomial(link='cloglog')", "binomial", "cloglog"),
        ("Gamma(log)", "gamma", "log"),
        ("Gamma()", "gamma", "inverse"),
        ('poisson(link = "sqrt")', "poisson", "sqrt"),
    ],
)
def test_r_family_calls_as_strings(text, name, link):
    family = get_family(text, r_default=True)
    assert (family.name, family.link.name) == (name, link)


def test_r_family_call_errors():
    with pytest.raises(ModelError, match="R's call with a link only"):
        get_family("binomial(link = probit, x)")
    with pytest.raises(ModelError, match="names the link 'probit' but link='logit'"):
        get_family("binomial(probit)", "logit")
