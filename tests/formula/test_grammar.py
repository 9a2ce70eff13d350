"""The lme4 bar grammar: each form parses to what lme4's findbars/expandDoubleVerts make of it."""

from __future__ import annotations

import pytest

from hierbayes.formula import parse_formula


def bars(text: str) -> list[tuple[str, tuple[str, ...], bool]]:
    return [(b.lhs, b.group, b.correlated) for b in parse_formula(text).bars]


def test_simple_random_intercept():
    f = parse_formula("Reaction ~ Days + (1 | Subject)")
    assert f.response == "Reaction"
    assert f.fixed == "Days"
    assert bars(f.text) == [("1", ("Subject",), True)]
    assert f.group_names == ("Subject",)


def test_slope_implies_intercept():
    """(x | g) is (1 + x | g): one correlated term with intercept and slope."""
    assert bars("y ~ x + (x | g)") == bars("y ~ x + (1 + x | g)") == [("1 + x", ("g",), True)]


@pytest.mark.parametrize("bar", ["(0 + x | g)", "(x - 1 | g)", "(-1 + x | g)", "(x + 0 | g)"])
def test_intercept_removed_inside_a_bar(bar):
    assert bars(f"y ~ x + {bar}") == [("0 + x", ("g",), True)]


def test_double_bar_gives_independent_terms():
    """(x || g) is (1 | g) + (0 + x | g), as lme4's expandDoubleVerts."""
    assert bars("y ~ x + (x || g)") == [("1", ("g",), False), ("0 + x", ("g",), False)]
    assert bars("y ~ (0 + x + z || g)") == [("0 + x", ("g",), False), ("0 + z", ("g",), False)]


def test_nested_bar_expands_like_lme4():
    """(1 | a/b) is (1 | b:a) + (1 | a); lme4 names the inner factor b:a."""
    f = parse_formula("y ~ 1 + (1 | a/b)")
    assert bars(f.text) == [("1", ("b", "a"), True), ("1", ("a",), True)]
    assert [b.group_name for b in f.bars] == ["b:a", "a"]
    three = parse_formula("y ~ (1 | a/b/c)")
    assert [b.group_name for b in three.bars] == ["c:b:a", "b:a", "a"]


def test_interaction_grouping_factor():
    assert bars("y ~ (1 | a:b)") == [("1", ("a", "b"), True)]
    assert parse_formula("y ~ (1 | a:b)").bars[0].group_name == "a:b"


def test_crossed_factors():
    f = parse_formula("y ~ 1 + (1 | plate) + (1 | sample)")
    assert f.group_names == ("plate", "sample")


def test_several_bars_on_one_factor():
    f = parse_formula("y ~ x + (1 | g) + (0 + x | g)")
    assert bars(f.text) == [("1", ("g",), True), ("0 + x", ("g",), True)]
    assert f.group_names == ("g",)


@pytest.mark.parametrize("text", ["y ~ 0 + x + (1 | g)", "y ~ x - 1 + (1 | g)", "y ~ -1 + x + (1 | g)"])
def test_no_intercept_in_the_fixed_part(text):
    fixed = parse_formula(text).fixed
    assert "x" in fixed and ("0" in fixed or "-1" in fixed or "- 1" in fixed)


def test_interactions_are_kept_for_formulaic():
    assert parse_formula("y ~ a * b + c:d + (1 | g)").fixed == "a * b + c:d"


def test_transforms_and_r_power_inside_I():
    f = parse_formula("log(y) ~ log(x) + scale(z) + I(x^2) + I(w**2) + C(k) + (1 | g)")
    assert f.response == "log(y)"
    assert f.fixed == "log(x) + scale(z) + I(x^2) + I(w^2) + C(k)"  # R reads ** as ^ and prints ^


def test_terms_are_kept_as_r_prints_them():
    f = parse_formula("log(y+1) ~ sin(2*pi*t) + poly(x,2,raw=TRUE) + I(N/I) + C(k,contr.sum) + x%in%k + (1|g)")
    assert f.response == "log(y + 1)"
    assert f.fixed == "sin(2 * pi * t) + poly(x, 2, raw = TRUE) + I(N/I) + C(k, contr.sum) + x %in% k"


