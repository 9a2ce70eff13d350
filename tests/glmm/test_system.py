"""The GLMM's weighted system: the compiled and the NumPy cross-products give the same factor and solution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.glmm.pirls import Pirls
from hierbayes.glmm.response import glm_response


def _crossed_slope_data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    g = rng.integers(0, 25, n)
    h = rng.integers(0, 8, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.8, 25)[g] + rng.normal(0, 0.3, 25)[g] * x + rng.normal(0, 0.5, 8)[h]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h]})


CASES = [
    ("y ~ x + (x | g) + (1 | h)", _crossed_slope_data, "poisson"),
    ("y ~ x + (1 | g) + (x | h)", _crossed_slope_data, "poisson"),
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", lambda: hb.datasets.load("cbpp"), "binomial"),
]


@pytest.mark.parametrize("formula,data,family", CASES)
@pytest.mark.parametrize("joint", [True, False])
def test_compiled_equals_numpy(formula, data, family, joint):
    m = hb.Model(formula, data(), family=family)
    response = glm_response(m.design, m.family)
    pirls = Pirls(m.design, response)
    theta = pirls.layout.start * 0.7 + 0.05
    res = pirls.run(theta, None)
    system = pirls._systems[joint]
    sqrtw, wres = response.working(res.eta, res.mu)
    z = res.eta + wres
    lams = pirls.layout.lambdas(theta)
    a = system._factor_compiled(lams, z, sqrtw)
    b = system._factor_numpy(lams, z, sqrtw)
    assert a.logdet_L == pytest.approx(b.logdet_L, rel=1e-12)
    for x, y in [(a.u1, b.u1), (a.ur, b.ur), (a.beta, b.beta), (a.RX, b.RX)]:
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("poisson", "log")])
def test_compiled_rows_equal_family_formulas(family, link):
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"g": rng.integers(0, 10, n).astype(str), "x": rng.normal(size=n)})
    df["y"] = rng.binomial(1, 0.4, n) if family == "binomial" else rng.poisson(2.0, n)
    m = hb.Model("y ~ x + (1 | g)", df, family=family, link=link)
    plain = glm_response(m.design, m.family)
    fast = glm_response(m.design, m.family)
    fast.compile()
    assert fast._kernels is not None
    eta = np.concatenate([rng.normal(0, 2, n - 4), [-800.0, 800.0, 40.0, -40.0]])
    if family == "poisson":
        eta[-3] = 5.0  # exp(800) overflows in both; keep the rows comparable
    np.testing.assert_allclose(fast.linkinv(eta), plain.linkinv(eta), rtol=1e-14)
    mu = plain.linkinv(eta)
    for u, v in zip(fast.working(eta, mu), plain.working(eta, mu), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-13)
    assert fast.deviance(mu) == pytest.approx(plain.deviance(mu), rel=1e-13)
    assert fast.aic(mu) == pytest.approx(plain.aic(mu), rel=1e-13)
