"""The GLMM engine reaches lme4's tightly converged optimum: PIRLS' warm start, the stage-2 polish,
separated data, and working weights without 0/0.

The external suite (tests/external) compares whole fits with lme4's tight refits (grouseticks with an
uncentred covariate, lme4's tests/offset.R, mastitis with quasi-separation); these tests pin the pieces.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.families import get_family
from hierbayes.glmm.fit import _polish
from hierbayes.glmm.pirls import Pirls
from hierbayes.glmm.response import GlmResponse, glm_response
from hierbayes.optim.convergence import derivatives

pytestmark = pytest.mark.filterwarnings(
    "ignore::hierbayes.errors.OverdispersionWarning", "ignore::hierbayes.errors.SingularFitWarning"
)


@pytest.fixture(scope="module")
def big_counts() -> pd.DataFrame:
    """Counts up to thousands with strong group effects (as lme4's tests/offset.R)."""
    rng = np.random.default_rng(101)
    g = np.repeat(np.arange(26), 40)
    x = rng.uniform(size=len(g))
    u = rng.normal(0, 1.5, 26)
    y = rng.poisson(np.exp(2 + 3 * x + u[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_warm_start_from_a_small_theta_does_not_overflow(big_counts):
    """Modes found at a small theta, carried to a large one: b = Lambda u stays, u scaled by theta would overflow."""
    m = hb.Model("y ~ x + (1 | g) + offset(3 * x)", big_counts, family="poisson")
    resp = glm_response(m.design, m.family)
    warm = Pirls(m.design, resp)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        small = warm.run(np.array([0.05]), None)
        beta = small.beta
        after = warm.run(np.array([3.0]), beta)
    cold = Pirls(m.design, resp).run(np.array([3.0]), beta, warm=False)
    assert np.max(np.abs(small.u[0])) > 5  # large spherical modes at the small theta
    np.testing.assert_allclose(after.eta, cold.eta, rtol=1e-10, atol=1e-10)


def test_zero_prior_weights_give_zero_working_weights_without_nan():
    fam = get_family("poisson", "identity")
    r = GlmResponse(fam, np.array([0.0, 2.0, 0.0]), np.array([0.0, 1.0, 1.0]), np.ones(3), np.zeros(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sqrtw, wres = r.working(np.array([0.0, 2.0, 1.0]), np.array([0.0, 2.0, 1.0]))
    assert sqrtw[0] == 0.0 and wres[0] == 0.0
    assert np.all(np.isfinite(sqrtw)) and np.all(np.isfinite(wres))


def test_exp_overflow_is_inf_without_a_warning():
    r = GlmResponse(get_family("poisson"), np.ones(2), np.ones(2), np.ones(2), np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        mu = r.linkinv(np.array([800.0, 0.0]))
    assert np.isinf(mu[0]) and mu[1] == 1.0


def _badly_scaled(x: np.ndarray) -> float:
    """A smooth function whose curvature differs by 1e7 between directions (an uncentred covariate), with
    a cubic term: central differences with steps of 1e-4 are biased along the steep direction."""
    a, b = x[0] + 450.0 * x[1], x[0] - 2.0
    return 1e3 + 20.0 * a**2 + 30.0 * a**3 + 0.5 * b**2


def test_polish_lands_on_the_minimum_where_lme4s_derivatives_are_biased():
    x_min = np.array([2.0, -2.0 / 450.0])
    x0 = x_min + np.array([1e-3, -1e-5])
    lower = np.full(2, -np.inf)
    g, H = derivatives(_badly_scaled, x0, lower, h=1e-4)
    naive = x0 - np.linalg.solve(H, g)
    x, evals = _polish(_badly_scaled, x0, lower, g, H)
    assert evals > 0
    assert _badly_scaled(x) - _badly_scaled(x_min) < 1e-11
    assert np.max(np.abs(x - x_min) / np.array([1.0, 1 / 450])) < 1e-7
    assert np.max(np.abs(naive - x_min) / np.array([1.0, 1 / 450])) > 1e-5  # lme4's Newton step alone is off


def test_polish_keeps_parameters_on_the_bound_and_skips_flat_directions():
    def f(x):
        return (x[0] + 1.0) ** 2 + (x[1] - 3.0) ** 2 + 1e-14 * x[2]  # x[0] wants -1: bound at 0; x[2] flat

    x0 = np.array([0.0, 2.9, 7.0])
    lower = np.array([0.0, -np.inf, -np.inf])
    g, H = derivatives(f, x0, np.full(3, -np.inf), h=1e-4)
    x, _ = _polish(f, x0, lower, g, H)
    assert x[0] == 0.0 and x[2] == 7.0
    assert x[1] == pytest.approx(3.0, abs=1e-9)


@pytest.mark.filterwarnings("ignore::hierbayes.errors.ConvergenceWarning")
def test_quasi_separated_fit_reaches_the_limit_without_the_separated_rows():
    """A level whose counts are all zero: its effect diverges; the rest equals the fit without its rows."""
    rng = np.random.default_rng(5)
    n = 400
    d = pd.DataFrame({"g": np.repeat(np.arange(40), 10), "k": rng.choice(list("abcd"), n), "x": rng.normal(size=n)})
    u = rng.normal(0, 0.6, 40)
    d["y"] = rng.poisson(np.exp(0.2 + 0.4 * d["x"] + u[d["g"]]))
    d.loc[d["k"] == "a", "y"] = 0
    with pytest.warns(hb.errors.SeparationWarning):
        full = hb.glmer("y ~ k + x + (1 | g)", d, family="poisson")
    rest = d["k"] != "a"
    limit = hb.glmer("y ~ k + x + (1 | g)", d[rest], family="poisson")
    assert -2 * full.loglik == pytest.approx(-2 * limit.loglik, abs=1e-7)
    np.testing.assert_allclose(full.theta.to_numpy(), limit.theta.to_numpy(), rtol=1e-5)
    assert full.fixef["x"] == pytest.approx(limit.fixef["x"], rel=1e-5)
    np.testing.assert_allclose(np.asarray(full.fitted)[rest.to_numpy()], limit.fitted, rtol=1e-5)
