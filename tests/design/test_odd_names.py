"""Column names R users bring: keywords, names of functions, integers, dots, spaces, non-ASCII letters.

A name that is a column is the column; a call is the function; in every position of a formula
(response, fixed part, a bar's left side, the grouping factor, an offset, cbind(), weights). The
design made with an odd name equals the design made with a plain one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hierbayes.design import build_design
from hierbayes.errors import ColumnNotFoundError, DataError, FormulaError
from hierbayes.formula.rexpr import r_name

rng = np.random.default_rng(7)
N = 60
PLAIN = pd.DataFrame(
    {
        "y": rng.normal(10, 1, N),
        "x": rng.uniform(1, 3, N),
        "g": np.repeat(np.arange(6), 10),
        "w": rng.uniform(0.5, 2, N),
        "s": rng.integers(0, 6, N),
        "f": rng.integers(0, 6, N),
    }
)
NAMES = ["class", "yield", "lambda", "in", "if", "is", "not", "center", "scale", "I", "C", "log", "exp", "sqrt",
         "poly", "Q", "np", "N", "pi", "T", "F", "my.var", "my var", "größe", "x-1", "TRUE", "1st"]  # fmt: skip


def quiet(formula: str, data: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_design(formula, data, **kw)


def ref(name: str) -> str:
    """How a formula refers to the column: bare when R's grammar (or ours) reads it as a name, else in backticks."""
    return name if name.isidentifier() and name not in ("TRUE", "T", "F", "pi") else f"`{name}`"


def same_design(a, b) -> None:
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.X, b.X)
    for ba, bb in zip(a.blocks, b.blocks, strict=True):
        np.testing.assert_array_equal(ba.codes, bb.codes)
        np.testing.assert_array_equal(ba.Z, bb.Z)
    for attr in ("offset", "weights", "trials"):
        va, vb = getattr(a, attr), getattr(b, attr)
        assert (va is None) == (vb is None)
        if va is not None:
            np.testing.assert_array_equal(va, vb)


PLAIN_FORMULA = "cbind(s, f) ~ x + log(x) + offset(log(w)) + (x | g)"


@pytest.mark.parametrize("name", NAMES)
def test_an_odd_name_in_every_position(name: str) -> None:
    """The same column called `name` as response, predictor, slope, group, offset, cbind part and weights."""
    plain = quiet(PLAIN_FORMULA, PLAIN, weights="w")
    for col in ["s", "x", "g", "w"]:
        data = PLAIN.rename(columns={col: name})
        formula = PLAIN_FORMULA.replace(f"({col}", f"({ref(name)}").replace(f"{col} |", f"{ref(name)} |")
        formula = {
            "s": f"cbind({ref(name)}, f) ~ x + log(x) + offset(log(w)) + (x | g)",
            "x": f"cbind(s, f) ~ {ref(name)} + log({ref(name)}) + offset(log(w)) + ({ref(name)} | g)",
            "g": f"cbind(s, f) ~ x + log(x) + offset(log(w)) + (x | {ref(name)})",
            "w": f"cbind(s, f) ~ x + log(x) + offset(log({ref(name)})) + (x | g)",
        }[col]
        d = quiet(formula, data, weights=name if col == "w" else "w")
        same_design(d, plain)
        if col == "x":
            assert d.x_names == ("(Intercept)", r_name(name), f"log({r_name(name)})")
            assert d.blocks[0].terms == ("(Intercept)", r_name(name))
        if col == "g":
            assert d.blocks[0].group == name  # lme4 prints a lone grouping column bare


@pytest.mark.parametrize("name", ["my y", "class", "if", "größe", "I"])
def test_odd_response(name: str) -> None:
    d = quiet(f"{ref(name)} ~ x + (1 | g)", PLAIN.rename(columns={"y": name}))
    np.testing.assert_array_equal(d.y, PLAIN["y"])
    assert d.response_name == r_name(name)
    d = quiet(f"log({ref(name)}) ~ x + (1 | g)", PLAIN.rename(columns={"y": name}))
    np.testing.assert_allclose(d.y, np.log(PLAIN["y"]))


