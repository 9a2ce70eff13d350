"""Reprs are short summaries, not raw arrays or dataclass dumps (issue 17).

``fit.profile()``, ``fit.bootstrap()``, ``hb.compare(...)`` and ``hb.anova(...)`` print what a user reads
(what was computed, estimates and intervals, where to find the rest), in a few lines.
"""

from __future__ import annotations

import re
import warnings

import pytest

import hierbayes as hb

SLEEP = "Reaction ~ Days + (Days | Subject)"
PARAMS = [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
#: what a dataclass dump or a NumPy/pandas repr inside it looks like
DUMP = re.compile(r"array\(|Profile\(|BootResult\(|dtype|PolySpline|\.\.\.\n|<hierbayes\.")


@pytest.fixture(scope="module")
def fit():
    return hb.lmer(SLEEP, hb.datasets.load("sleepstudy"))


def _check_short(text: str, max_lines: int) -> list[str]:
    lines = text.splitlines()
    assert len(lines) <= max_lines, text
    assert not DUMP.search(text), text
    assert max(len(line) for line in lines) <= 100, text
    return lines


def test_profile_repr_is_a_table_of_intervals(fit) -> None:
    prof = fit.profile(progressbar=False)
    lines = _check_short(repr(prof), 10)
    assert lines[0] == f"Likelihood profile of {SLEEP}: 6 parameters, {len(prof.table)} points (ML deviance)"
    ci = prof.confint(0.95)
    for name in PARAMS:
        (row,) = [line for line in lines if line.startswith(name + " ")]
        lo, hi = (float(v) for v in row.split()[-2:])
        assert lo == pytest.approx(ci.loc[name].iloc[0], rel=1e-3) and hi == pytest.approx(
            ci.loc[name].iloc[1], rel=1e-3
        )
    assert "(sd (Intercept) | Subject)" in lines[2]
    assert lines[-1].startswith(".confint(level)")


@pytest.mark.parametrize("resample", [None, ["Subject"]])
def test_bootstrap_repr_is_boots_summary(fit, resample) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few replicates: percentile endpoints at the extremes
        boot = fit.bootstrap(nsim=20, seed=3, n_jobs=1, progressbar=False, resample=resample)
        lines = _check_short(repr(boot), 12)
    kind = "Case" if resample else "Parametric"
    assert lines[0] == f"{kind} bootstrap of the REML fit: {SLEEP}"
    assert lines[1].startswith("20 replicates (seed 3)") and lines[1].endswith("0 failed")
    assert lines[2].split() == ["original", "bias", "std.", "error", "2.5", "%", "97.5", "%"]
    t = boot.t[".sigma"]
    (row,) = [line for line in lines if line.startswith(".sigma ")]
    original, bias, se = (float(v) for v in row.split()[1:4])
    assert original == pytest.approx(fit.sigma, rel=1e-4)
    assert bias == pytest.approx(t.mean() - boot.t0[".sigma"], rel=1e-3, abs=1e-6)
    assert se == pytest.approx(t.std(ddof=1), rel=1e-3)


def test_compare_and_anova_reprs_are_tables() -> None:
    fit = hb.lmer(SLEEP, hb.datasets.load("sleepstudy"))  # without bootstrap replicates: profile intervals
    lines = _check_short(repr(hb.compare(fit)), 16)
    assert "REML" in lines[0] and any(line.strip().startswith("SD Days") for line in lines)
    assert lines[-1] == "REML: fixed effects profile; SDs, correlations and sigma profile"
    fit0 = hb.lmer("Reaction ~ 1 + (Days | Subject)", hb.datasets.load("sleepstudy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refit by ML is announced by a RefitWarning
        lines = _check_short(repr(hb.anova(null=fit0, full=fit)), 12)
    assert lines[:3] == ["Models:", "null: Reaction ~ 1 + (Days | Subject)", f"full: {SLEEP}"]
    assert [line.split()[0] for line in lines if line.startswith(("null ", "full "))] == ["null", "full"]
