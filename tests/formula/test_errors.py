"""Malformed formulas: a FormulaError that shows the formula and points at the culprit."""

from __future__ import annotations

import pytest

from hierbayes.errors import FormulaError
from hierbayes.formula import parse_formula

# (formula, the character the caret must sit under (its index), words the message must contain)
CASES = [
    ("y ~ x + (x | g", 8, "never closed"),
    ("y ~ x + (x | g))", 15, "no matching '('"),
    ("y ~ (x | g] + z", 10, "mismatched"),
    ("y ~ x + (| g)", 9, "empty left side of '|'"),
    ("y ~ x + (1 |)", 12, "empty grouping factor"),
    ("y ~ x + (1 || )", 13, "empty grouping factor"),
    ("y ~ x + (1 | a/)", 15, "empty grouping factor around '/'"),
    ("y | g ~ x + (1 | g)", 2, "'|' outside a random-effects term"),
    ("y ~ x + (1 | h) + 1 | g", 11, "inside the left side of another"),
    ("y ~ (1 | h) | g", 7, "inside the left side of another"),
    ("y ~ x | g | h", 10, "one '|'"),
    ("y ~ 1 | g + x", 8, "a grouping factor is a column name"),
    ("y ~ offset(z) + 1 | g", 4, "offset() belongs in the fixed part"),
    ("y ~ x - ((1 | a) + (1 | b))", 8, "cannot be removed"),
    ("y ~ (x + I(a | b))", 13, "'|' outside a random-effects term"),
    ("y ~ x + (1 | g | h)", 15, "one '|'"),
    ("y ~ foo(x) + (1 | g)", 4, "unknown function 'foo'"),
    ("y ~ x + (bar(x) | g)", 9, "unknown function 'bar'"),
    ("y x + (1 | g)", 13, "needs '~'"),
    ("y ~ x ~ z", 6, "exactly one '~'"),
    ("y ~ x + + z", 7, "empty term"),
    ("y ~ x +", 7, "empty term"),
    ("y ~ ", 4, "nothing on the right of '~'"),
    ("", 0, "empty"),
    ("y ~ x + (1 + | g)", 12, "empty term in a random-effects term"),
    ("y ~ ()", 4, "empty parentheses"),
    ("y ~ x y + (1 | g)", 6, "missing operator before 'y'"),
    ("y ~ x* + (1 | g)", 5, "operator '*' needs something on its right"),
    ("y ~ 3x + (1 | g)", 4, "not a valid expression"),
    ("y ~ x @ z + (1 | g)", 6, "'@' is not supported"),
    ("y ~ . + (1 | g)", 4, "'.' (all other columns) is not supported"),
    ("y ~ log() + (1 | g)", 4, "log() needs an argument"),
    ("y ~ log(x +) + (1 | g)", 10, "operator '+' needs something on its right"),
    ("y ~ x + (1 | g + h)", 13, "a grouping factor is a column name"),
    ("y ~ x + (1 | log(g))", 13, "a grouping factor is a column name"),
    ("y ~ x + (0 | g)", 8, "no columns"),
    ("y ~ x - (1 | g)", 8, "cannot be removed"),
    ("y ~ x + (1 - z | g)", 13, "only the intercept can be removed"),
    ("cbind(s) ~ x + (1 | g)", 0, "cbind() takes two columns"),
    ("y ~ x + offset(log(t) +) + (1 | g)", 22, "needs something on its right"),
    ("y ~ x + 'a' + (1 | g)", 8, "a string literal is not a term"),
    ("y ~ 2 + x + (1 | g)", 4, "a number (2) is not a term"),
    ("y ~ x$a + (1 | g)", 5, "'$' (use the column name itself) is not supported"),
    ("y ~ x[1] + (1 | g)", 5, "indexing with '[' is not supported"),
    ("y ~ (a + b)^z + (1 | g)", 12, "the power of a formula term must be a number"),
    ("y ~ x + (x | g) + offset()", 18, "offset() needs an argument"),
    ("y ~ x + (offset(z) | g)", 9, "offset() belongs in the fixed part"),
    ("y ~ x + (1 | `g`:)", 16, "needs something on its right"),
    ("y ~ x + `` + (1 | g)", 8, "an empty name"),
    ("y ~ log(x, ) + (1 | g)", 11, "an empty argument"),
    ('y ~ x + (1 | g) + "oops', 18, "unclosed quote"),
]


@pytest.mark.parametrize(("text", "position", "words"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_formula_error_points_at_the_culprit(text, position, words):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    err = info.value
    assert words in err.message
    assert err.formula == text
    assert err.position == position
    lines = str(err).splitlines()
    assert lines[-2] == "  " + text  # the formula as written
    assert lines[-1] == "  " + " " * position + "^"  # the caret line


@pytest.mark.parametrize("bad", [None, 3, ["y ~ x"]])
def test_non_string_formula(bad):
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(bad)


def test_unknown_function_lists_known_ones():
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ lg(x) + (1 | g)")
    assert "lg" in info.value.message and "log" in info.value.message


def test_formula_error_is_a_value_error():
    """Code that catches ValueError keeps working."""
    with pytest.raises(ValueError):
        parse_formula("y ~ (x | g")
