"""Formula idioms against R's model.matrix: the same column names and values, and the same replay on new data.

Reference: tests/reference/make_formula_reference.R -> formula_reference.json (``model_matrix``), on
tests/reference/data/formula_idioms.csv. Each case is R's ``model.matrix(~ rhs, data)``; hierbayes builds
``y ~ rhs`` and must give R's columns (names and values) before aliased columns are dropped, and, for
new data, R's ``model.matrix`` with the training ``predvars`` (``poly`` and ``scale`` keep their
training coefficients, as ``predict`` does).
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

from hierbayes.design import build_design
from hierbayes.design.columns import safe_frame
from hierbayes.design.encode import r_names, replay_matrix
from hierbayes.design.rfunctions import contr_poly_matrix, poly_contrast_names
from tests.refdata import REFERENCE, ROOT

REF = json.loads((REFERENCE / "formula_reference.json").read_text(encoding="utf-8"))
CASES = REF["model_matrix"]


@cache
def idioms() -> pd.DataFrame:
    """The reference data as pandas reads it (``l`` logical, ``k`` text); columns ``0``, ``1``, ``2`` int labels."""
    data = pd.read_csv(ROOT / REF["meta"]["data"], encoding="utf-8")
    return data.rename(columns={"0": 0, "1": 1, "2": 2})


def newdata() -> pd.DataFrame:
    nd = pd.DataFrame(REF["meta"]["newdata_model_matrix"])
    return nd.rename(columns={"1": 1, "2": 2})


def full_matrix(d, data: pd.DataFrame | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """X before aliased columns are dropped (R's model.matrix keeps them), for the fitting data or new data."""
    if data is None:
        safe = safe_frame(d.frame.data, d.columns)
    else:
        safe = d.safe_data(data, list(d.fixed_labels))
    return replay_matrix(d.fixed_spec, safe, "fixed effects", d.naming), r_names(d.fixed_spec, d.naming)


def design_of(rhs: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_design(f"y ~ {rhs}", idioms(), require_random=False)


@pytest.mark.parametrize("case_id", list(CASES))
def test_column_names_and_values_are_rs(case_id: str) -> None:
    case = CASES[case_id]
    d = design_of(case["rhs"])
    X, names = full_matrix(d)
    assert list(names) == case["colnames"]
    np.testing.assert_allclose(X[:30], np.array(case["head"], dtype=float), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(X.sum(axis=0), case["colsums"], rtol=1e-10, atol=1e-9)
    kept = [names[j] for j in d.fixed_keep]
    assert list(d.x_names) == kept


@pytest.mark.parametrize("case_id", [c for c in CASES if "newdata" in CASES[c]])
def test_new_data_replays_the_training_encoding_as_r_predicts(case_id: str) -> None:
    case = CASES[case_id]
    d = design_of(case["rhs"])
    X, _ = full_matrix(d, newdata())
    np.testing.assert_allclose(X, np.array(case["newdata"], dtype=float), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.fixed_matrix(newdata()), X[:, list(d.fixed_keep)], rtol=1e-12)


@pytest.mark.parametrize("k", range(2, 7))
def test_contr_poly_is_rs(k: int) -> None:
    ref = np.array(REF["contr"]["poly"][k - 2], dtype=float)
    np.testing.assert_allclose(contr_poly_matrix(k), ref, atol=1e-13)
    assert poly_contrast_names(k) == REF["contr"]["poly_names"][k - 2]


def test_r_contrast_matrices() -> None:
    from hierbayes.design.rfunctions import RContrasts

    levels = ["a", "b", "c", "d"]
    for kind, key in [("sum", "sum4"), ("helmert", "helmert4"), ("SAS", "SAS4")]:
        np.testing.assert_array_equal(RContrasts(kind)._get_coding_matrix(levels), np.array(REF["contr"][key]))
    treat = RContrasts("treatment", by_levels=False, base=2)
    np.testing.assert_array_equal(treat._get_coding_matrix(levels), np.array(REF["contr"]["treatment4_base2"]))
    assert treat.get_coding_column_names(levels) == REF["contr"]["treatment4_base2_names"]
