"""The test-cost guard of conftest.py (issue 17): a default test over its CPU budget is reported, and fails the
run with ``--cpu-budget-strict``; the 10 most expensive tests are listed every run."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BUSY = """
import time

import pytest


def _spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cheap():
    pass


def test_busy():
    _spin(0.3)


@pytest.mark.cpu_budget(5, reason="allowed to be busy")
def test_busy_with_a_budget():
    _spin(0.3)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_busy=BUSY)
    return pytester


def test_the_summary_lists_the_costliest_tests_and_those_over_budget(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--cpu-budget", "0.2")
    result.assert_outcomes(passed=3)
    assert result.ret == 0  # a warning, not a failure
    out = result.stdout.str()
    assert "3 tests, " in out and "the 10 most expensive" in out
    over = out.split("over their CPU budget", 1)[1]
    assert "test_busy.py::test_busy\n" in over
    assert "test_busy_with_a_budget" not in over and "test_cheap" not in over


def test_strict_mode_fails_the_run(suite: pytest.Pytester) -> None:
    assert suite.runpytest("--cpu-budget", "0.2", "--cpu-budget-strict").ret == 1
    assert suite.runpytest("--cpu-budget", "10", "--cpu-budget-strict").ret == 0
