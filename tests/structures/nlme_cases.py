"""The nlme reference cases of structures_reference.json as hierbayes calls (shared by the structure tests)."""

from __future__ import annotations

import re
from functools import cache

import pandas as pd

import hierbayes as hb
from tests.refdata import ROOT, reference

#: Columns R made factors (tests/reference/README.md, make_structures.R).
FACTORS = {
    "ovary": ["Mare"], "ovary_gaps": ["Mare"], "orthodont": ["Subject", "Sex"], "bodyweight": ["Rat", "Diet"],
    "dialyzer": ["Subject", "QB"], "pixel": ["Dog", "Side"], "covstruct_sim": ["g", "tf", "f"],
}  # fmt: skip
STRUCTURES = {
    n: getattr(hb, n)
    for n in ("corAR1", "corARMA", "corCAR1", "corCompSymm", "varIdent", "varPower", "varExp", "varComb")
}


def nlme_cases() -> dict:
    return reference("structures")["nlme"]


@cache
def data(path: str) -> pd.DataFrame:
    d = pd.read_csv(ROOT / path)
    for c in FACTORS[path.split("/")[-1][:-4]]:
        d[c] = pd.Categorical(d[c])
    return d


def structure(text: str | None):
    """nlme's call text (``corAR1(form = ~ 1 | Mare)``, ``varPower()``) as the hierbayes object."""
    if text is None:
        return None
    py = re.sub(r"form = (~[^,()]*(?:\([^)]*\))?[^,()]*)", lambda m: repr(m.group(1).strip()), text)
    return eval(py, {"__builtins__": {}}, STRUCTURES)


def formula(case: dict) -> str:
    random = case["random"].replace("~", "").strip().replace("^", "**")
    return f"{case['py_formula'] or case['fixed']} + ({random})"


def fit_case(case: dict):
    return hb.lmer(formula(case), data(case["data"]), REML=case["REML"], correlation=structure(case["correlation"]),
                   variance=structure(case["weights"]))  # fmt: skip
