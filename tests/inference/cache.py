"""Fits of the reference cases, made once per test session (MixedModels.jl's model cache)."""

from __future__ import annotations

import dataclasses
import warnings
from functools import cache

import hierbayes as hb
from hierbayes.fits.lmer import LmerFit
from tests.refdata import case_data, case_formula, cases, named

INFERENCE = cases("inference")
LMER = cases("lmer")


@cache
def fitted(case_id: str) -> LmerFit:
    """hierbayes fit of a reference case (by REML or ML as the case says)."""
    case = INFERENCE.get(case_id) or LMER[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.lmer(case_formula(case), case_data(case["data"]), reml=case["REML"])


@cache
def at_lme4_estimates(case_id: str) -> LmerFit:
    """The same fit moved to lme4's theta and sigma (to check algorithms free of optimizer differences)."""
    fit, ref = fitted(case_id), LMER[case_id]
    theta = named(ref["theta"]).to_numpy()
    from hierbayes.reml.fit import estimates_at

    est = estimates_at(fit.devfun, theta, fit.estimates.opt)
    est = dataclasses.replace(est, sigma=float(ref["sigma"]), vcov=est.vcov * (ref["sigma"] / est.sigma) ** 2)
    return LmerFit(fit.model, est, warn=False)
