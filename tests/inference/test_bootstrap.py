"""Bootstrap, simulate, R2 and ICC.

Bootstrap intervals are Monte Carlo quantities: hierbayes' and lme4's
confint(m, method = "boot", nsim = 1000, seed = 1) use different random
streams, so they are compared within half the bootstrap SD, (upper - lower) /
3.92 / 2: about four Monte Carlo standard errors of a difference of two
independent 2.5% quantiles from 1000 replicates. Coverage on simulated data
is a slow test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.inference.bootstrap import norm_inter
from hierbayes.inference.resample import CasePlan, resample_design
from tests.inference.cache import INFERENCE, fitted

BOOT = [c for c in INFERENCE if "confint_boot" in INFERENCE[c]]


@pytest.mark.parametrize("case_id", BOOT)
def test_parametric_bootstrap_matches_lme4_within_monte_carlo_error(case_id: str) -> None:
    rec = INFERENCE[case_id]["confint_boot"]
    ref = pd.DataFrame(rec["rows"]).set_index("term")
    fit = fitted(case_id)
    ci = fit.confint("boot", nsim=rec["nsim"], seed=1, progress=False)
    assert list(ci.index) == list(ref.index)
    tol = (ref["upper"] - ref["lower"]).to_numpy() / 3.92 / 2
    np.testing.assert_array_less(np.abs(ci.iloc[:, 0].to_numpy() - ref["lower"].to_numpy()), tol)
    np.testing.assert_array_less(np.abs(ci.iloc[:, 1].to_numpy() - ref["upper"].to_numpy()), tol)
    assert fit.boot.nsim == rec["nsim"] and fit.boot.n_failed == 0


def test_results_do_not_depend_on_the_number_of_workers() -> None:
    fit = fitted("sleep_int_reml")
    one = fit.bootstrap(nsim=40, seed=7, n_jobs=1, progress=False)
    two = fit.bootstrap(nsim=40, seed=7, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(one.t, two.t)
    other = fit.bootstrap(nsim=40, seed=8, n_jobs=1, progress=False)
    assert not np.allclose(one.t.to_numpy(), other.t.to_numpy())


def test_replicates_as_inference_data() -> None:
    import arviz as az

    res = fitted("sleep_int_reml").bootstrap(nsim=30, seed=1, n_jobs=1, progress=False)
    idata = res.idata
    post = idata.posterior
    assert dict(post.sizes) == {"chain": 1, "draw": 30}
    assert list(post.data_vars) == [".sig01", ".sigma", "(Intercept)", "Days"]
    assert post.attrs["inference"] == "parametric bootstrap"
    summary = az.summary(idata, kind="stats", round_to="none")
    np.testing.assert_allclose(summary.loc["Days", "mean"], res.t["Days"].mean(), atol=1e-3)


def test_norm_inter_is_boots_interpolation() -> None:
    """boot's rule: rank (R + 1) alpha, exact order statistic when integral, normal-scale interpolation otherwise."""
    t = np.arange(1.0, 1000.0)  # R = 999: (R + 1) * 0.025 = 25 exactly
    assert norm_inter(t, np.array([0.025]))[0] == 25.0
    t = np.arange(1.0, 1001.0)  # R = 1000: rank 25.025, between the 25th and 26th
    v = norm_inter(t, np.array([0.025]))[0]
    assert 25.0 < v < 26.0
    with pytest.warns(hb.HierbayesWarning, match="extreme order statistics"):
        norm_inter(np.arange(10.0), np.array([0.025]))


def test_case_bootstrap_relabels_nested_groups() -> None:
    fit = fitted("pastes_reml")  # (1 | cask:batch) + (1 | batch): cask is nested in batch
    plan = CasePlan.build(fit.design, ["batch"])
    d = resample_design(fit.design, plan, np.random.default_rng(3))
    blocks = {b.group: b for b in d.blocks}
    assert d.n == fit.nobs  # batches are balanced
    assert blocks["batch"].nlevels == 10 and blocks["cask:batch"].nlevels == 30
    assert len(np.unique(blocks["batch"].codes)) == 10  # a batch drawn twice is two levels
    res = fit.bootstrap(nsim=20, seed=1, resample="batch", n_jobs=1, progress=False)
    assert res.kind == "case" and res.resample == ("batch",) and res.n_failed == 0


