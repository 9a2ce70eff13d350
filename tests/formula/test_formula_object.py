"""``hb.Formula``: a location formula with formulas for auxiliary parameters (issue 22, distributional models)."""

from __future__ import annotations

import pytest

import hierbayes as hb
from hierbayes.errors import FormulaError
from hierbayes.formula import Formula


def test_keyword_and_bambi_spellings_agree():
    a = Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)")
    b = Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)")
    c = Formula("y ~ x + (1 | g)", sigma="x + (1 | g)")
    d = Formula("y ~ x + (1 | g)", sigma="sigma ~ x + (1 | g)")
    assert a == b == c == d
    assert a.aux_formulas == {"sigma": "x + (1 | g)"}
    assert a.text == "y ~ x + (1 | g), sigma ~ x + (1 | g)"
    assert repr(a) == "Formula('y ~ x + (1 | g)', sigma='~ x + (1 | g)')"
    assert hb.Formula is Formula


def test_order_kept_and_no_aux():
    f = Formula("y ~ x", "psi ~ 1", alpha="~ z")
    assert f.aux == (("psi", "1"), ("alpha", "z"))
    assert Formula("y ~ x").aux == ()


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("~ x",), {}, "no response"),
        (("y ~ x", "x + z"), {}, "needs the parameter on the left"),
        (("y ~ x",), {"sigma": "~ x +"}, "empty term"),
        (("y ~ x", "sigma ~ x"), {"sigma": "~ z"}, "two formulas"),
        (("y ~ x",), {"sigma": "z ~ x"}, "has 'z' on the left"),
        (("y ~ x",), {"sigma": ""}, "is empty"),
        (("y ~ x", "2a ~ x"), {}, "not a parameter name"),
        (("y ~ x",), {"sigma": 3}, "must be a string"),
        ((3,), {}, "must be a string"),
    ],
)
def test_bad_formulas_are_formula_errors(args, kwargs, message):
    with pytest.raises(FormulaError, match=message):
        Formula(*args, **kwargs)
