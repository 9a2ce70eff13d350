"""R's formula functions everywhere R allows them: inside bars, in interactions, in the response, in offsets.

The names and values of the fixed-effects columns are checked against R's model.matrix in
test_r_model_matrix.py; here each function is used in the other positions of a mixed-model formula,
and its behaviour on new data and on bad input is checked.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hierbayes.design import build_design
from hierbayes.design.newdata import encode_rows
from hierbayes.errors import DataError

rng = np.random.default_rng(11)
N = 72
DF = pd.DataFrame(
    {
        "y": rng.uniform(5, 15, N),
        "x": np.round(rng.uniform(1, 3, N), 2),
        "k": np.tile(["b", "a", "c"], N // 3),
        "n": np.tile([3, 1, 2], N // 3),
        "g": np.repeat(np.arange(1, 13), 6),
        "a": np.tile(["p", "q"], N // 2),
        "b": np.repeat(["u", "v", "w"], N // 3),
        "w": rng.uniform(0.5, 2, N),
    }
)


def quiet(formula: str, data: pd.DataFrame = DF, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_design(formula, data, **kw)


@pytest.mark.parametrize(
    ("bar", "terms"),
    [
        ("(factor(n) | g)", ("(Intercept)", "factor(n)2", "factor(n)3")),
        ("(0 + factor(n) | g)", ("factor(n)1", "factor(n)2", "factor(n)3")),
        ("(poly(x, 2) | g)", ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")),
        ("(0 + C(k, contr.sum) | g)", ("C(k, contr.sum)a", "C(k, contr.sum)b", "C(k, contr.sum)c")),
        ("(1 + C(k, contr.sum) | g)", ("(Intercept)", "C(k, contr.sum)1", "C(k, contr.sum)2")),
        ("(scale(x) + I(x^2) | g)", ("(Intercept)", "scale(x)", "I(x^2)")),
        ("(sin(2 * pi * x) || g)", ("(Intercept)", "sin(2 * pi * x)")),
        ("(ordered(n) | g)", ("(Intercept)", "ordered(n).L", "ordered(n).Q")),
        ("(x:factor(n) | g)", ("(Intercept)", "x:factor(n)1", "x:factor(n)2", "x:factor(n)3")),
    ],
)
def test_functions_inside_bars(bar: str, terms: tuple[str, ...]) -> None:
    d = quiet(f"y ~ x + {bar}")
    assert d.blocks[0].terms == terms
    rows = [0, 7, 40]
    codes, Z = encode_rows(d, DF.iloc[rows]).blocks[0]
    np.testing.assert_array_equal(codes, d.blocks[0].codes[rows])
    np.testing.assert_allclose(Z, d.blocks[0].Z[rows])  # poly and scale replay their training state


@pytest.mark.parametrize(
    ("group", "name", "levels"),
    [
        ("factor(g)", "factor(g)", tuple(str(i) for i in range(1, 13))),
        ("as.factor(g)", "as.factor(g)", tuple(str(i) for i in range(1, 13))),
        ("as.character(g)", "as.character(g)", ("1", "10", "11", "12", *[str(i) for i in range(2, 10)])),
        ("interaction(a, b)", "interaction(a, b)", ("p.u", "q.u", "p.v", "q.v", "p.w", "q.w")),
        ("interaction(a, b, sep = '_', lex.order = TRUE)", 'interaction(a, b, sep = "_", lex.order = TRUE)',
         ("p_u", "p_v", "p_w", "q_u", "q_v", "q_w")),
        ("a:b", "a:b", ("p:u", "p:v", "p:w", "q:u", "q:v", "q:w")),
        ("factor(a):b", "factor(a):b", ("p:u", "p:v", "p:w", "q:u", "q:v", "q:w")),
    ],
)  # fmt: skip
def test_functions_on_the_grouping_side(group: str, name: str, levels: tuple[str, ...]) -> None:
    """lme4 names the factor by the expression and orders levels as factor() of it (unused levels dropped)."""
    d = quiet(f"y ~ x + (1 | {group})")
    blk = d.blocks[0]
    assert blk.group == name
    assert blk.levels == levels


def test_interaction_grouping_drops_unused_combinations() -> None:
    data = DF[~((DF["a"] == "q") & (DF["b"] == "v"))]
    assert quiet("y ~ x + (1 | interaction(a, b))", data).blocks[0].levels == ("p.u", "q.u", "p.v", "p.w", "q.w")


@pytest.mark.parametrize(
    ("response", "values"),
    [
        ("log(y)", lambda d: np.log(d["y"])),
        ("log1p(y)", lambda d: np.log1p(d["y"])),
        ("sqrt(y)", lambda d: np.sqrt(d["y"])),
        ("y/100", lambda d: d["y"] / 100),
        ("I(y^2)", lambda d: d["y"] ** 2),
        ("log(y, base = 10)", lambda d: np.log10(d["y"])),
        ("exp(y/10)", lambda d: np.exp(d["y"] / 10)),
        ("as.numeric(y > 10)", lambda d: (d["y"] > 10).astype(float)),
    ],
)
def test_functions_in_the_response(response: str, values) -> None:
    d = quiet(f"{response} ~ x + (1 | g)")
    np.testing.assert_allclose(d.y, values(DF))
    assert d.response_name == response.replace("y/100", "y/100")


def test_cbind_with_expressions() -> None:
    data = DF.assign(s=(DF["y"] > 10).astype(int) * 3, size=5)
    d = quiet("cbind(s, size - s) ~ x + (1 | g)", data)
    np.testing.assert_array_equal(d.y, data["s"])
    np.testing.assert_array_equal(d.trials, 5)


def test_offsets_replay_their_transforms_on_new_data() -> None:
    d = quiet("y ~ x + offset(log(w)) + offset(scale(x)) + (1 | g)")
    z = (DF["x"] - DF["x"].mean()) / DF["x"].std(ddof=1)
    np.testing.assert_allclose(d.offset, np.log(DF["w"]) + z)
    new = DF.iloc[[3, 9]]
    np.testing.assert_allclose(d.offset_vector(new), d.offset[[3, 9]])  # training mean and SD, not new data's


@pytest.mark.parametrize(
    ("term", "names"),
    [
        ("factor(n):x", ("(Intercept)", "factor(n)1:x", "factor(n)2:x", "factor(n)3:x")),
        ("poly(x, 2):k", ("(Intercept)", "poly(x, 2)1:ka", "poly(x, 2)2:ka", "poly(x, 2)1:kb", "poly(x, 2)2:kb",
                          "poly(x, 2)1:kc", "poly(x, 2)2:kc")),
        ("x * C(k, contr.helmert)", ("(Intercept)", "x", "C(k, contr.helmert)1", "C(k, contr.helmert)2",
                                     "x:C(k, contr.helmert)1", "x:C(k, contr.helmert)2")),
        ("log(x):factor(n)", ("(Intercept)", "log(x):factor(n)1", "log(x):factor(n)2", "log(x):factor(n)3")),
        ("stats::poly(x, 2)", ("(Intercept)", "stats::poly(x, 2)1", "stats::poly(x, 2)2")),
        ("np.log(x)", ("(Intercept)", "np.log(x)")),
        ("C(k, Treatment('b'))", ("(Intercept)", 'C(k, Treatment("b"))a', 'C(k, Treatment("b"))c')),
    ],
)  # fmt: skip
def test_functions_in_interactions(term: str, names: tuple[str, ...]) -> None:
    assert quiet(f"y ~ {term} + (1 | g)").x_names == names


def test_as_numeric_of_a_factor_is_its_codes_and_as_character_sorts_as_text() -> None:
    data = DF.assign(f=pd.Categorical(DF["k"], categories=["c", "b", "a"]), m=np.tile([10, 2, 1], N // 3))
    d = quiet("y ~ as.numeric(f) + (1 | g)", data)
    np.testing.assert_array_equal(d.X[:, 1], data["f"].cat.codes + 1)  # R: the level codes 1..k
    d = quiet("y ~ as.character(m) + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "as.character(m)10", "as.character(m)2")  # "1" < "10" < "2", as R


def test_an_ordered_categorical_column_gets_polynomial_contrasts_as_in_r() -> None:
    data = DF.assign(dose=pd.Categorical(np.tile(["lo", "mid", "hi"], N // 3), ["lo", "mid", "hi"], ordered=True))
    d = quiet("y ~ dose + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "dose.L", "dose.Q")
    np.testing.assert_allclose(d.X[:3, 1], [-np.sqrt(0.5), 0.0, np.sqrt(0.5)], atol=1e-15)
    d = quiet("y ~ factor(dose, ordered = FALSE) + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "factor(dose, ordered = FALSE)mid", "factor(dose, ordered = FALSE)hi")


def test_logical_variables_are_factors_with_false_and_true() -> None:
    data = DF.assign(late=DF["x"] > 2)
    d = quiet("y ~ late * x + I(x > 1.5) + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "lateTRUE", "x", "I(x > 1.5)TRUE", "lateTRUE:x")
    d = quiet("y ~ 0 + late + (1 | g)", data)
    assert d.x_names == ("lateFALSE", "lateTRUE")
    d = quiet("y ~ I(late * 2) + as.numeric(late) + (1 | g)", data)  # arithmetic on a logical is numeric, as R
    np.testing.assert_array_equal(d.X[:, 1], 2.0 * data["late"])


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ poly(x, 80) + (1 | g)", r"'degree' \(80\) must be less than the number of unique points"),
        ("y ~ factor(n, levels = c(1, 2)) + (1 | g)", r"'factor\(n, levels = c\(1, 2\)\)' has values that are not"),
        ("y ~ factor(c) + (1 | g)", r"'factor\(c\)' has only one level \(z\).*2 or more"),
        ("y ~ C(k, contr.bogus) + (1 | g)", "unknown column 'contr.bogus'|unknown function"),
        ("y ~ relevel(factor(k), 'zz') + (1 | g)", r"relevel\(\): 'zz' is not a level"),
        ("y ~ log(k) + (1 | g)", r"could not evaluate the fixed effects"),
        ("y ~ I(1:3) + (1 | g)", r"could not evaluate the fixed effects"),
        ("k ~ x + (1 | g)", r"the response 'k' must be numeric"),
        ("factor(n) ~ x + (1 | g)", r"the response 'factor\(n\)' must be numeric; it is a factor"),
        ("y ~ x + (1 | factor(g, levels = 1:3))", r"grouping factor"),
    ],
)
def test_bad_uses_name_the_function(formula: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        quiet(formula, DF.assign(c="z"))


def test_fixed_factor_mixing_types_that_print_the_same_is_an_error() -> None:
    data = DF.assign(k=DF["k"].astype(object))
    data.loc[0, "k"] = 2
    data.loc[1, "k"] = "2"
    with pytest.raises(DataError, match=r"column 'k' has values that print the same but differ in type: 2 \(int\)"):
        quiet("y ~ k + (1 | g)", data)
