"""A fit's state is what its class documents: inference results are returned, or kept in the documented
attributes (``boot``, ``cache``); no call adds attributes to the instance (issue 18)."""

from __future__ import annotations

import functools
import warnings

import pytest

import hierbayes as hb


def state(fit) -> set[str]:
    """The instance's attributes, less the cached properties (values computed from the estimates, on first use)."""
    cached = {n for c in type(fit).__mro__ for n, v in vars(c).items() if isinstance(v, functools.cached_property)}
    return set(vars(fit)) - cached


@pytest.fixture(scope="module")
def sleep():
    return hb.datasets.load("sleepstudy")


def test_inference_adds_no_attributes_to_an_lmer_fit(sleep) -> None:
    fit = hb.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    before = state(fit)
    assert fit.boot is None and fit.cache == {}
    fit.coef_table()
    fit.coef_table("kenward-roger")
    fit.anova()
    fit.confint("wald")
    prof = fit.profile()
    boot = fit.bootstrap(nsim=4, seed=1, n_jobs=1, progress=False)
    fit.refit_ml()
    assert state(fit) == before
    assert fit.boot is boot and prof is not fit.profile()  # the replicates are kept (documented), profiles not
    assert set(fit.cache) == {"varpar_derivatives", "kr_adjustment"}


def test_the_bootstrap_changes_compare_only_through_fit_boot(sleep) -> None:
    """``intervals="auto"`` uses the fit's replicates when it holds some, and forgets them with ``fit.boot = None``."""
    fit = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    plain = hb.compare(fit).frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.bootstrap(nsim=20, seed=1, n_jobs=1, progress=False)
    assert not hb.compare(fit).frame.equals(plain)
    fit.boot = None
    assert hb.compare(fit).frame.equals(plain)


def test_the_tables_default_intervals_are_kept_in_the_fit_cache(sleep) -> None:
    """hb.compare's default profile intervals are computed once per fit and level, in ``fit.cache``."""
    fit = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    before = state(fit)
    first = hb.compare(fit).frame
    kept = fit.cache["profile_confint"][0.95]
    assert list(kept.index) == [".sig01", ".sigma", "(Intercept)", "Days"]
    assert hb.compare(fit).frame.equals(first) and fit.cache["profile_confint"][0.95] is kept
    hb.emmeans(fit, "Days", at={"Days": [0, 9]})
    assert "emmeans_basis" in fit.cache and state(fit) == before


def test_a_glmer_fit_keeps_no_inference_results() -> None:
    cbpp = hb.datasets.load("cbpp")
    fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    before = state(fit)
    fit.confint("wald")
    fit.confint("boot", nsim=3, seed=1)
    fit.simulate(nsim=2, seed=1)
    assert state(fit) == before
