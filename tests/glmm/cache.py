"""Shared GLMM fits for tests/glmm: each reference case is fitted once per session."""

from __future__ import annotations

import json
import warnings
from functools import cache

import hierbayes as hb
from tests.refdata import REFERENCE, case_data, cases

GLMER = cases("glmer")


@cache
def tight() -> dict:
    """tests/reference/glmm_extra_reference.json (tightly converged lme4, make_glmm_extra.R)."""
    with open(REFERENCE / "glmm_extra_reference.json") as fh:
        return json.load(fh)


@cache
def glmer_fit(case_id: str, nAGQ: int | None = None):
    """The hierbayes fit of a glmer_reference.json case (warnings silenced)."""
    c = GLMER[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return hb.glmer(
            c["formula"], case_data(c["data"]), family=c["family"], link=c["link"],
            nAGQ=c["nAGQ"] if nAGQ is None else nAGQ, weights=c["weights"],
        )  # fmt: skip
