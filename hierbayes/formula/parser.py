"""Parse lme4 formulas: ``y ~ x + (1 + x | g) + (1 | a/b)``.

The bar grammar is lme4's; every response, term, offset and grouping
factor is an R expression (:mod:`hierbayes.formula.rexpr`), checked here and
kept as R prints it, so that ``I(x^2)`` and `` `my var` `` mean what they mean
in R. Which names are columns is decided later, with the data (the design
layer). Semantics follow lme4:

* ``(x | g)`` is ``(1 + x | g)``: correlated intercept and slope;
* ``(0 + x | g)`` and ``(x - 1 | g)`` drop the intercept;
* ``(x || g)`` is ``(1 | g) + (0 + x | g)``: independent terms;
* ``(1 | a/b)`` is ``(1 | a) + (1 | b:a)``; ``(1 | a:b)`` is the interaction;
* ``(1 | factor(g))`` and ``(1 | interaction(a, b))`` are grouping factors named as lme4 names them;
* ``offset(z)`` is a known offset; ``cbind(s, f)`` a binomial response.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from hierbayes.errors import FormulaError
from hierbayes.formula.rexpr import BinOp, Call, Name, Node, Paren, deparse
from hierbayes.formula.scan import Span, depth_map, is_wrapped, split_top
from hierbayes.formula.syntax import KNOWN_FUNCTIONS, check_expression, check_term
from hierbayes.formula.terms import ParsedFormula, RandomBar

__all__ = ["KNOWN_FUNCTIONS", "parse_formula"]

#: Calls that make a grouping factor from columns: ``(1 | factor(g))``, ``(1 | interaction(a, b))``.
GROUPING_FUNCTIONS = frozenset({"factor", "as.factor", "as.character", "interaction", "droplevels", "ordered"})


def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4-style mixed-model formula.

    Parameters
    ----------
    formula
        For example ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    ParsedFormula
        Response, fixed part and expanded random bars, each as R prints it.

    Raises
    ------
    FormulaError
        With the formula and a caret under the offending position.

    Examples
    --------
    >>> f = parse_formula("y ~ x + (1 | school/class)")
    >>> [b.group_name for b in f.bars]
    ['class:school', 'school']
    """
    if not isinstance(formula, str):
        raise FormulaError(f"a formula must be a string, got {type(formula).__name__}")
    return _parse(formula)


@lru_cache(maxsize=512)
def _parse(formula: str) -> ParsedFormula:
    """``parse_formula`` for a string; cached, as refits and new data parse the same text again."""
    if not formula.strip():
        raise FormulaError("the formula is empty", formula, 0)
    depths = depth_map(formula)
    sides = split_top(formula, Span(formula, 0), depths, ("~",))
    if len(sides) == 1:
        raise FormulaError("a formula needs '~' between the response and the predictors", formula, len(formula))
    if len(sides) > 2:
        raise FormulaError("a formula has exactly one '~'", formula, sides[2][1].start - 1)
    lhs, rhs = sides[0][1].strip(), sides[1][1].strip()
    response, cbind = _parse_response(formula, lhs, depths)
    if not rhs.text:
        raise FormulaError("nothing on the right of '~'", formula, rhs.start)
    fixed, bars, offsets = _parse_rhs(formula, rhs, depths)
    return ParsedFormula(
        text=formula, response=response, fixed=fixed, bars=tuple(bars), response_cbind=cbind, offsets=tuple(offsets)
    )


def _parse_response(formula: str, lhs: Span, depths: list[int]) -> tuple[str | None, tuple[str, str] | None]:
    if not lhs.text:
        return None, None
    _reject_bar(formula, lhs, depths)
    m = re.match(r"cbind\s*\(", lhs.text)
    if m and is_wrapped(Span(lhs.text[m.end() - 1 :], lhs.start + m.end() - 1), depths):
        inner = Span(lhs.text[m.end() : -1], lhs.start + m.end())
        args = [s.strip() for _, s in split_top(formula, inner, depths, (",",))]
        if len(args) != 2 or not all(a.text for a in args):
            raise FormulaError("cbind() takes two columns: cbind(successes, failures)", formula, lhs.start)
        s, f = (deparse(check_expression(formula, a)) for a in args)
        return None, (s, f)
    return deparse(check_expression(formula, lhs)), None


def _parse_rhs(formula: str, rhs: Span, depths: list[int]) -> tuple[str, list[RandomBar], list[str]]:
    bare = split_top(formula, rhs, depths, ("||", "|"))
    if len(bare) > 1:
        # R's '|' binds more loosely than '+' (and '~' more loosely still): `y ~ x + 1 | g` is
        # `y ~ (x + 1 | g)`, one random-effects term and an intercept-only fixed part (lme4's
        # findbars/nobars); lme4's own examples write `Yield ~ 1|Batch`
        return "1", _parse_bar(formula, rhs, bare, depths), []
    fixed_parts: list[tuple[str, str]] = []
    bars: list[RandomBar] = []
    offsets: list[str] = []
    _parse_sum(formula, rhs, depths, fixed_parts, bars, offsets)
    return _join_terms(fixed_parts), bars, offsets


