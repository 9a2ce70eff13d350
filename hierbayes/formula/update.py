"""R's ``update.formula``: a new formula written with ``.`` for the old formula's sides.

``update(m, . ~ . - Days)`` in R, ``fit.update(". ~ . - Days")`` here. The
result is text for :func:`~hierbayes.formula.parse_formula`; unlike R it is not
simplified (``Reaction ~ Days + (Days | Subject) - Days`` rather than
``Reaction ~ (Days | Subject)``), which the parser reads to the same model.
"""

from __future__ import annotations

import re

from hierbayes.errors import FormulaError
from hierbayes.formula.scan import Span, depth_map, split_top

#: A ``.`` standing for a whole side: not part of a name (``a.b``, ``.x``) or a number (``1.5``).
_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


def update_formula(old: str, new: str) -> str:
    """The formula ``new`` with each ``.`` replaced by the matching side of ``old`` (R's ``update.formula``).

    Parameters
    ----------
    old
        The fitted model's formula, ``"Reaction ~ Days + (Days | Subject)"``.
    new
        The update: ``". ~ . - Days"``, ``"~ . + (1 | Item)"`` (a one-sided
        update keeps the response), ``"log(.) ~ ."``, or a whole new formula.

    Returns
    -------
    str
        The updated formula text.

    Raises
    ------
    FormulaError
        When either formula has no (or more than one) top-level ``~``, or a
        random-effects term removed with ``-`` is not in the formula.

    Notes
    -----
    A random-effects term removed with ``- (Days | Subject)`` is taken out of
    the sum, as R's ``terms.formula(simplify = TRUE)`` does inside ``update``;
    fixed-effects terms removed with ``-`` stay in the text and the parser
    removes them (``a * b - a:b``).

    Examples
    --------
    >>> update_formula("Reaction ~ Days + (Days | Subject)", ". ~ . - Days")
    'Reaction ~ Days + (Days | Subject) - Days'
    >>> update_formula("Reaction ~ Days + (Days | Subject)", "log(.) ~ . + (1 | Day)")
    'log(Reaction) ~ Days + (Days | Subject) + (1 | Day)'
    >>> update_formula("Reaction ~ Days + (Days | Subject)", ". ~ . - (Days | Subject) + (1 | Subject)")
    'Reaction ~ Days + (1 | Subject)'
    """
    if not isinstance(new, str):
        raise FormulaError(f"an updated formula must be a string such as '. ~ . - x', not {type(new).__name__}")
    old_lhs, old_rhs = _sides(old, "the model's formula")
    new_lhs, new_rhs = _sides(new, "the updated formula")
    lhs = old_lhs if not new_lhs else _replace_dots(new, new_lhs, old_lhs, wrap=False)
    rhs = _drop_removed_bars(new, _replace_dots(new, new_rhs, old_rhs, wrap=True))
    return f"{lhs} ~ {rhs}" if lhs else f"~ {rhs}"


def _sides(formula: str, what: str) -> tuple[str, str]:
    depths = depth_map(formula)
    parts = split_top(formula, Span(formula, 0), depths, ("~",))
    if len(parts) != 2:
        raise FormulaError(f"{what} needs exactly one '~' outside brackets", formula, 0)
    return parts[0][1].text.strip(), parts[1][1].text.strip()


def _replace_dots(formula: str, side: str, old: str, wrap: bool) -> str:
    """Replace each ``.`` outside quotes; on the right, wrap the old side in brackets unless it leads a sum."""
    depths = depth_map(side)
    out, last = [], 0
    for match in _DOT.finditer(side):
        i = match.start()
        if depths[i] < 0:  # inside a quoted or backticked name
            continue
        if not old:
            raise FormulaError("the update uses '.' for a side the model's formula does not have", formula, 0)
        leading = not side[:i].strip() and depths[i] == 0
        out.append(side[last:i])
        out.append(old if (leading or not wrap) else f"({old})")
        last = match.end()
    out.append(side[last:])
    return "".join(out).strip()


def _drop_removed_bars(formula: str, rhs: str) -> str:
    """Take ``- (x | g)`` and the matching ``+ (x | g)`` out of a sum (terms compared without spaces)."""
    depths = depth_map(rhs)
    pieces = [(sign, span.text.strip()) for sign, span in split_top(rhs, Span(rhs, 0), depths, ("+", "-"))]
    removed = [text for sign, text in pieces if sign == "-" and _is_bar(text)]
    if not removed:
        return rhs
    kept = [(sign, text) for sign, text in pieces if not (sign == "-" and _is_bar(text))]
    for text in removed:
        key = _key(text)
        match = next((i for i, (sign, t) in enumerate(kept) if sign != "-" and _key(t) == key), None)
        if match is None:
            raise FormulaError(f"the random-effects term {text} is not in the formula, so it cannot be removed",
                               formula, 0)  # fmt: skip
        del kept[match]
    out = " ".join(f"{sign} {text}" if sign else text for sign, text in kept if sign or text).strip()
    out = out[2:] if out.startswith("+ ") else out
    return out or "1"


def _is_bar(text: str) -> bool:
    return "|" in text and text.endswith(")")


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text)
