"""Partial marginalization (only the first factor integrated out): likelihood, conditional draws, choice, posterior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg as sla
from scipy import stats

import hierbayes as hb
from hierbayes.bayesian import Prior, build_pymc_model, partial
from hierbayes.bayesian.model import PARTIAL_COST_MIN, full_marginal_cost, resolve_marginalize
from hierbayes.bayesian.partial import choose_marginal, draw_marginalized, partial_loglik, partial_split
from tests.bayesian.conftest import assert_converged, quiet_fit
from tests.bayesian.test_agreement import Z_MAX, _zscores
from tests.bayesian.test_blocked import _design, _params


def _marginalize(model, how):
    return resolve_marginalize(model.design, model.family, how)


def _dense(design, marginal, Ls):
    """Z_M, Z_S and the prior covariance of the integrated-out effects, dense."""
    sampled = [i for i in range(len(design.blocks)) if i not in marginal]
    Zm = np.hstack([design.blocks[i].z_sparse().toarray() for i in marginal])
    Zs = np.hstack([design.blocks[i].z_sparse().toarray() for i in sampled])
    covs = [np.kron(np.eye(design.blocks[i].nlevels), L @ L.T) for i, L in zip(marginal, Ls, strict=True)]
    Sig = sla.block_diag(*covs)
    return Zm, Zs, Sig


def _compiled(split, ks):
    beta, sigma, b_s = pt.dvector("beta"), pt.dscalar("sigma"), pt.dvector("b_s")
    Ls = [pt.dmatrix(f"L{i}") for i in range(len(ks))]
    ll = partial_loglik(split, beta, sigma, Ls, b_s)
    return pytensor.function([beta, sigma, b_s, *Ls], [ll, *pytensor.grad(ll, [beta, sigma, b_s, *Ls])])


def _three_factor_design():
    return hb.Model("y ~ x + (1 | s) + (1 | r) + (1 + x | t)", _crossed(12, n_first=25, seed=3, n_small=4)).design


SPLITS = {  # (design, integrated-out factors): the PyTensor graph (first factor only) and the NumPy Op
    "crossed_graph": (lambda: _design("crossed"), (0,)),
    "nested_graph": (lambda: _design("nested"), (0,)),
    "wide_first_graph": (lambda: _design("wide_first"), (0,)),
    "first_and_small_op": (_three_factor_design, (0, 2)),
}


def _setup(name, seed):
    make, marginal = SPLITS[name]
    d = make()
    rng = np.random.default_rng(seed)
    beta, sigma, Ls = _params(d, rng)
    split = partial_split(d, marginal)
    assert split.marginal == marginal
    b_s = rng.normal(size=split.qs)
    return d, split, beta, sigma, [Ls[i] for i in marginal], b_s


@pytest.mark.parametrize("name", list(SPLITS))
def test_partial_loglik_is_the_gaussian_density_given_the_sampled_effects(name):
    d, split, beta, sigma, Ls, b_s = _setup(name, 6)
    Zm, Zs, Sig = _dense(d, split.marginal, Ls)
    V = sigma**2 * np.eye(d.n) + Zm @ Sig @ Zm.T
    resid = d.y - d.X @ beta - Zs @ b_s
    f = _compiled(split, [L.shape[0] for L in Ls])
    ll, dbeta, dsigma, db, *dLs = f(beta, sigma, b_s, *Ls)
    assert ll == pytest.approx(stats.multivariate_normal(np.zeros(d.n), V).logpdf(resid), rel=1e-10)
    alpha = np.linalg.solve(V, resid)  # the gradient in the mean: V^-1 (y - mean)
    np.testing.assert_allclose(db, Zs.T @ alpha, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dbeta, d.X.T @ alpha, rtol=1e-8, atol=1e-10)
    h = 1e-6
    assert dsigma == pytest.approx((f(beta, sigma + h, b_s, *Ls)[0] - f(beta, sigma - h, b_s, *Ls)[0]) / (2 * h),
                                   rel=1e-5)  # fmt: skip
    for g, L in enumerate(Ls):
        i, j = L.shape[0] - 1, 0
        up, dn = [x.copy() for x in Ls], [x.copy() for x in Ls]
        up[g][i, j] += h
        dn[g][i, j] -= h
        num = (f(beta, sigma, b_s, *up)[0] - f(beta, sigma, b_s, *dn)[0]) / (2 * h)
        assert dLs[g][i, j] == pytest.approx(num, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ["crossed_graph", "wide_first_graph", "first_and_small_op"])
def test_integrated_out_effects_are_drawn_from_their_exact_conditional(name):
    d, split, beta, sigma, Ls, b_s = _setup(name, 7)
    Zm, Zs, Sig = _dense(d, split.marginal, Ls)
    # b_M | y, b_S ~ N(C Z_M'r / sigma^2, C), C = (Z_M'Z_M / sigma^2 + Sig^-1)^-1
    C = np.linalg.inv(Zm.T @ Zm / sigma**2 + np.linalg.inv(Sig))
    mean = C @ Zm.T @ (d.y - d.X @ beta - Zs @ b_s) / sigma**2
    n = 3000
    tiled = (np.tile(beta, (n, 1)), np.full(n, sigma), [np.tile(L, (n, 1, 1)) for L in Ls], np.tile(b_s, (n, 1)))
    draws = np.hstack([x.reshape(n, -1) for x in draw_marginalized(split, *tiled, np.random.default_rng(8))])
    sd = np.sqrt(np.diag(C))
    assert np.abs((draws.mean(axis=0) - mean) / (sd / np.sqrt(n))).max() < 4.5
    assert np.abs(draws.std(axis=0) / sd - 1).max() < 0.1
    i, j = 0, 1  # a covariance: two terms of a level, or two levels sharing data
    emp = np.cov(draws[:, i], draws[:, j])[0, 1]
    assert emp == pytest.approx(C[i, j], abs=5 * np.sqrt(C[i, i] * C[j, j] / n))


def _crossed(n_rest: int, n_first: int = 30, seed: int = 0, n: int = 400, n_small: int = 4) -> pd.DataFrame:
    """s (n_first levels) crossed with r (n_rest) and a small factor t (n_small levels, with a slope on x)."""
    rng = np.random.default_rng(seed)
    s, r, t = rng.integers(0, n_first, n), rng.integers(0, n_rest, n), rng.integers(0, n_small, n)
    x = rng.normal(size=n)
    y = (1 + (0.5 + rng.normal(0, 0.2, n_small)[t]) * x + rng.normal(0, 0.8, n_first)[s] + rng.normal(0, 0.5, n_rest)[r]
         + rng.normal(0, 0.4, n_small)[t] + rng.normal(0, 1, n))  # fmt: skip
    return pd.DataFrame({"y": y, "x": x, "s": [f"s{i}" for i in s], "r": [f"r{i}" for i in r],
                         "t": [f"t{i}" for i in t]})  # fmt: skip


def test_marginalize_choice():
    formula = "y ~ x + (1 | s) + (1 | r) + (1 | t)"
    small = hb.Model(formula, _crossed(8))
    large = hb.Model(formula, _crossed(250, n_first=1000, n=6000))
    assert [b.group for b in large.design.blocks] == ["s", "r", "t"]
    assert full_marginal_cost(small.design) < PARTIAL_COST_MIN < full_marginal_cost(large.design)
    assert _marginalize(small, None) == _marginalize(small, True) == "full"
    assert _marginalize(large, None) == _marginalize(large, True) == "first"
    assert _marginalize(large, "full") == "full" and _marginalize(large, "First") == "first"
    assert _marginalize(small, False) == "none"
    # the 4-level t is integrated out with the first factor; r is sampled
    assert choose_marginal(large.design) == (0, 2)
    # nothing left to sample (one factor, or only small ones): the same model as "full"
    assert _marginalize(small, "first") == "full"
    assert _marginalize(hb.Model("y ~ x + (1 | s)", _crossed(8)), "first") == "full"
    with pytest.raises(hb.ModelError, match="marginalize must be"):
        _marginalize(small, "partial")
    counts = hb.Model(formula, _crossed(8).assign(y=lambda df: (df.y > 1).astype(int)), family="bernoulli")
    with pytest.raises(hb.ModelError, match="exact only for the gaussian family"):
        _marginalize(counts, "first")


PRIORS = {
    "b": Prior("Normal", mu=0, sigma=3),
    "sd": Prior("HalfNormal", sigma=2),
    "sigma": Prior("HalfNormal", sigma=3),
}
GETTERS = [
    lambda f: f.fixef_draws(),
    lambda f: f.sd_draws("s"),
    lambda f: f.sd_draws("r"),
    lambda f: f.sd_draws("t"),
    lambda f: f.sigma_draws(),
    lambda f: f.ranef_draws("s"),  # always drawn from the exact conditional after sampling
    lambda f: f.ranef_draws("r"),  # sampled by NUTS
    lambda f: f.ranef_draws("t"),
]


@pytest.fixture(scope="module")
def crossed_model() -> hb.Model:
    return hb.Model("y ~ x + (1 | s) + (1 | r) + (1 | t)", _crossed(12, n_first=25, seed=3), priors=PRIORS)


def _partial(model, small_cost_max: float, seed: int, expect: tuple[int, ...], centered: bool | None):
    """A partially marginalized fit with the first factor alone (graph) or with the small t too (Op)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(partial, "SMALL_COST_MAX", small_cost_max)
        assert choose_marginal(model.design) == expect
        pmm = build_pymc_model(model, marginalize="first", centered=centered)
        free = {v.name for v in pmm.free_RVs}
        prefix = "z__" if centered is False else "r__"  # auto: centered here (12 and 4 levels, 400 rows)
        groups = [b.group for b in model.design.blocks]
        assert {prefix + g for i, g in enumerate(groups) if i not in expect} <= free
        assert not any(p + groups[i] in free for i in expect for p in ("z__", "r__"))
        # sampled non-centered, the 4-level t meets a funnel (the reason small factors are integrated out by default)
        fit = quiet_fit(model, draws=1200, tune=500, chains=2, cores=1, random_seed=seed, marginalize="first",
                        centered=centered, target_accept=0.95 if centered is False else None)  # fmt: skip
    assert fit.info.marginalization == "first" and fit.info.marginalized
    assert_converged(fit)  # 800 draws gave a bulk ESS of 356
    return fit