def test_factor_wrapped_grouping_variable_keeps_lme4s_name():
    """lme4 names the factor by the expression: ranef(m)$`factor(g)`."""
    assert bars("y ~ (1 | factor(g))") == [("1", ("factor(g)",), True)]
    assert bars("y ~ (1 | as.factor(g))") == [("1", ("as.factor(g)",), True)]
    assert bars("y ~ (1 | interaction(a,b))") == [("1", ("interaction(a, b)",), True)]
    assert bars("y ~ (1 | factor(a)/b)") == [("1", ("b", "factor(a)"), True), ("1", ("factor(a)",), True)]


def test_backticked_names():
    f = parse_formula("`my y` ~ `a b` + (1 | `my g`)")
    assert f.response == "`my y`"
    assert f.bars[0].group == ("`my g`",) and f.bars[0].group_name == "my g"  # lme4 prints a symbol bare
    assert parse_formula('y ~ Q("a b") + (1 | Q("my g"))').structure()[2:] == f.structure()[2:]
    assert parse_formula(f.to_string()).structure() == f.structure()


def test_offset_and_cbind():
    f = parse_formula("cbind(s, n - s) ~ x + offset(log(t)) + (1 | g)")
    assert f.response is None and f.response_cbind == ("s", "n - s")
    assert f.offsets == ("log(t)",)
    assert f.fixed == "x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y ~ 1|g", [("1", ("g",), True)]),
        ("y ~ 1 | g", [("1", ("g",), True)]),
        ("y ~ x + 1|g", [("1 + x", ("g",), True)]),  # R: '|' binds more loosely than '+'
        ("y ~ 0 + x|g", [("0 + x", ("g",), True)]),
        ("y ~ x*z | g", [("1 + x * z", ("g",), True)]),
        ("y ~ x||g", [("1", ("g",), False), ("0 + x", ("g",), False)]),
        ("y ~ 1|a/b", [("1", ("b", "a"), True), ("1", ("a",), True)]),
        ("y ~ 1 | a:b", [("1", ("a", "b"), True)]),
        ("~ 1|g", [("1", ("g",), True)]),
    ],
)
def test_unparenthesised_bar_is_the_whole_right_side(text, expected):
    """lme4's findbars/nobars: `y ~ x + 1|g` is `y ~ (x + 1 | g)`, and the fixed part is the intercept alone."""
    f = parse_formula(text)
    assert bars(text) == expected
    assert f.fixed == "1"
    assert f.offsets == ()


def test_parenthesised_sum_of_bars_is_read_term_by_term():
    """lme4 deparses (x || g) as ((1 | g) + (0 + x | g)); findbars and nobars look inside the parentheses."""
    f = parse_formula("y ~ x + ((1 | a) + (0 + x | a)) + (1 | c)")
    assert f.fixed == "x"
    assert bars(f.text) == [("1", ("a",), True), ("0 + x", ("a",), True), ("1", ("c",), True)]
    g = parse_formula("y ~ (x + offset(z) + (1 | g))")
    assert (g.fixed, g.offsets, bars(g.text)) == ("x", ("z",), [("1", ("g",), True)])
    assert parse_formula("y ~ (x + z)^2 + (1 | g)").fixed == "(x + z)^2"  # no bar inside: an ordinary term


def test_bar_only_right_side_has_intercept_fixed_part():
    assert parse_formula("y ~ (1 | g)").fixed == "1"


def test_to_string_uses_double_bar_for_independent_terms():
    text = parse_formula("y ~ x + (x || g)").to_string()
    assert text == "y ~ x + (1 || g) + (0 + x || g)"
    assert parse_formula(text).structure() == parse_formula("y ~ x + (x || g)").structure()


def test_fixed_only_drops_the_bars():
    assert parse_formula("y ~ x + (x | g)").fixed_only() == "y ~ x"


def test_known_namespaces_are_allowed():
    f = parse_formula("y ~ np.log(x) + C(k, contr.treatment('b')) + stats::poly(x, 2) + (1 | g)")
    assert f.fixed == 'np.log(x) + C(k, contr.treatment("b")) + stats::poly(x, 2)'
