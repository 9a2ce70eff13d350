"""The external suite: real analyses from lme4, nlme, MixedModels.jl, mlmRev, glmmTMB, MASS,
lmerTest and pbkrtest, each fitted as its source writes it and compared with lme4's tightly
converged fit (``tests/reference/make_external.R``; tolerances in ``loader.py``).

One test per case. Cases that fail today are strict xfails naming their root cause
(``cases.py``, ``tests/reference/external/FAILURES.md``). ``python -m tests.external.summary``
prints how many fit and match, grouped by cause.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.external import loader
from tests.external.cases import ROOT_CAUSES, TOLERANCES, XFAIL, options

CASES = loader.cases()


def _param(case_id: str):
    case = CASES[case_id]
    marks = []
    if case["slow"]:
        marks.append(pytest.mark.slow)
    if case_id in XFAIL:
        reason = " + ".join(f"{cause}: {ROOT_CAUSES[cause]}" for cause in XFAIL[case_id])
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case_id, marks=marks, id=case_id)


@pytest.mark.parametrize("case_id", [_param(c) for c in CASES])
def test_case_matches_lme4(case_id):
    case = CASES[case_id]
    data = loader.load_dataset(case["dataset"], raw=case["loader"] == "raw")
    before = data.copy(deep=True)
    opts = options(case_id)
    fit = loader.fit_case(case, opts, data=data)
    pd.testing.assert_frame_equal(data, before)  # the user's frame is never modified
    problems = loader.compare(case, fit, opts.tolerance())
    assert not problems, f"{case_id} ({case['formula']}):\n  " + "\n  ".join(problems)


def test_registry_is_consistent():
    """Every xfail names a known cause and a known case; the reference is complete."""
    assert set(XFAIL) <= set(CASES)
    assert all(causes and set(causes) <= set(ROOT_CAUSES) for causes in XFAIL.values())
    assert {c for causes in XFAIL.values() for c in causes} == set(ROOT_CAUSES)  # no stale cause
    assert set(TOLERANCES) <= set(CASES)
    assert all(why for _tol, why in TOLERANCES.values())
    for cid, case in CASES.items():
        assert case["compare"] == "tight", cid
        assert case["tight"]["criterion"] <= case["default"]["criterion"] + 1e-4 * max(
            1.0, abs(case["default"]["criterion"])
        ), cid
    assert len(CASES) >= 50


@pytest.mark.parametrize("name", sorted({c["dataset"] for c in CASES.values()}))
def test_schema_loader(name):
    """The typed loader gives R's classes: factors with R's levels, integers, logicals."""
    df = loader.load_dataset(name)
    sch = loader.schema(name)
    assert list(df.columns) == [c["name"] for c in sch["columns"]]
    for col in sch["columns"]:
        x = df[col["name"]]
        if col["class"] in ("factor", "ordered"):
            assert isinstance(x.dtype, pd.CategoricalDtype)
            assert list(x.cat.categories) == col["levels"]
            assert x.cat.ordered == (col["class"] == "ordered")
            assert int(x.isna().sum()) == col["n_missing"]
        elif col["class"] == "integer" and col["n_missing"] == 0:
            assert x.dtype == "int64"
        elif col["class"] == "numeric":
            assert x.dtype == "float64"
        elif col["class"] == "logical" and col["n_missing"] == 0:
            assert x.dtype == bool


def test_csv_doubles_are_read_exactly():
    """R wrote 17 significant digits; the loader gives the same doubles as Python's own float()."""
    for name in sorted({c["dataset"] for c in CASES.values()}):
        df = loader.load_dataset(name)
        raw = pd.read_csv(loader.DATA / loader.schema(name)["file"], dtype=str, keep_default_na=False)
        for col in df.columns:
            if df[col].dtype.kind == "f":
                exact = [float(v) if v not in ("NA", "") else float("nan") for v in raw[col]]
                assert df[col].tolist() == pytest.approx(exact, rel=0, abs=0, nan_ok=True), (name, col)