@pytest.fixture(scope="module")
def partial_fits(crossed_model):
    return [_partial(crossed_model, 0.0, 31, (0,), False), _partial(crossed_model, 1000.0, 34, (0, 2), None)]


def _same_posterior(a, b) -> None:
    assert set(a.posterior.data_vars) == set(b.posterior.data_vars)
    for get in GETTERS:
        assert np.nanmax(_zscores(get(a), get(b))) < Z_MAX


def test_partial_posteriors_equal_full_posterior(crossed_model, partial_fits):
    """Same priors, same data: integrating out some factors or all of them gives one posterior."""
    full = quiet_fit(crossed_model, draws=800, tune=400, chains=2, cores=1, random_seed=32, marginalize="full")
    assert full.info.marginalization == "full"
    assert_converged(full)
    for fit in partial_fits:
        _same_posterior(fit, full)
        # the spread of the conditionally drawn first factor and of the variance parameters agree too
        for get in (lambda f: f.ranef_draws("s"), lambda f: f.sd_draws("r"), lambda f: f.sigma_draws()):
            ratio = get(fit).std(("chain", "draw")) / get(full).std(("chain", "draw"))
            np.testing.assert_allclose(np.asarray(ratio.values, dtype=float), 1.0, atol=0.15)


@pytest.mark.slow
def test_partial_posteriors_equal_unmarginalized_posterior(crossed_model, partial_fits):
    none = quiet_fit(crossed_model, draws=800, tune=600, chains=2, cores=1, random_seed=33, marginalize=False,
                     target_accept=0.95)  # fmt: skip
    assert none.info.marginalization == "none"
    assert_converged(none)
    for fit in partial_fits:
        _same_posterior(fit, none)
