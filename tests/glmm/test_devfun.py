"""The deviance functions at fixed parameters: Laplace (nAGQ = 1), AGQ and nAGQ = 0, against lme4's devfun.

The values are glmer(..., devFunOnly = TRUE) with tolPwrss = 1e-12
(glmm_extra_reference.json); with glmer's default 1e-7 the same devfun is
only accurate to ~1e-3 (glmer_reference.json's cbpp devfun: 184.053133 at
the point where the converged value is 184.052572). Even at 1e-12 lme4
stops on the change of the penalized deviance, which is flat at the mode,
and takes log|L| from the previous iteration's weights: its values are
within ~1e-8 relative (5e-6 absolute for the probit model, where PIRLS
converges linearly); hierbayes iterates until eta moves by < 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.errors import ModelError
from hierbayes.glmm import AgqDeviance, LaplaceDeviance, Pirls, ThetaDeviance, gh_rule, glm_response, make_devfun
from tests.glmm.cache import GLMER, tight
from tests.refdata import case_data

DEVFUN_CASES = [k for k, v in tight()["cases"].items() if v.get("devfun")]


def _model(case_id: str) -> hb.Model:
    case = GLMER["cbpp_laplace" if case_id.startswith("cbpp") else case_id]
    return hb.Model(case["formula"], case_data(case["data"]), family=case["family"], link=case["link"])


@pytest.mark.parametrize("case_id", DEVFUN_CASES)
@pytest.mark.parametrize("point", ["fitted", "theta1_beta_hat"])
def test_devfun_values(case_id: str, point: str) -> None:
    ref = tight()["cases"][case_id]
    m = _model(case_id)
    f = make_devfun(m.design, glm_response(m.design, m.family), nAGQ=ref["nAGQ"])
    assert f(ref["devfun"][point]["par"]) == pytest.approx(ref["devfun"][point]["value"], rel=1e-8)


def test_devfun_is_independent_of_history() -> None:
    """PIRLS warm-starts from the last modes, but converges to the same value (smooth for finite differences)."""
    m = _model("cbpp_laplace")
    resp = glm_response(m.design, m.family)
    par = np.array(tight()["cases"]["cbpp_laplace"]["devfun"]["fitted"]["par"])
    fresh = LaplaceDeviance(m.design, resp)(par)
    warm = LaplaceDeviance(m.design, resp)
    warm(par * 1.5)
    warm([3.0, 0.0, 0.0, 0.0, 0.0])
    assert warm(par) == pytest.approx(fresh, abs=1e-10)


def test_theta_deviance_profiles_beta() -> None:
    m = _model("cbpp_laplace")
    resp = glm_response(m.design, m.family)
    ref = tight()["cases"]["cbpp_nagq0"]
    theta = list(ref["theta"].values())
    f = ThetaDeviance(m.design, resp)
    assert f(theta) == pytest.approx(ref["minus2logLik"], rel=1e-9)
    np.testing.assert_allclose(f.last.beta, list(ref["beta"].values()), rtol=1e-6)
    # the joint modes minimise the nAGQ = 1 deviance's penalized part: fixing beta there reproduces them
    res = Pirls(m.design, resp).run(np.array(theta), f.last.beta)
    np.testing.assert_allclose(res.u[0], f.last.u[0], atol=1e-8)


def test_agq_with_one_node_is_laplace() -> None:
    """lme4's AGQ formula uses deviance residuals; with one node it differs from Laplace by a constant."""
    m = _model("cbpp_laplace")
    resp = glm_response(m.design, m.family)
    lap, agq1 = LaplaceDeviance(m.design, resp), AgqDeviance(m.design, resp, nAGQ=1)
    p1, p2 = np.array([0.6, -1.4, -1.0, -1.1, -1.6]), np.array([1.1, -1.2, -0.8, -1.0, -1.2])
    sat = lap(p1) - agq1(p1)
    assert lap(p2) - agq1(p2) == pytest.approx(sat, abs=1e-9)


def test_gh_rule_integrates_normal_moments() -> None:
    z, w = gh_rule(7)
    assert w.sum() == pytest.approx(1.0)
    assert np.sum(w * z**2) == pytest.approx(1.0)
    assert np.sum(w * z**4) == pytest.approx(3.0)


def test_agq_needs_a_single_scalar_term() -> None:
    case = GLMER["sim_binary_slope"]
    with pytest.raises(ModelError, match="single, scalar random-effects term"):
        hb.glmer(case["formula"], case_data(case["data"]), nAGQ=5)
    case = GLMER["grouse_nested"]
    with pytest.raises(ModelError, match="single, scalar"):
        hb.glmer(case["formula"], case_data(case["data"]), family="poisson", nAGQ=3)
