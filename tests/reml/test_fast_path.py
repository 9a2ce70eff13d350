"""The blocked-Cholesky fast path against dense direct computations (issue 8's scaled-down checks).

Designs exercise every branch of the engine: a diagonal first block with k = 1, 2 and 3 columns,
remaining blocks with k = 1 (diagonal scaling) and k = 2 (block sandwich), crossed and nested
factors, and a 2,000-row crossed design like InstEval's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hierbayes.design import build_design
from hierbayes.linalg import ThetaLayout, block_lambda
from hierbayes.reml import LmmObjective, estimates_at, fit_lmm
from hierbayes.reml.direct import direct_criterion


def _crossed(n: int, n_a: int, n_b: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 1, n_a)[a] + rng.normal(0, 0.7, n_b)[b] * (1 + 0.3 * x) + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "a": a, "b": b, "c": rng.integers(0, 5, n)})


CASES = {
    "instEval-like 2000 rows": ("y ~ 1 + x + (1 | a) + (1 | b) + (1 | c)", _crossed(2000, 300, 80, 1)),
    "slope in the rest block": ("y ~ x + (1 | a) + (1 + x | b)", _crossed(600, 120, 15, 2)),
    "k = 2 first block, crossed": ("y ~ x + (x | a) + (1 | b)", _crossed(600, 60, 20, 3)),
    "k = 3 first block": ("y ~ x + (1 + x + z | a)", _crossed(500, 40, 5, 4)),
    "independent bars": ("y ~ x + (x || a) + (z || b)", _crossed(500, 40, 12, 5)),
    "nested": ("y ~ x + (1 | a/c)", _crossed(500, 20, 5, 6)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("reml", [True, False])
def test_objective_equals_dense_computation(name: str, reml: bool) -> None:
    formula, data = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(formula, data)
    rng = np.random.default_rng(0)
    layout = ThetaLayout(d.blocks)
    objective = LmmObjective(d, reml)
    for _ in range(3):
        theta = np.where(layout.lower == 0, rng.uniform(0.1, 1.5, layout.size), rng.normal(0, 0.4, layout.size))
        assert objective(theta) == pytest.approx(direct_criterion(d, theta, reml), rel=1e-9)


@pytest.mark.parametrize("name", list(CASES))
def test_modes_and_conditional_variances_equal_dense_computation(name: str) -> None:
    formula, data = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(formula, data)
        est = fit_lmm(d)
    # dense: b = Lambda (Lambda'Z'Z Lambda + I)^{-1} Lambda'Z'(y - X beta); condVar = sigma^2 Lambda M^{-1} Lambda'
    layout = ThetaLayout(d.blocks)
    lams = layout.lambdas(est.theta)
    Lam = sp.block_diag([block_lambda(lam, b.nlevels) for lam, b in zip(lams, d.blocks, strict=True)]).toarray()
    Z = d.z_sparse().toarray()
    M = Lam.T @ Z.T @ Z @ Lam + np.eye(Lam.shape[0])
    Minv = np.linalg.inv(M)
    b = Lam @ Minv @ Lam.T @ Z.T @ (d.y - d.X @ est.beta)
    cov = est.sigma**2 * Lam @ Minv @ Lam.T
    start = 0
    for block, bb, cv in zip(d.blocks, est.b, est.condvar, strict=True):
        sl = slice(start, start + block.q)
        np.testing.assert_allclose(bb.ravel(), b[sl], rtol=1e-7, atol=1e-9 * np.abs(b).max())
        dense = cov[sl, sl].reshape(block.nlevels, block.k, block.nlevels, block.k)
        per_level = np.stack([dense[i, :, i, :] for i in range(block.nlevels)])
        np.testing.assert_allclose(cv, per_level, rtol=1e-6, atol=1e-10 * np.abs(cov).max())
        start += block.q


def test_fixed_effect_covariance_equals_gls() -> None:
    formula, data = CASES["instEval-like 2000 rows"]
    d = build_design(formula, data)
    est = fit_lmm(d)
    layout = ThetaLayout(d.blocks)
    lams = layout.lambdas(est.theta)
    Lam = sp.block_diag([block_lambda(lam, b.nlevels) for lam, b in zip(lams, d.blocks, strict=True)]).toarray()
    ZL = d.z_sparse().toarray() @ Lam
    V = est.sigma**2 * (ZL @ ZL.T + np.eye(d.n))
    Vi_X = np.linalg.solve(V, d.X)
    np.testing.assert_allclose(est.vcov, np.linalg.inv(d.X.T @ Vi_X), rtol=1e-7)
    beta = np.linalg.solve(d.X.T @ Vi_X, Vi_X.T @ d.y)
    np.testing.assert_allclose(est.beta, beta, rtol=1e-8)
    again = estimates_at(LmmObjective(d), est.theta, est.opt)
    np.testing.assert_array_equal(again.beta, est.beta)
