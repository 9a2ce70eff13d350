"""Property-based tests of REML/ML fits (hypothesis) on random small designs.

* The objective (``LmmObjective``) equals the dense GLS computation
  (``direct_criterion``) and a multivariate-normal log-density written here
  with scipy.stats from the raw data, at random theta (zeros included).
* Estimates are invariant to the row order and to relabeling levels.
* Scaling y by c scales sigma, the random-effect SDs and the fixed effects by
  c (theta is unchanged, the criterion moves by 2 (n - p) log c under REML);
  adding a constant to y moves only the intercept.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.reml import LmmObjective, estimates_at
from hierbayes.reml.direct import direct_criterion

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    """A random data set and the formula that fits it."""

    data: pd.DataFrame
    formula: str
    terms: dict[str, list[list[str]]]  # grouping column -> its bars, each a list of "1" / "x"


_BARS = {"1": [["1"]], "x": [["1", "x"]], "xx": [["1"], ["x"]], "0x": [["x"]], "1+0x": [["1"], ["x"]]}
_TEXT = {
    "1": "(1 | {g})",
    "x": "(x | {g})",
    "xx": "(x || {g})",
    "0x": "(0 + x | {g})",
    "1+0x": "(1 | {g}) + (0 + x | {g})",
}


@st.composite
def cases(draw) -> Case:
    """1-2 grouping factors (crossed or nested), random intercepts and/or slopes, 40-90 rows."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_g = draw(st.integers(4, 8))
    per = draw(st.integers(5, 10))
    n = n_g * per
    g = np.repeat([f"s{i:02d}" for i in range(n_g)], per)
    x = rng.normal(size=n) + rng.normal(size=n_g).repeat(per) * 0.3
    form1 = draw(st.sampled_from(sorted(_BARS)))
    terms = {"g": _BARS[form1]}
    bars = [_TEXT[form1].format(g="g")]
    y = 1.0 + 0.5 * x + rng.normal(size=n_g).repeat(per) + 0.4 * rng.normal(size=n_g).repeat(per) * x
    data = {"g": g, "x": x}
    second = draw(st.sampled_from(["none", "crossed", "nested"]))
    if second == "crossed":
        h = rng.integers(0, draw(st.integers(2, 4)), n)
        data["h"] = np.array([f"h{v}" for v in h])
    elif second == "nested":  # two subgroups of at least 2 rows in each group
        h = np.tile(np.arange(per) * 2 // per, n_g)
        data["h"] = np.char.add(g, [f".{v}" for v in h])
    if second != "none":
        terms["h"] = [["1"]]
        bars.append("(1 | h)")
        y = y + 0.7 * rng.normal(size=n)[pd.factorize(data["h"])[0]]
    data["y"] = y + 0.5 * rng.normal(size=n)
    return Case(pd.DataFrame(data), "y ~ 1 + x + " + " + ".join(bars), terms)


def random_theta(draw, design) -> np.ndarray:
    """Diagonal entries in [0, 2] (zero included), off-diagonal in [-1, 1], in the design's layout."""
    out = []
    for b in design.blocks:
        for r, c in b.theta_index:
            lo = 0.0 if r == c else -1.0
            out.append(draw(st.sampled_from([0.0, 0.3, 1.0]) | st.floats(lo, 2.0 if r == c else 1.0)))
    return np.array(out)


def mvn_criterion(case: Case, design, theta: np.ndarray, reml: bool) -> float:
    """-2 log-likelihood (ML) or REML criterion from the raw data, with scipy's multivariate normal.

    Built without the design's Z or X: V0 = I + sum over factors of
    [same level] * M Lambda Lambda' M', with M the per-row random-effect
    covariates (1, x), and Lambda filled from theta the lme4 way (each bar's
    lower triangle, column by column; terms in lme4's order).
    """
    df = case.data
    n = len(df)
    cols = {"1": np.ones(n), "x": df["x"].to_numpy()}
    X = np.column_stack([cols["1"], cols["x"]])
    y = df["y"].to_numpy()
    V0 = np.eye(n)
    pos = 0
    # lme4's mkReTrms: the terms as written, or, if a term has more levels than the one before it,
    # rev(order(nl)): decreasing levels, ties in reverse order; hierbayes keeps a factor's terms together
    written = [(group, bar) for group in case.terms for bar in case.terms[group]]
    nl = [df[group].nunique() for group, _ in written]
    order = list(range(len(written)))
    if any(b > a for a, b in itertools.pairwise(nl)):
        order = list(reversed(sorted(order, key=lambda i: nl[i])))
    by_group: dict[str, list] = {}
    for i in order:
        by_group.setdefault(written[i][0], []).append(written[i][1])
    for group, bars in by_group.items():
        same = (df[group].to_numpy()[:, None] == df[group].to_numpy()[None, :]).astype(float)
        for bar in bars:
            k = len(bar)
            lam = np.zeros((k, k))
            for j in range(k):
                for i in range(j, k):
                    lam[i, j] = theta[pos]
                    pos += 1
            M = np.column_stack([cols[t] for t in bar])
            V0 += same * (M @ lam @ lam.T @ M.T)
    assert pos == len(theta) == design.n_theta
    Vi = np.linalg.inv(V0)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    p = X.shape[1]
    sigma2 = r @ Vi @ r / (n - p if reml else n)
    loglik = stats.multivariate_normal(mean=X @ beta, cov=sigma2 * V0).logpdf(y)
    if not reml:
        return -2 * loglik
    logdet_xvx = np.linalg.slogdet(X.T @ Vi @ X / sigma2)[1]
    return -2 * loglik + logdet_xvx - p * np.log(2 * np.pi)


@PROPERTY
@given(case=cases(), reml=st.booleans(), data=st.data())
def test_objective_equals_direct_and_mvn_density(case, reml, data):
    design = quiet(build_design, case.formula, case.data)
    theta = random_theta(data.draw, design)
    fast = LmmObjective(design, reml=reml)(theta)
    assert fast == pytest.approx(direct_criterion(design, theta, reml=reml), rel=1e-9)
    assert fast == pytest.approx(mvn_criterion(case, design, theta, reml), rel=1e-9)


@PROPERTY
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_estimates_invariant_to_row_order(case, seed):
    perm = np.random.default_rng(seed).permutation(len(case.data))
    shuffled = case.data.iloc[perm]
    a, b = fit(case.formula, case.data), fit(case.formula, shuffled)
    assert_same_optimum(a, b)
    at_a, at_b = estimates(a, a.theta), estimates(b, a.theta)  # exact invariance at one theta
    # summation order changes with the row order: agreement to rounding, relative to each quantity's scale
    assert at_b.objective == pytest.approx(at_a.objective, rel=1e-11)
    np.testing.assert_allclose(at_b.beta, at_a.beta, rtol=1e-9, atol=1e-9 * at_a.sigma)
    assert at_b.sigma == pytest.approx(at_a.sigma, rel=1e-9)
    for ba, bb in zip(at_a.b, at_b.b, strict=True):  # same level order: levels are sorted
        np.testing.assert_allclose(bb, ba, rtol=1e-8, atol=1e-8 * max(np.abs(ba).max(), at_a.sigma))


@PROPERTY
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_estimates_invariant_to_relabeling_levels(case, seed):
    rng = np.random.default_rng(seed)
    data = case.data.copy()
    renames = {}
    for group in case.terms:
        old = sorted(data[group].unique())
        new = [f"L{v:03d}" for v in rng.permutation(len(old))]  # a different sort order
        renames[group] = dict(zip(old, new, strict=True))
        data[group] = data[group].map(renames[group])
    a, b = fit(case.formula, case.data), fit(case.formula, data)
    assert_same_optimum(a, b)
    at_a, at_b = estimates(a, a.theta), estimates(b, a.theta)
    assert at_b.objective == pytest.approx(at_a.objective, rel=1e-11)
    np.testing.assert_allclose(at_b.beta, at_a.beta, rtol=1e-9, atol=1e-12)
    blk_a, blk_b = a.design.block("g"), b.design.block("g")
    order = [blk_b.levels.index(renames["g"][lvl]) for lvl in blk_a.levels]
    index = [blk.group for blk in a.design.blocks].index("g")
    np.testing.assert_allclose(at_b.b[index][order], at_a.b[index], rtol=1e-8, atol=1e-10)


@PROPERTY
@given(case=cases(), c=st.sampled_from([0.01, 0.5, 3.0, 250.0]), reml=st.booleans())
def test_scaling_y_scales_sigma_and_sds(case, c, reml):
    a = fit(case.formula, case.data, reml=reml)
    b = fit(case.formula, case.data.assign(y=c * case.data["y"]), reml=reml)
    theta = a.theta.to_numpy()
    n, p = len(case.data), 2
    shift = 2 * (n - p if reml else n) * np.log(c)
    assert b.devfun(theta) == pytest.approx(a.devfun(theta) + shift, rel=1e-10, abs=1e-8)
    at_a, at_b = estimates(a, theta), estimates(b, theta)  # theta is scale-free: exact at one theta
    assert at_b.sigma == pytest.approx(c * at_a.sigma, rel=1e-9)
    np.testing.assert_allclose(at_b.beta, c * at_a.beta, rtol=1e-9, atol=1e-12 * c)
    for ba, bb in zip(at_a.b, at_b.b, strict=True):
        np.testing.assert_allclose(bb, c * ba, rtol=1e-8, atol=1e-10 * c)
    # the optima: BOBYQA stops by its tolerances (lme4's), so on a flat, nearly singular surface the two
    # runs can stop at thetas ~10% apart with criteria ~1e-5 apart; what holds is that each optimum is as
    # good as the other one's theta, and the scaled estimates at one theta are exact (above)
    assert b.objective == pytest.approx(a.objective + shift, abs=1e-4)
    assert b.objective <= b.devfun(theta) + 1e-4
    assert a.objective <= a.devfun(b.theta.to_numpy()) + 1e-4


@PROPERTY
@given(case=cases(), multiple=st.sampled_from([-100.0, -3.5, 7.0, 50.0, 1e4]))
def test_adding_a_constant_to_y_moves_only_the_intercept(case, multiple):
    shift = multiple * case.data["y"].std()
    a = fit(case.formula, case.data)
    b = fit(case.formula, case.data.assign(y=case.data["y"] + shift))
    theta = a.theta.to_numpy()
    assert b.devfun(theta) == pytest.approx(a.devfun(theta), rel=1e-10)
    at_a, at_b = estimates(a, theta), estimates(b, theta)
    assert at_b.beta[0] == pytest.approx(at_a.beta[0] + shift, rel=1e-10, abs=1e-9 * abs(shift))
    assert at_b.beta[1] == pytest.approx(at_a.beta[1], rel=1e-7, abs=1e-9 * abs(shift))
    assert at_b.sigma == pytest.approx(at_a.sigma, rel=1e-7)
    assert_same_optimum(a, b, intercept_shift=shift)


def test_objective_keeps_its_precision_when_y_is_far_from_zero():
    """The engine works with y minus its OLS fit, so y'y in the cross-products stays on the residual scale."""
    sleep = hb.datasets.load("sleepstudy")
    data = sleep.assign(Reaction=sleep["Reaction"] / 100)  # sigma about 0.26
    theta = np.array([0.9, 0.01, 0.2])
    formula = "Reaction ~ Days + (Days | Subject)"
    base = LmmObjective(quiet(build_design, formula, data))(theta)
    far = LmmObjective(quiet(build_design, formula, data.assign(Reaction=data["Reaction"] + 1e4)))(theta)
    assert far == pytest.approx(base, rel=1e-9)


# --- helpers --------------------------------------------------------------------------------------------------


def quiet(fn, *args, **kwargs):
    """Singular fits and design warnings are expected on random data; they are not what is tested."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def fit(formula: str, data: pd.DataFrame, reml: bool = True):
    return quiet(hb.lmer, formula, data, reml=reml)


def estimates(fit_, theta):
    """The engine's estimates of a fit's design at a given theta."""
    return estimates_at(fit_.devfun, np.asarray(theta, dtype=float), fit_.optinfo)


def assert_same_optimum(a, b, intercept_shift: float = 0.0) -> None:
    """Two fits of equivalent data reach the same optimum, to the optimizer's tolerance.

    The engine stops where lme4's BOBYQA settings stop, so a reordered problem can end a little
    elsewhere on a flat optimum (most of all near the boundary): the criterion agrees to 1e-5,
    theta to 1e-2, fixed effects to a hundredth of their standard error.
    """
    assert b.objective == pytest.approx(a.objective, rel=1e-7, abs=1e-5)
    np.testing.assert_allclose(b.theta.to_numpy(), a.theta.to_numpy(), rtol=2e-3, atol=1e-2)
    se = np.sqrt(np.diag(a.vcov.to_numpy()))
    expected = a.fixef.to_numpy() + np.r_[intercept_shift, np.zeros(len(se) - 1)]
    assert np.all(np.abs(b.fixef.to_numpy() - expected) <= 1e-2 * se + 1e-10 * abs(intercept_shift))
    assert b.sigma == pytest.approx(a.sigma, rel=2e-3)
