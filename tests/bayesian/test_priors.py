"""Default priors, overrides by name, and the errors for names the model does not have."""

from __future__ import annotations

import pytest

import hierbayes as hb
from hierbayes.bayesian import Prior, describe_priors
from hierbayes.bayesian.priors import resolve_priors


def _resolve(m):
    """The priors a Bayesian fit of the model m uses (the engine takes its design, family and overrides)."""
    return resolve_priors(m.design, m.family, m.priors)


@pytest.fixture(scope="module")
def sleep():
    return hb.datasets.load("sleepstudy")


def test_every_parameter_has_a_default_scaled_to_the_data(sleep):
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep)
    table = describe_priors(m)
    assert list(table.index) == [
        "b[(Intercept)]", "b[Days]", "sd[Subject:(Intercept)]", "sd[Subject:Days]", "eta[Subject]", "sigma"
    ]  # fmt: skip
    assert set(table["source"]) == {"default"}
    p = _resolve(m)
    sd_y = sleep["Reaction"].std()
    assert p["sigma"].kwargs["sigma"] == pytest.approx(sd_y)
    assert p["b[Days]"].kwargs["sigma"] == pytest.approx(2.5 * sd_y / sleep["Days"].std())
    assert p["sd[Subject:Days]"].kwargs["sigma"] == pytest.approx(sd_y / sleep["Days"].std())
    assert p["b[(Intercept)]"].kwargs["mu"] == pytest.approx(sleep["Reaction"].mean())
    # doubling y doubles every scale
    m2 = hb.Model("Reaction ~ Days + (Days | Subject)", sleep.assign(Reaction=2 * sleep["Reaction"]))
    assert _resolve(m2)["sd[Subject:(Intercept)]"].kwargs["sigma"] == pytest.approx(
        2 * p["sd[Subject:(Intercept)]"].kwargs["sigma"]
    )


def test_link_scale_priors_for_a_logit_model():
    cbpp = hb.datasets.load("cbpp")
    m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    p = _resolve(m)
    assert "sigma" not in p.priors
    assert p["sd[herd:(Intercept)]"].kwargs["sigma"] == 1.0


def test_overrides_by_name_and_shortcuts(sleep):
    m = hb.Model(
        "Reaction ~ Days + (Days | Subject)",
        sleep,
        priors={
            "sd": Prior("HalfNormal", sigma=5.0),
            "sd[Subject:Days]": Prior("HalfNormal", sigma=2.0),
            "Days": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 10},
            "eta": 4,
            "sigma": Prior("Exponential", lam=0.1),
        },
    )
    p = _resolve(m)
    assert str(p["sd[Subject:(Intercept)]"]) == "HalfNormal(sigma=5)"
    assert str(p["sd[Subject:Days]"]) == "HalfNormal(sigma=2)"  # the specific name wins
    assert p["b[Days]"].dist == "StudentT"
    assert p["eta[Subject]"].kwargs == {"eta": 4.0}
    assert p.source["sigma"] == "user" and p.source["b[(Intercept)]"] == "default"


def test_unknown_prior_name_lists_the_valid_ones(sleep):
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep, priors={"Dayz": Prior("Normal", sigma=1)})
    with pytest.raises(hb.ModelError, match=r"no parameter named 'Dayz'.*b\[Days\].*sd\[Subject:Days\]"):
        _resolve(m)


def test_unknown_distribution_and_wrong_support_are_errors(sleep):
    with pytest.raises(hb.ModelError, match="unknown prior distribution 'Normall'"):
        Prior("Normall", sigma=1)
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep, priors={"sigma": Prior("Normal", mu=0, sigma=1)})
    with pytest.raises(hb.ModelError, match="sigma is positive"):
        _resolve(m)
    m = hb.Model("Reaction ~ Days + (Days || Subject)", sleep, priors={"eta": 2})
    with pytest.raises(hb.ModelError, match="no parameter named 'eta'"):
        _resolve(m)


def test_independent_bars_have_no_lkj(sleep):
    m = hb.Model("Reaction ~ Days + (Days || Subject)", sleep)
    assert not any(n.startswith("eta") for n in describe_priors(m).index)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Prior("Normal", mu=0, sd=10), r"Normal has no parameter 'sd' \(did you mean sigma=\?\); it takes mu"),
        (lambda: Prior("HalfCauchy"), r"HalfCauchy needs beta"),
        (lambda: Prior("StudentT", mu=0, sigma=1), r"StudentT needs nu"),
        (lambda: Prior("Gamma", alpha=2), r"Gamma needs alpha\+beta or mu\+sigma"),
        (lambda: Prior("HalfNormal", sigma="big"), r"sigma must be a number, not 'big'"),
        (lambda: Prior("HalfNormal", sigma=-1), r"sigma must be positive, not -1"),
        (lambda: Prior("Normal", mu=0, sigma=0), r"sigma must be positive, not 0"),
        (lambda: Prior("Normal", mu=float("nan"), sigma=1), r"mu must be finite"),
        (lambda: Prior("Normal", sigma=1, tau=1), r"give sigma or tau, not both"),
        (lambda: Prior("Uniform", lower=2, upper=1), r"lower must be below upper"),
        (lambda: Prior("Exponential", lam=True), r"lam must be a number, not True"),
    ],
)
def test_prior_parameters_are_checked_when_made(make, message):
    with pytest.raises(hb.ModelError, match=message):
        make()


def test_bad_priors_argument_and_dict_priors_name_the_parameter(sleep):
    formula = "Reaction ~ Days + (Days | Subject)"
    with pytest.raises(hb.ModelError, match=r"priors must be a dict of parameter name -> prior.*not a list"):
        hb.Model(formula, sleep, priors=[Prior("Normal", sigma=1)])
    with pytest.raises(hb.ModelError, match="the keys are parameter names"):
        hb.Model(formula, sleep, priors={1: Prior("Normal", sigma=1)})
    m = hb.Model(formula, sleep, priors={"Days": {"dist": "Normal", "sd": 5}})
    with pytest.raises(hb.ModelError, match=r"prior for 'Days': prior Normal\(sd=5\): Normal has no parameter 'sd'"):
        _resolve(m)
    m = hb.Model(formula, sleep, priors={"sigma": {"dist": "HalfNormal", "sigma": -2}})
    with pytest.raises(hb.ModelError, match=r"prior for 'sigma'.*sigma must be positive"):
        _resolve(m)
    # through hb.bayes: the error comes before anything is built or compiled
    with pytest.raises(hb.ModelError, match="no parameter named 'Dayz'"):
        hb.bayes(formula, sleep, priors={"Dayz": Prior("Normal", sigma=1)}, draws=10, tune=10)
