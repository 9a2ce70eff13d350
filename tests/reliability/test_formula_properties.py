"""Property-based tests of the formula parser and the design built from it (hypothesis).

* On any string the parser returns a ParsedFormula or raises FormulaError, never
  anything else, and every FormulaError carries a position inside the formula.
* Printable formulas round-trip: parse -> to_string -> parse keeps the structure.
* Valid formulas with a typo or two build a design or raise a hierbayes error
  (FormulaError, DataError); no Python, NumPy or formulaic exception escapes,
  and no formulaic highlighting leaks into a message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hierbayes.design import build_design
from hierbayes.errors import FormulaError, HierbayesError
from hierbayes.formula import parse_formula

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that make near-formulas: names, operators, brackets, quotes, calls and bars.
_PIECES = [*"xyzgab ~|()+-*:/^01.,`'\"[]%@=\\\n", "log(", "I(", "(1|g)", "||", "offset(", "cbind(", "scale(",
           "**", "C(", "y ~ ", "x + ", "(x | g)", "(0 + x || g)", "a/b", "%in%", "foo("]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(_PIECES), max_size=16).map("".join))
def test_parser_raises_only_formula_error_on_near_formulas(text):
    _parse_or_formula_error(text)


@FUZZ
@given(st.text(max_size=40))
def test_parser_raises_only_formula_error_on_any_text(text):
    _parse_or_formula_error(text)


def _parse_or_formula_error(text: str) -> None:
    try:
        parsed = parse_formula(text)
    except FormulaError as exc:
        assert exc.formula == text
        if exc.position is not None:
            assert 0 <= exc.position <= len(text)
            assert str(exc).splitlines()[-1].strip() == "^"
        return
    assert parsed.text == text


# --- round trip -------------------------------------------------------------------------------------------

_names = st.sampled_from(["x", "z", "w", "Days", "mean.ses", "`a b`"])
_transformed = st.one_of(
    _names,
    _names.map(lambda n: f"log({n})"),
    _names.map(lambda n: f"scale({n})"),
    _names.map(lambda n: f"I({n}^2)"),
    _names.map(lambda n: f"C({n})"),
)
_fixed_term = st.one_of(
    _transformed,
    st.tuples(_transformed, _transformed).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(_transformed, _transformed).map(lambda t: f"{t[0]} * {t[1]}"),
)
_group = st.one_of(
    st.sampled_from(["g", "Subject", "school", "`my g`"]),
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["c", "d"])).map(":".join),
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["c", "d"])).map("/".join),
)


@st.composite
def _bar(draw) -> str:
    terms = draw(st.lists(_transformed, max_size=2, unique=True))
    intercept = draw(st.sampled_from(["1", "0", ""])) if terms else "1"
    lhs = " + ".join(([intercept] if intercept else []) + terms)
    sep = draw(st.sampled_from(["|", "||"]))
    return f"({lhs} {sep} {draw(_group)})"


@st.composite
def _formula(draw) -> str:
    response = draw(st.sampled_from(["y", "log(y)", "Reaction", "cbind(s, f)", "`my y`"]))
    fixed = draw(st.lists(_fixed_term, max_size=3))
    lead = draw(st.sampled_from(["", "1 + ", "0 + ", "-1 + "]))
    bars = draw(st.lists(_bar(), min_size=0, max_size=3))
    offset = draw(st.sampled_from(["", "offset(log(n))"]))
    rhs = [t for t in [*fixed, offset, *bars] if t] or ["1"]
    return f"{response} ~ {lead}{' + '.join(rhs)}"


@settings(max_examples=300, deadline=None)
@given(_formula())
def test_parse_to_string_parse_round_trips(text):
    first = parse_formula(text)
    again = parse_formula(first.to_string())
    assert again.structure() == first.structure()
    assert again.to_string() == first.to_string()


# --- typos in valid formulas, all the way to the design ------------------------------------------------------


def _fuzz_data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 48
    cols = {c: rng.normal(size=n) for c in ["y", "x", "Reaction", "mean.ses", "a b", "my y"]}
    cols |= {"z": rng.uniform(1, 2, n), "w": rng.integers(0, 3, n), "Days": rng.integers(0, 10, n)}
    cols |= {"s": rng.integers(0, 5, n), "f": rng.integers(0, 5, n), "n": rng.uniform(1, 3, n)}
    cols |= {
        "g": np.repeat(list("abcdef"), 8),
        "Subject": np.repeat(np.arange(6), 8),
        "school": np.repeat(list("ABCD"), 12),
    }
    cols |= {"a": np.tile(list("pq"), 24), "b": np.repeat(np.arange(12), 4), "c": np.tile(list("uvw"), 16)}
    cols |= {"d": np.tile([1.5, 2.5], 24), "my g": np.repeat(list("xyz"), 16)}
    return pd.DataFrame(cols)


FUZZ_DATA = _fuzz_data()


@st.composite
def _with_typos(draw) -> str:
    text = draw(_formula())
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:i] + draw(st.sampled_from(_PIECES)) + text[i:]
        else:
            text = text[:i] + text[i + 1 :]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_with_typos())
def test_design_raises_only_hierbayes_errors(text):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_design(text, FUZZ_DATA)
    except HierbayesError as exc:
        message = str(exc)
        assert "\u29db" not in message and "\x1b[" not in message  # no formulaic highlighting
        assert "Unable to evaluate factor" not in message
