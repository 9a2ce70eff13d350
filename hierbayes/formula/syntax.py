"""Syntax checks of single terms, so that a malformed formula fails in the parser.

The parser splits a formula into terms itself; what is inside a term (``x:z``,
``log(x)``, ``(a + b)^2``) is formulaic's grammar wrapped around Python code.
Both are checked here, and their complaints become a ``FormulaError`` that
points into the formula as the user wrote it, instead of surfacing later as a
formulaic or Python traceback.
"""

from __future__ import annotations

import ast
import re

from formulaic.errors import FormulaParsingError, FormulaSyntaxError
from formulaic.parser import DefaultFormulaParser

from hierbayes.errors import FormulaError
from hierbayes.formula.scan import Span, mask_quotes

_PARSER = DefaultFormulaParser()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MARK_OPEN, _MARK_CLOSE = "\u29db", "\u29da"  # formulaic's highlight markers around the culprit
_BACKTICKED = re.compile(r"`[^`]*`")
_DOT_NAME = re.compile(r"(?<![\w.])\.(?=[A-Za-z_])")
_DOT_ALONE = re.compile(r"(?<![\w.])\.(?![\w.])")


def check_expression(formula: str, span: Span) -> None:
    """Check that an expression (a response, an offset) is valid Python once R's operators are mapped.

    Raises
    ------
    FormulaError
        Pointing at the first offending character.
    """
    problem = _python_problem(span.text)
    if problem is not None:
        message, offset = problem
        raise FormulaError(f"'{span.text}' is not a valid expression ({message})", formula, span.start + offset)


def check_term(formula: str, span: Span) -> None:
    """Check one term of a right-hand side (``x:z``, ``log(x)``, ``(a + b)^2``).

    Raises
    ------
    FormulaError
        For formulaic's grammar errors (a missing or misplaced operator) and
        Python syntax errors inside the term, pointing into ``formula``.
    """
    if not span.text.replace("(", "").replace(")", "").strip():
        raise FormulaError("empty parentheses", formula, span.start)
    problem = _python_problem(span.text)
    if problem is not None and problem[0].startswith("'.'"):
        raise FormulaError(problem[0], formula, span.start + problem[1])
    try:
        _PARSER.get_terms(span.text)
    except (FormulaSyntaxError, FormulaParsingError) as exc:
        message, offset = _formulaic_message(exc)
        if offset is None:
            offset = problem[1] if problem else 0
        raise FormulaError(f"invalid term '{span.text}': {message}", formula, span.start + offset) from None
    except Exception as exc:  # formulaic re-raises Python's own errors from code inside calls
        message, offset = problem or (str(exc), 0)
        raise FormulaError(f"invalid term '{span.text}': {message}", formula, span.start + offset) from None
    check_expression(formula, span)


def _python_problem(text: str) -> tuple[str, int] | None:
    """What is wrong with ``text`` read as Python (R's operators mapped), and where; None when fine."""
    dot = _DOT_ALONE.search(mask_quotes(text))
    if dot:
        return "'.' (all other columns) is not supported: list the predictors by name", dot.start()
    code = _as_python(text)
    try:
        ast.parse(f"({code}\n)", mode="eval")  # parenthesised: leading blanks are not an indent
    except SyntaxError as exc:
        line, col = exc.lineno or 1, (exc.offset or 1) - 2
        offset = col if line == 1 and 0 <= col < len(code) else len(code)
        return exc.msg, offset
    return None


def _as_python(text: str) -> str:
    """The term as Python, same length: ``:``, ``^`` and ``%in%`` become ``*``; a quoted name an identifier."""
    text = _BACKTICKED.sub(lambda m: " " + "_" * (len(m.group(0)) - 2) + " ", text)
    text = _DOT_NAME.sub("_", text)
    text = text.replace("%in%", " *  ").replace(":", "*")
    return re.sub(r"(?<!\*)\^(?!\*)", "*", text)


def _formulaic_message(exc: Exception) -> tuple[str, int | None]:
    """formulaic's message without its highlighted context, and the culprit's offset in the term."""
    text = _ANSI.sub("", str(exc))
    head, _, context = text.partition("\n\n")
    offset = context.find(_MARK_OPEN)
    head = head.strip().rstrip(".").replace("insuffient", "insufficient") or type(exc).__name__
    return head.replace(_MARK_OPEN, "").replace(_MARK_CLOSE, ""), (offset if offset >= 0 else None)
