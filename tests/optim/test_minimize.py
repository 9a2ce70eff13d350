"""hierbayes.optim.minimize: BOBYQA (lme4's nloptwrap) and L-BFGS-B (lme4's ``nlminbwrap`` name) reach one optimum.

The lme4 reference for L-BFGS-B on sleepstudy is in tests/fits/test_lme4args.py
(lme4args_reference.json); here the two optimizers are run on the same criteria and
must agree with each other: on a bounded quadratic exactly, on the lmer reference cases
(REML criterion within 1e-9, theta within 1e-6; measured 2e-13 and 1.5e-7) and on the
cbpp GLMM (both stages; deviance within 1e-9, fixed effects and theta within 1e-8).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError
from hierbayes.optim.minimize import minimize_theta
from tests.inference.cache import fitted
from tests.refdata import case_data, case_formula, cases

LMER = cases("lmer")


def _bowl(x: np.ndarray) -> float:
    """A quadratic whose unconstrained minimum (-1, 2, 0.5) has its first coordinate below the bound 0."""
    d = x - np.array([-1.0, 2.0, 0.5])
    return float(d @ np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 3.0]]) @ d)


@pytest.mark.parametrize("method", ["bobyqa", "lbfgsb"])
def test_bounded_quadratic(method: str) -> None:
    lower = np.array([0.0, -np.inf, -np.inf])
    opt = minimize_theta(_bowl, np.array([1.0, 0.0, 1.0]), lower, method=method)
    # the constrained minimum: x0 = 0 on the bound, (x1, x2) minimise the rest given x0 = 0
    H = np.array([[1.0, 0.2], [0.2, 3.0]])
    rest = np.array([2.0, 0.5]) - np.linalg.solve(H, np.array([0.3, 0.0]) * 1.0)
    np.testing.assert_allclose(opt.final, [0.0, *rest], atol=1e-5)
    assert opt.final[0] == 0.0  # exactly on the bound (a singular fit's zero variance)
    assert opt.fmin == pytest.approx(_bowl(np.array([0.0, *rest])), abs=1e-9)
    assert opt.converged and opt.feval > 0
    np.testing.assert_array_equal(opt.initial, [1.0, 0.0, 1.0])
    assert opt.method.startswith("BOBYQA" if method == "bobyqa" else "L-BFGS-B")


def test_unknown_method_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError, match="optimizer must be 'bobyqa' or 'lbfgsb', not 'newton'"):
        minimize_theta(_bowl, np.zeros(3), np.full(3, -np.inf), method="newton")


@pytest.mark.parametrize("case_id", ["penicillin_reml", "hsb_cses_slope_reml", "sim_crossed_reml", "pastes_reml"])
def test_lbfgsb_reaches_the_bobyqa_optimum_of_lmer(case_id: str) -> None:
    case = LMER[case_id]
    a = fitted(case_id)
    b = hb.lmer(case_formula(case), case_data(case["data"]), reml=case["REML"], optimizer="nlminbwrap")
    assert b.optinfo.method.startswith("L-BFGS-B") and b.optinfo.converged
    assert b.optinfo.fmin == pytest.approx(a.optinfo.fmin, abs=1e-9)
    np.testing.assert_allclose(b.theta.to_numpy(), a.theta.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(b.fixef.to_numpy(), a.fixef.to_numpy(), rtol=1e-7, atol=1e-9)


def test_lbfgsb_reaches_the_bobyqa_optimum_of_glmer() -> None:
    cbpp = hb.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        a = hb.glmer(formula, cbpp, family="binomial")
        b = hb.glmer(formula, cbpp, family="binomial", optimizer="nlminbwrap")
    assert "L-BFGS-B" in str(b.optinfo) and "BOBYQA" in str(a.optinfo)
    assert b.deviance == pytest.approx(a.deviance, abs=1e-9)
    np.testing.assert_allclose(b.fixef.to_numpy(), a.fixef.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(b.theta.to_numpy(), a.theta.to_numpy(), atol=1e-8)
