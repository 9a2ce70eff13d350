"""nlme's ``lme`` spelling (hb.lme): the fit equals nlme::lme's on nlme's own cases.

References: tests/reference/structures_reference.json (tests/reference/make_structures.R, nlme 3.1-162,
tightly converged lme fits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.refdata import ROOT, reference
from tests.structures.nlme_cases import data, structure

NLME = reference("structures")["nlme"]


def _lme(case: dict) -> hb.fits.LmerFit:
    """nlme's call of a reference case, spelled with hb.lme."""
    return hb.lme(case["fixed"], data(case["data"]), random=case["random"], method=case["method"],
                  correlation=structure(case["correlation"]), weights=structure(case["weights"]))  # fmt: skip


def _cases(*parts: str) -> list[str]:
    return [k for k, c in NLME.items() if all(p in c["call"] for p in parts)]


@pytest.mark.parametrize(
    "key",
    _cases("data = ovary,", "corAR1(form = ~1 | Mare)", '"REML"')
    + _cases("varIdent(form = ~1 | QB))", '"ML"', "random = ~pressure")
    + _cases("data = orthodont,", '"REML"')[:1],
)
def test_lme_matches_nlme(key):
    case = NLME[key]
    fit = _lme(case)
    assert fit.loglik == pytest.approx(case["logLik"], rel=1e-6)
    beta = np.array(list(case["beta"].values()))
    assert np.max(np.abs(fit.fixef.to_numpy() - beta) / np.maximum(np.abs(beta), 1)) < 1e-5  # as test_nlme_reference
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-4)
    assert fit.reml == (case["method"] == "REML")


@pytest.mark.slow
@pytest.mark.parametrize("key", [k for k, c in NLME.items() if "corARMA" not in c["call"]])
def test_every_nlme_case_through_lme_is_the_lmer_fit(key):
    """hb.lme's translation of nlme's call gives the fit tests/structures checks against nlme."""
    case = NLME[key]
    fit = _lme(case)
    bars = case["random"].strip()[1:].strip()
    same = hb.lmer(f"{case['fixed']} + ({bars})", data(case["data"]), REML=case["method"] == "REML",
                   correlation=structure(case["correlation"]), variance=structure(case["weights"]))  # fmt: skip
    assert fit.objective == pytest.approx(same.objective, rel=1e-12)


def test_lme_nested_dict_is_nlme_list():
    pixel = pd.read_csv(ROOT / "tests/reference/data/pixel.csv")
    fit = hb.lme("pixel ~ day + I(day^2)", pixel, random={"Dog": "~ day", "Side": "~ 1"})
    same = hb.lmer("pixel ~ day + I(day^2) + (day | Dog) + (1 | Dog:Side)", pixel)
    assert fit.objective == pytest.approx(same.objective, rel=1e-12)
    assert fit.formula == "pixel ~ day + I(day^2) + (day | Dog) + (1 | Dog:Side)"


def test_lme_varfixed_is_inverse_prior_weights():
    sleep = hb.datasets.load("sleepstudy").assign(v=lambda d: 1.0 + d.Days)
    fit = hb.lme("Reaction ~ Days", sleep, random="~ 1 | Subject", weights="~ v")
    same = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=1.0 / sleep.v.to_numpy())
    assert fit.objective == pytest.approx(same.objective, rel=1e-12)


def test_lme_bad_input_names_the_argument():
    sleep = hb.datasets.load("sleepstudy")
    with pytest.raises(hb.ArgumentError, match="random= is needed"):
        hb.lme("Reaction ~ Days", sleep)
    with pytest.raises(hb.ArgumentError, match="grouping factor"):
        hb.lme("Reaction ~ Days", sleep, random="~ Days")
    with pytest.raises(hb.ArgumentError, match="method must be 'REML' or 'ML'"):
        hb.lme("Reaction ~ Days", sleep, random="~ 1 | Subject", method="bayes")
    with pytest.raises(hb.ArgumentError, match="variance function"):
        hb.lme("Reaction ~ Days", sleep, random="~ 1 | Subject", weights=np.ones(180))
    with pytest.raises(hb.ArgumentError, match="naming a column"):
        hb.lme("Reaction ~ Days", sleep, random="~ 1 | Subject", weights="~ nosuch")
    with pytest.raises(hb.DataError, match="must be positive; row 0"):
        hb.lme("Reaction ~ Days", sleep, random="~ 1 | Subject", weights="~ Days")
    missing = sleep.assign(Reaction=sleep.Reaction.where(sleep.Days != 2))
    with pytest.raises(hb.HierbayesError):  # nlme's na.fail
        hb.lme("Reaction ~ Days", missing, random="~ 1 | Subject")
    assert hb.lme("Reaction ~ Days", missing, random="~ 1 | Subject", na_action="na.omit").nobs == 162