def test_case_bootstrap_keeps_crossed_levels() -> None:
    fit = fitted("penicillin_reml")
    d = resample_design(fit.design, CasePlan.build(fit.design, ["plate"]), np.random.default_rng(1))
    sample = next(b for b in d.blocks if b.group == "sample")
    assert sample.nlevels == 6 and d.n == fit.nobs
    with pytest.raises(hb.ModelError, match="cannot resample"):
        CasePlan.build(fit.design, ["Subject"])
    with pytest.raises(hb.ModelError, match="nested"):
        CasePlan.build(fit.design, ["plate", "sample"])


def test_simulate() -> None:
    fit = fitted("sleep_int_reml")
    y = fit.simulate(nsim=400, seed=1)
    assert y.shape == (180, 400)
    np.testing.assert_array_equal(y, fit.simulate(nsim=400, seed=1))
    # unconditional: marginal variance sigma^2 + var(b); conditional: sigma^2 around the fitted values
    total = fit.sigma**2 + fit.varcorr["vcov"].iloc[0]
    assert np.var(y - (fit.design.X @ fit.fixef.to_numpy())[:, None]) == pytest.approx(total, rel=0.05)
    yc = fit.simulate(nsim=400, seed=2, use_re=True)
    assert np.var(yc - fit.fitted[:, None]) == pytest.approx(fit.sigma**2, rel=0.05)
    with pytest.raises(ValueError, match="nsim"):
        fit.simulate(nsim=0)


@pytest.mark.parametrize("case_id", [c for c in INFERENCE if "r2_nakagawa" in INFERENCE[c]])
def test_r2_nakagawa(case_id: str) -> None:
    ref = INFERENCE[case_id]["r2_nakagawa"]
    r2 = fitted(case_id).r2()
    for key in ["R2_marginal", "R2_conditional", "var_random"]:
        assert r2[key] == pytest.approx(ref[key], rel=1e-5)
    assert r2["var_fixed"] == pytest.approx(ref["var_fixed"], rel=1e-5)  # n - 1 denominator


@pytest.mark.parametrize("case_id", [c for c in INFERENCE if "icc" in INFERENCE[c]])
def test_icc(case_id: str) -> None:
    ref = INFERENCE[case_id]["icc"]
    assert float(fitted(case_id).icc().iloc[0]) == pytest.approx(ref["ICC_adjusted"], rel=1e-5)


def test_icc_bootstrap_interval() -> None:
    fit = fitted("hsb_null_reml")
    out = fit.icc(ci="boot", nsim=100, seed=1, n_jobs=1, progress=False)
    assert list(out.columns) == ["icc", "2.5 %", "97.5 %"]
    lo, est, hi = out.loc["school", ["2.5 %", "icc", "97.5 %"]]
    assert lo < est < hi
    assert fit.boot.nsim == 100
    with pytest.raises(ValueError, match="ci must be"):
        fit.icc(ci="wald")


@pytest.mark.slow
def test_percentile_interval_coverage_on_simulated_data() -> None:
    """95% parametric-bootstrap intervals of the fixed effects cover the truth in about 95% of data sets."""
    fit = fitted("sleep_int_reml")
    truth = fit.fixef.to_numpy()
    ys = fit.simulate(nsim=100, seed=20240)
    data = fit.model.data
    covered = np.zeros(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        for j in range(ys.shape[1]):
            sim = hb.lmer(fit.formula, data.assign(Reaction=ys[:, j]))
            ci = sim.confint("boot", parm="beta_", nsim=200, seed=j, progress=False).to_numpy()
            covered += (ci[:, 0] <= truth) & (truth <= ci[:, 1])
    # binomial(100, 0.95): 86..100 holds with probability > 0.999; percentile intervals run a little short
    assert np.all(covered >= 86), covered