def _parse_sum(
    formula: str,
    span: Span,
    depths: list[int],
    fixed_parts: list[tuple[str, str]],
    bars: list[RandomBar],
    offsets: list[str],
) -> None:
    """The terms of a sum, into the fixed part, the bars and the offsets.

    A parenthesised sum that holds random-effects terms, such as lme4's own
    deparse of a double bar ``((1 | g) + (0 + x | g))``, is read term by term,
    as lme4's findbars and nobars read it.
    """
    pieces = split_top(formula, span, depths, ("+", "-"))
    for idx, (sign, piece_span) in enumerate(pieces):
        piece = piece_span.strip()
        if not piece.text:
            if idx == 0 and len(pieces) > 1:
                continue  # a leading unary sign: "~ -1 + x"
            raise FormulaError("empty term (two operators in a row, or one at the end)", formula, piece_span.start)
        structured = _structured_bar(formula, piece, depths)
        if structured is not None:
            if sign == "-":
                raise FormulaError("a random-effects term cannot be removed with '-'", formula, piece.start)
            bars.extend(structured)
            continue
        inner = _unwrap(piece, depths)
        if inner is not None:
            parts = split_top(formula, inner, depths, ("||", "|"))
            if len(parts) > 1:
                if sign == "-":
                    raise FormulaError("a random-effects term cannot be removed with '-'", formula, piece.start)
                bars.extend(_parse_bar(formula, piece, parts, depths))
                continue
            if len(split_top(formula, inner, depths, ("+", "-"))) > 1 and _has_bar(inner, depths):
                if sign == "-":
                    raise FormulaError("a random-effects term cannot be removed with '-'", formula, piece.start)
                _parse_sum(formula, inner, depths, fixed_parts, bars, offsets)
                continue
        _reject_bar(formula, piece, depths)
        m = re.fullmatch(r"offset\s*\((.*)\)", piece.text, re.S)
        if m and is_wrapped(Span(piece.text[piece.text.index("(") :], piece.start + piece.text.index("(")), depths):
            if sign == "-":
                raise FormulaError("an offset cannot be removed with '-'", formula, piece.start)
            expr = Span(m.group(1), piece.start + piece.text.index("(") + 1).strip()
            if not expr.text:
                raise FormulaError("offset() needs an argument, e.g. offset(log(exposure))", formula, piece.start)
            offsets.append(deparse(check_expression(formula, expr)))
            continue
        fixed_parts.append((sign or "+", deparse(check_term(formula, piece))))


#: glmmTMB's spellings of structured random-effects covariances, ``diag(1 + x | g)`` and the like
STRUCTURED_BARS = ("diag", "us", "cs", "ar1")


def _structured_bar(formula: str, piece: Span, depths: list[int]) -> list[RandomBar] | None:
    """A glmmTMB structured term ``diag(lhs | g)`` / ``us(lhs | g)`` as bars, else None.

    ``cs(...)`` without a bar inside is a spline basis (a fixed term); with one it is glmmTMB's
    compound symmetry, which (like ``ar1(...)``) is not available yet: a FormulaError says so.
    """
    m = re.match(r"(diag|us|cs|ar1)\s*\(", piece.text)
    if not m:
        return None
    open_at = m.end() - 1
    call = Span(piece.text[open_at:], piece.start + open_at)
    if not is_wrapped(call, depths):
        return None
    inner = Span(call.text[1:-1], call.start + 1).strip()
    parts = split_top(formula, inner, depths, ("||", "|"))
    if len(parts) < 2:
        return None
    name = m.group(1)
    if name in ("cs", "ar1"):
        raise FormulaError(
            f"glmmTMB's {name}() random-effects structure is not available yet; diag() and us() are, and "
            "residual correlation structures are given as correlation=hb.corAR1(...)/hb.corCompSymm(...)",
            formula, piece.start,
        )  # fmt: skip
    if parts[1][0] == "||":
        raise FormulaError(f"'||' inside {name}(): write {name}(lhs | g)", formula, piece.start)
    bars = _parse_bar(formula, piece, parts, depths)
    return [dataclasses.replace(b, structure=name) for b in bars]


def _has_bar(span: Span, depths: list[int]) -> bool:
    return any(ch == "|" and depths[span.start + i] >= 0 for i, ch in enumerate(span.text))


