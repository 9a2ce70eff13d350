"""Character-level scanning of formula text: brackets, quotes, top-level splits.

The parser works on spans of the original text so that every error can point
at a position in the formula as the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hierbayes.errors import FormulaError

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_QUOTES = "'\"`"


@dataclass(frozen=True)
class Span:
    """A piece of the formula text: ``text == formula[start:start + len(text)]``."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def strip(self) -> Span:
        lead = len(self.text) - len(self.text.lstrip())
        return Span(self.text.strip(), self.start + lead)


def depth_map(formula: str) -> list[int]:
    """Bracket depth of every character; quoted text has depth -1.

    Raises
    ------
    FormulaError
        For an unbalanced or mismatched bracket or an unclosed quote.
    """
    depths: list[int] = []
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(formula):
        ch = formula[i]
        if ch in _QUOTES:
            close = formula.find(ch, i + 1)
            if close < 0:
                raise FormulaError(f"unclosed quote {ch}", formula, i)
            depths.extend([-1] * (close - i + 1))
            i = close + 1
            continue
        if ch in _OPEN:
            depths.append(len(stack))
            stack.append((ch, i))
        elif ch in _CLOSE:
            if not stack:
                raise FormulaError(f"unbalanced parentheses: '{ch}' has no matching '{_CLOSE[ch]}'", formula, i)
            opener, pos = stack.pop()
            if _OPEN[opener] != ch:
                raise FormulaError(f"mismatched brackets: '{opener}' closed by '{ch}'", formula, i)
            depths.append(len(stack))
        else:
            depths.append(len(stack))
        i += 1
    if stack:
        opener, pos = stack[-1]
        raise FormulaError(f"unbalanced parentheses: '{opener}' is never closed", formula, pos)
    return depths


def split_top(formula: str, span: Span, depths: list[int], seps: tuple[str, ...]) -> list[tuple[str, Span]]:
    """Split ``span`` at separators that sit at the span's own bracket depth.

    Returns ``(separator, piece)`` pairs; the first piece has separator "".
    Longer separators are tried first, so ``||`` is never read as two ``|``.
    """
    seps = tuple(sorted(seps, key=len, reverse=True))
    base = min((d for d in depths[span.start : span.end] if d >= 0), default=None)
    if base is None:  # all quoted (a `backticked name`): nothing to split
        return [("", span)]
    pieces: list[tuple[str, Span]] = []
    current_sep, piece_start = "", span.start
    i = span.start
    while i < span.end:
        if depths[i] == base:
            for sep in seps:
                if formula.startswith(sep, i):
                    pieces.append((current_sep, Span(formula[piece_start:i], piece_start)))
                    current_sep, piece_start = sep, i + len(sep)
                    i += len(sep) - 1
                    break
        i += 1
    pieces.append((current_sep, Span(formula[piece_start : span.end], piece_start)))
    return pieces


def is_wrapped(span: Span, depths: list[int]) -> bool:
    """True when the whole (stripped) span is one parenthesised group."""
    s = span.strip()
    if not (s.text.startswith("(") and s.text.endswith(")")):
        return False
    d0 = depths[s.start]
    return all(depths[j] > d0 or depths[j] < 0 for j in range(s.start + 1, s.end - 1))
