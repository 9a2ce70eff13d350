"""docs/errors.md's class table is complete and true.

The table "Every error and warning class, and what raises it" must list every error and warning class
of hierbayes (those in ``hierbayes.errors``, plus ``SpecError`` and ``RefitWarning``), with their real
base classes; every example in it is executed here and must raise (or warn) the class of its row. No row
may be *pending*.
"""

from __future__ import annotations

import inspect
import re
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
import hierbayes.errors
import hierbayes.spec
from hierbayes.inference.compare import RefitWarning
from tests.refdata import ROOT

DOC = ROOT / "docs" / "errors.md"
SECTION = "## Every error and warning class, and what raises it"
#: classes whose only documented raises may still be pending (none today)
PENDING_ONLY: set[str] = set()
PENDING_ALLOWED: set[str] = set()


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


@cache
def rows() -> list[tuple[str, str, str, str]]:
    text = DOC.read_text()
    assert SECTION in text, f"docs/errors.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    out = []
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        cls, bases, what, example = _cells(line)
        out.append((cls.strip("`"), bases, what, example))
    return out


def documented_classes() -> dict[str, type]:
    found = {
        name: obj
        for name, obj in vars(hierbayes.errors).items()
        if inspect.isclass(obj) and issubclass(obj, (hb.HierbayesError, hb.HierbayesWarning))
    }
    found["SpecError"] = hierbayes.spec.SpecError
    found["RefitWarning"] = RefitWarning
    return found


def test_every_class_is_documented_with_its_base_classes() -> None:
    classes = documented_classes()
    listed = {cls for cls, *_ in rows()}
    assert set(classes) <= listed, f"undocumented: {sorted(set(classes) - listed)}"
    assert listed <= set(classes), f"documented but not defined: {sorted(listed - set(classes))}"
    for cls, bases, _, _ in rows():
        if bases:
            documented = [b.strip().strip("`") for b in bases.split(",")]
            assert documented == [b.__name__ for b in classes[cls].__bases__], cls
    for cls in classes:
        examples = [ex for c, _, _, ex in rows() if c == cls and not ex.startswith("*pending")]
        if cls not in PENDING_ONLY:
            assert examples, f"{cls} has no example that runs"


@pytest.fixture(scope="module")
def namespace() -> dict:
    sleepstudy = hb.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = hb.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    return {
        "hb": hb, "np": np, "pd": pd, "warnings": warnings, "fit": fit,
        "SLEEP": "Reaction ~ Days + (Days | Subject)",
        "CBPP": "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "edge": pd.read_csv(ROOT / "tests/reference/data/lme4args_edge.csv"),
    }  # fmt: skip


def _example_rows() -> list[tuple[str, str, str]]:
    out = []
    for cls, _, what, example in rows():
        if example.startswith("*pending"):
            assert cls in PENDING_ALLOWED and "pending" in what, (cls, what)
            continue
        assert example.startswith("`") and example.endswith("`"), (cls, example)
        out.append((cls, what, example.strip("`")))
    return out


@pytest.mark.parametrize(("cls", "what", "code"), _example_rows(), ids=lambda v: v if len(v) < 40 else v[:40])
def test_every_documented_raise_is_reproduced(cls: str, what: str, code: str, namespace: dict, tmp_path) -> None:
    target = documented_classes()[cls]
    ns = {**namespace, "sleepstudy": hb.datasets.load("sleepstudy"), "cbpp": hb.datasets.load("cbpp"),
          "tmp": tmp_path}  # fmt: skip
    if issubclass(target, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(code, ns)
        got = [w.category for w in caught]
        assert any(issubclass(c, target) for c in got), f"{code!r} warned {got}, not {cls} ({what})"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(target) as err:
                exec(code, ns)
        assert str(err.value), cls