def test_integer_column_labels() -> None:
    """df.columns = [0, 1, ...]: `0` or Q("0") in the formula, the label itself as weights."""
    data = PLAIN[["y", "x", "g", "w"]].copy()
    data.columns = [0, 1, 2, 3]
    d = quiet("`0` ~ `1` + (`1` | `2`)", data, weights=3)
    plain = quiet("y ~ x + (x | g)", PLAIN, weights="w")
    same_design(d, plain)
    assert d.x_names == ("(Intercept)", "`1`") and d.blocks[0].group == "2"
    d2 = quiet('Q("0") ~ Q("1") + (Q("1") | Q("2"))', data, weights=3)
    same_design(d2, plain)


def test_function_names_are_columns_unless_called() -> None:
    """`I(N/I)` divides column N by column I; center(center) centres the column `center`."""
    data = PLAIN.assign(N=PLAIN["x"] * 2, I=PLAIN["w"], center=PLAIN["x"], log=PLAIN["w"], pi=3.0)
    d = quiet("y ~ I(N/I) + center(center) + log(log) + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "I(N/I)", "center(center)", "log(log)")
    np.testing.assert_allclose(d.X[:, 1], data["N"] / data["I"])
    np.testing.assert_allclose(d.X[:, 2], data["x"] - data["x"].mean())
    np.testing.assert_allclose(d.X[:, 3], np.log(data["w"]))
    d = quiet("y ~ I(pi * x) + (1 | g)", data)  # the column pi (3.0), not R's constant: data come first
    np.testing.assert_allclose(d.X[:, 1], 3.0 * data["x"])
    d = quiet("y ~ sin(2 * pi * x) + (1 | g)", PLAIN)  # no column pi: R's constant
    np.testing.assert_allclose(d.X[:, 1], np.sin(2 * np.pi * PLAIN["x"]))


def test_dotted_name_is_the_dotted_column() -> None:
    data = PLAIN.rename(columns={"x": "mean.ses"})
    d = quiet("y ~ mean.ses + (mean.ses | g)", data)
    assert d.x_names == ("(Intercept)", "mean.ses")


def test_unknown_name_lists_the_closest_columns() -> None:
    data = PLAIN.rename(columns={"x": "my var"})
    with pytest.raises(ColumnNotFoundError, match=r"unknown column 'my.var' in the fixed effects; did you mean 'my"):
        quiet("y ~ my.var + (1 | g)", data)
    with pytest.raises(ColumnNotFoundError, match=r"unknown column 'my vr'.*did you mean 'my var'"):
        quiet("y ~ `my vr` + (1 | g)", data)
    with pytest.raises(ColumnNotFoundError, match=r"unknown column 'G' in the grouping factor.*did you mean 'g'"):
        quiet("y ~ 1 + (1 | G)", PLAIN)
    with pytest.raises(ColumnNotFoundError, match=r"unknown column 'ww' in the weights"):
        quiet("y ~ 1 + (1 | g)", PLAIN, weights="ww")
    with pytest.raises(ColumnNotFoundError, match=r"unknown column 'q' in the response \(cbind\(q, f\)\)|'q'"):
        quiet("cbind(q, f) ~ 1 + (1 | g)", PLAIN)


def test_two_labels_with_one_name_are_ambiguous() -> None:
    data = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0], "0": [1.0, 2, 3, 4], "g": [1, 1, 2, 2], "y": [1.0, 2, 3, 5]})
    with pytest.raises(DataError, match=r"several columns named '0'"):
        quiet("y ~ `0` + (1 | g)", data)


def test_weights_by_expression_and_by_odd_column() -> None:
    data = PLAIN.rename(columns={"w": "w t"})
    d = quiet("y ~ x + (1 | g)", data, weights="1 / `w t`")
    np.testing.assert_allclose(d.weights, 1 / PLAIN["w"])
    d = quiet("y ~ x + (1 | g)", data, weights="w t")
    np.testing.assert_allclose(d.weights, PLAIN["w"])


def test_names_the_grammar_cannot_read_bare_need_backticks() -> None:
    with pytest.raises(FormulaError, match="missing operator"):
        quiet("y ~ my var + (1 | g)", PLAIN.rename(columns={"x": "my var"}))
    with pytest.raises(FormulaError, match="not a valid expression"):
        quiet("y ~ 1st + (1 | g)", PLAIN.rename(columns={"x": "1st"}))
