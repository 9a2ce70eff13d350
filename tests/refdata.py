"""Access to the R reference numbers in tests/reference (made by make_references.R)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import hierbayes as hb

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"


@cache
def reference(name: str) -> dict:
    """One of "lmer", "inference", "glmer"."""
    with open(REFERENCE / f"{name}_reference.json") as fh:
        return json.load(fh)


def cases(name: str) -> dict:
    return reference(name)["cases"]


@cache
def case_data(path: str) -> pd.DataFrame:
    """The data a reference case was fitted on, with factors as R had them."""
    p = Path(path)
    if p.parent.as_posix() == "hierbayes/datasets/data":
        return hb.datasets.load(p.stem)
    return pd.read_csv(ROOT / path)


def case_formula(case: dict) -> str:
    return case.get("py_formula") or case["formula"]


def named(obj: dict) -> pd.Series:
    return pd.Series({k: (np.nan if v is None else v) for k, v in obj.items()}, dtype=float)


def matrix(obj: dict) -> pd.DataFrame:
    return pd.DataFrame(np.array(obj["values"], dtype=float), index=obj["names"], columns=obj["names"])


def assert_close(actual, desired, rtol: float = 0.0, atol=0.0) -> None:
    """Elementwise |a - d| <= atol + rtol |d|, with an array-valued atol allowed."""
    a, d = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
    tol = np.asarray(atol, dtype=float) + rtol * np.abs(d)
    bad = ~(np.abs(a - d) <= tol)
    if bad.any():
        raise AssertionError(
            f"not close:\n actual  {a[bad]}\n desired {d[bad]}\n tol     {np.broadcast_to(tol, a.shape)[bad]}"
        )
