"""lme4's order of random-effects terms and its VarCorr group names (tests/reference/make_issue15_extra.R).

lme4 1.1-31's ``mkReTrms`` keeps the terms as written unless some term has
more levels than the one before it; then it orders them by ``rev(order(nl))``:
decreasing number of levels, ties in *reverse* order of writing. The order is
that of theta (``start=`` is positional), of VarCorr and of each factor's
ranef columns. VarCorr names a factor's second term ``g.1``, and when any name
repeats, every name goes through ``make.names(unique = TRUE)`` (``a:c`` is
``a.c``).
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.design.names import make_names, make_unique
from hierbayes.design.random import term_order, varcorr_names
from tests.refdata import REFERENCE, ROOT


@cache
def reference() -> dict:
    with open(REFERENCE / "issue15_extra_reference.json") as fh:
        return json.load(fh)


@cache
def terms_data() -> pd.DataFrame:
    d = pd.read_csv(ROOT / reference()["data"]["terms"])
    for col in "abc":
        d[col] = pd.Categorical(d[col])
    return d


def _list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


CASES = sorted(reference()["term_order"])


@pytest.mark.filterwarnings("ignore::hierbayes.errors.SingularFitWarning")
@pytest.mark.parametrize("case_id", CASES)
def test_terms_theta_varcorr_and_ranef_follow_lme4(case_id):
    ref = reference()["term_order"][case_id]
    fit = hb.lmer(ref["formula"], terms_data())
    assert fit.reml_criterion == pytest.approx(ref["criterion"], rel=1e-8)
    theta = pd.Series(ref["theta"], dtype=float)
    if case_id == "interleaved":
        # lme4's order puts b's term between a's two; hierbayes keeps a factor's terms together
        # (its theta names tell the order): same names, same values
        assert sorted(fit.theta.index) == sorted(theta.index)
    else:
        assert list(fit.theta.index) == list(theta.index)
    np.testing.assert_allclose(fit.theta[theta.index].to_numpy(), theta.to_numpy(), atol=2e-5, rtol=2e-5)
    ours = [(r["grp"], *(v if isinstance(v, str) else None for v in (r["var1"], r["var2"])))
            for _, r in fit.varcorr.iterrows()]  # fmt: skip
    theirs = [(r["grp"], r.get("var1"), r.get("var2")) for r in ref["varcorr"]]
    if case_id == "interleaved":
        assert sorted(ours, key=str) == sorted(theirs, key=str)
    else:
        assert ours == theirs
    assert {g: list(f.columns) for g, f in fit.ranef.items()} == {g: _list(t) for g, t in ref["ranef_terms"].items()}
    assert list(fit.ranef) == list(ref["ranef_terms"])


def test_start_is_positional_in_lme4s_order():
    """start= lists theta in lme4's order: the reordered ||-terms of 'a' come after 'c'."""
    ref = reference()["term_order"]["reordered_doublebar"]
    d = terms_data()
    fit = hb.lmer(ref["formula"], d, start=list(ref["theta"].values()))
    np.testing.assert_allclose(fit.theta.to_numpy(), list(ref["theta"].values()), atol=2e-5)


def test_term_order_is_rev_order_only_when_some_term_has_more_levels():
    assert term_order([10, 10, 10, 80]) == [3, 2, 1, 0]
    assert term_order([80, 10, 10]) == [0, 1, 2]
    assert term_order([10, 20, 10, 20]) == [3, 1, 2, 0]
    assert term_order([5]) == [0]
    assert term_order([]) == []


def test_varcorr_names_are_make_names_when_a_factor_repeats():
    assert varcorr_names(["Subject"]) == ("Subject",)
    assert varcorr_names(["b:a", "a"]) == ("b:a", "a")
    assert varcorr_names(["Wafer:Site", "Wafer:Site", "Wafer"]) == ("Wafer.Site", "Wafer.Site.1", "Wafer")
    assert varcorr_names(["factor(g)", "factor(g)"]) == ("factor.g.", "factor.g..1")


def test_make_names_and_make_unique_are_rs():
    """Values printed by R 4.2.2: make.names(..., unique = TRUE), make.unique(c('a','a','a.1','b','a'))."""
    got = make_names(["Wafer:Site", "factor(g)", "my g", "1x", ".5", "if", "Wafer:Site", "_a", ".a", "é b", "a..b"],
                     unique=True)  # fmt: skip
    assert got == ("Wafer.Site", "factor.g.", "my.g", "X1x", "X.5", "if.", "Wafer.Site.1", "X_a", ".a", "é.b", "a..b")
    assert make_unique(["a", "a", "a.1", "b", "a"]) == ("a", "a.2", "a.1", "b", "a.3")


def test_blocks_keep_each_factor_once():
    d = build_design("y ~ x + (1 | a) + (1 | b) + (0 + x | a)", terms_data())
    assert [b.group for b in d.blocks] == ["a", "b"]
    assert d.blocks[0].bar_names == ("a", "a.1")
    assert d.blocks[1].bar_names == ("b",)


@pytest.mark.parametrize(
    ("case", "formula"), [("slope", "Reaction ~ Days + 1|Subject"), ("doublebar", "Reaction ~ Days||Subject")]
)
def test_unparenthesised_bar_fits_as_lme4(case, formula):
    """R reads `Reaction ~ Days + 1|Subject` as `Reaction ~ (Days + 1 | Subject)`: an intercept-only fixed part."""
    ref = reference()["bare_bar"][case]
    fit = hb.lmer(formula, hb.datasets.load("sleepstudy"))
    assert fit.reml_criterion == pytest.approx(ref["criterion"], rel=1e-8)
    assert list(fit.fixef.index) == list(ref["fixef"]) == ["(Intercept)"]
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    assert list(fit.theta.index) == list(ref["theta"])
    np.testing.assert_allclose(fit.theta.to_numpy(), list(ref["theta"].values()), rtol=2e-5)
