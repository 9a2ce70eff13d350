"""hierbayes.runner.run_spec: a spec's fits, tables (CSV, 6 significant digits), report and step log.

REML and ML only (cheap): the Bayesian path of a run is exercised by tests/test_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.runner import CSV_DIGITS, run_spec
from hierbayes.spec import load_spec

SPEC = """
name = "sleep_runner"
title = "runner test"
description = "random intercepts by REML and ML"

[data]
dataset = "sleepstudy"

[model]
formula = "Reaction ~ Days + (1 | Subject)"

[fit]
engines = ["reml", "ml"]

[output]
tables = ["coef_table", "icc", "compare"]
plots = []
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("runner")
    path = root / "spec.toml"
    path.write_text(SPEC)
    lines: list[str] = []
    result = run_spec(load_spec(path), root / "out", log=lines.append)
    return result, lines


def test_fits_are_the_fits_of_the_formula(run) -> None:
    result, _ = run
    sleep = hb.datasets.load("sleepstudy")
    assert list(result.fits) == ["reml", "ml"] and result.labels == ["REML", "ML"]
    for engine, reml in (("reml", True), ("ml", False)):
        ref = hb.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=reml)
        np.testing.assert_array_equal(result.fits[engine].fixef, ref.fixef)
        np.testing.assert_array_equal(result.fits[engine].theta, ref.theta)


def test_tables_hold_the_fits_numbers_to_six_digits(run) -> None:
    result, _ = run
    files = {label: Path(p) for label, p in result.files}
    for engine in ("reml", "ml"):
        csv = pd.read_csv(files[f"table: coef_table_{engine}"], index_col=0)
        want = result.fits[engine].coef_table()
        assert list(csv.columns) == list(want.columns) and list(csv.index) == list(want.index)
        np.testing.assert_allclose(csv.to_numpy(), want.to_numpy(), rtol=0.5 * 10.0 ** (1 - CSV_DIGITS))
    assert files["report"].exists() and files["report"] == result.report
    text = result.report.read_text()
    assert "runner test" in text and "coef_table (reml)" in text


def test_steps_are_logged_in_order_with_the_time(run) -> None:
    result, lines = run
    assert lines[:-1] == [
        "[1/8] loading data", "[2/8] fitting (reml)", "[3/8] fitting (ml)", "[4/8] intervals",
        "[5/8] table: coef_table", "[6/8] table: icc", "[7/8] table: compare", "[8/8] writing posterior and report",
    ]  # fmt: skip
    assert lines[-1].startswith("finished in ") and lines[-1].endswith(" s")
    assert result.seconds["total"] > 0