def _parse_bar(formula: str, whole: Span, parts: list[tuple[str, Span]], depths: list[int]) -> list[RandomBar]:
    if len(parts) > 2:
        raise FormulaError("a random-effects term has one '|' (or '||')", formula, parts[2][1].start - 1)
    lhs, group = parts[0][1].strip(), parts[1][1].strip()
    double = parts[1][0] == "||"
    bar_pos = parts[1][1].start - len(parts[1][0])
    if not lhs.text:
        raise FormulaError("empty left side of '|': write (1 | g) for a random intercept", formula, bar_pos)
    if not group.text:
        raise FormulaError("empty grouping factor on the right of '|'", formula, bar_pos + len(parts[1][0]))
    intercept, terms = _bar_terms(formula, lhs, depths)
    groups = _parse_group(formula, group, depths)
    if double:
        lhss = (["1"] if intercept else []) + [f"0 + {t}" for t in terms]
    else:
        body = " + ".join(terms)
        lhss = [f"{'1' if intercept else '0'}" + (f" + {body}" if body else "")]
    if not intercept and not terms:
        raise FormulaError("this random-effects term has no columns", formula, whole.start)
    return [RandomBar(lhs=l_, group=g, correlated=not double, position=whole.start) for l_ in lhss for g in groups]


def _bar_terms(formula: str, lhs: Span, depths: list[int]) -> tuple[bool, list[str]]:
    """Intercept flag and non-intercept terms of a bar's left side."""
    intercept, terms = True, []
    for idx, (sign, span) in enumerate(split_top(formula, lhs, depths, ("+", "-"))):
        piece = span.strip()
        if not piece.text:
            if idx == 0:
                continue
            raise FormulaError("empty term in a random-effects term", formula, span.start)
        _reject_bar(formula, piece, depths, inside=lhs)
        if re.fullmatch(r"offset\s*\(.*\)", piece.text, re.S):
            raise FormulaError("offset() belongs in the fixed part, not inside a random-effects term",
                               formula, piece.start)  # fmt: skip
        text = deparse(check_term(formula, piece))
        if text in ("0", "-1"):
            intercept = False
        elif text == "1":
            intercept = sign != "-"
        elif sign == "-":
            raise FormulaError("only the intercept can be removed inside a random-effects term", formula, piece.start)
        else:
            terms.append(text)
    return intercept, terms


def _parse_group(formula: str, group: Span, depths: list[int]) -> list[tuple[str, ...]]:
    """Grouping factors of a bar, each a tuple of R expressions; ``a/b`` expands to ``b:a`` and ``a``."""
    for _, part in split_top(formula, group, depths, ("/",)):
        if not part.strip().text:
            raise FormulaError("empty grouping factor around '/'", formula, part.strip().start)
    node = check_expression(formula, group)
    nests = [_interaction_parts(formula, part) for part in _nest_parts(node)]
    out = []
    for depth in range(len(nests), 0, -1):  # innermost first, as lme4's findbars
        combined: tuple[str, ...] = ()
        for names in reversed(nests[:depth]):
            combined += names
        out.append(combined)
    return out


def _nest_parts(node: Node) -> list[Node]:
    while isinstance(node, Paren):
        node = node.inner
    if isinstance(node, BinOp) and node.op == "/":
        return _nest_parts(node.left) + _nest_parts(node.right)
    return [node]


def _interaction_parts(formula: str, node: Node) -> tuple[str, ...]:
    while isinstance(node, Paren):
        node = node.inner
    if isinstance(node, BinOp) and node.op == ":":
        return _interaction_parts(formula, node.left) + _interaction_parts(formula, node.right)
    if isinstance(node, Name) or (isinstance(node, Call) and node.fn in GROUPING_FUNCTIONS and not node.namespace):
        return (deparse(node),)
    raise FormulaError(
        "a grouping factor is a column name, an interaction a:b of column names, or factor(g) or "
        "interaction(a, b) of columns",
        formula,
        node.pos,
    )


def _unwrap(span: Span, depths: list[int]) -> Span | None:
    """Inside of a span wholly wrapped in parentheses (peeling every layer), else None."""
    inner = None
    while span.text.startswith("(") and is_wrapped(span, depths):
        span = inner = Span(span.text[1:-1], span.start + 1).strip()
    return inner


def _reject_bar(formula: str, span: Span, depths: list[int], inside: Span | None = None) -> None:
    """A '|' where no random-effects term can be: in the response, in a fixed term, in a bar's left side."""
    for i, ch in enumerate(span.text):
        if ch == "|" and depths[span.start + i] >= 0:
            if inside is not None:
                msg = (
                    f"a random-effects term inside the left side of another ('{inside.text}'): R reads "
                    "'y ~ x + 1 | g' as 'y ~ (x + 1 | g)'; put each random-effects term in its own "
                    "parentheses, y ~ x + (1 | h) + (1 | g)"
                )
            else:
                msg = "'|' outside a random-effects term: write random effects in parentheses, (1 + x | g)"
            raise FormulaError(msg, formula, span.start + i)


def _join_terms(parts: list[tuple[str, str]]) -> str:
    if not parts:
        return "1"
    text = ""
    for sign, term in parts:
        text += (f" {sign} " if text else ("-" if sign == "-" else "")) + term
    return text
