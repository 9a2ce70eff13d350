"""R expressions: the pieces of a formula read with R's grammar, and printed back the way R prints them.

A formula's response, terms, offsets and grouping factors are R expressions:
``log(y)``, ``I(x^2)``, ``poly(x, 2)``, ``C(k, contr.sum)``, ``sin(2*pi*t)``,
`` `my var` ``. This module parses one such piece into a small tree of frozen
nodes (``parse``), with R's operator precedence (``-x^2`` is ``-(x^2)``,
``a:b`` binds tighter than ``*``) and R's literals (``TRUE``, ``2L``, ``1e-3``),
and prints a tree back with R's ``deparse`` spacing (``deparse``): that text is
how R names model-matrix columns (``log(x + 1)``, ``I(x^2)``, ``x/2``,
`` `my var` ``). The tree knows nothing about data: which names are columns is
decided by the design layer.

Errors are ``FormulaError`` pointing into the whole formula.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hierbayes.errors import FormulaError

# --- nodes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """Base of the expression tree; ``pos`` is the offset of the node's first character in the formula."""

    pos: int


@dataclass(frozen=True)
class Name(Node):
    """A variable: ``x``, ``my.var``, `` `my var` `` or ``Q("my var")`` (``quoted`` for the last two)."""

    id: str
    quoted: bool = False


@dataclass(frozen=True)
class Num(Node):
    """A number literal as written (``2``, ``2L``, ``1e-3``, ``0x10``)."""

    text: str

    @property
    def value(self) -> float | int:
        t = self.text.rstrip("L")
        if t.lower().startswith("0x"):
            return int(t, 16)
        v = float(t)
        return int(v) if self.text.endswith("L") else v


@dataclass(frozen=True)
class Str(Node):
    """A string literal."""

    value: str


@dataclass(frozen=True)
class Arg:
    """One argument of a call: ``name = value`` or a positional ``value``."""

    name: str | None
    value: Node


@dataclass(frozen=True)
class Call(Node):
    """A function call; ``fn`` is the function's name with any ``pkg::`` prefix removed."""

    fn: str
    args: tuple[Arg, ...]
    namespace: str = ""


@dataclass(frozen=True)
class BinOp(Node):
    """A binary operator, R's spelling (``^``, ``%in%``, ``&``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    """``-x``, ``+x`` or ``!x``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Paren(Node):
    """``(inner)``: kept, as R keeps it, so that deparsing gives back the user's grouping."""

    inner: Node


# --- tokens -----------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?")
_NAME_START = re.compile(r"[^\W\d]|\.(?!\d)", re.UNICODE)
_NAME = re.compile(r"(?:[^\W\d]|\.(?!\d))[\w.]*", re.UNICODE)
_OPERATORS = (
    ":::", "::", "%/%", "**", "<=", ">=", "==", "!=", "&&", "||", "<-", "->", "|>",
    "+", "-", "*", "/", "^", ":", "~", "!", "&", "|", "<", ">", "=", "(", ")", "[", "]", ",", "$", "@", "?", "{", "}",
)  # fmt: skip

#: Names that are R literals, never columns: R reserves them.
CONSTANTS = {"TRUE": True, "FALSE": False, "NULL": None, "NA": float("nan"), "NaN": float("nan"), "Inf": float("inf")}
#: R's reserved words: as a column name they need backticks in R; here they are accepted bare.
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "in", *CONSTANTS}
_R_SYNTACTIC = re.compile(r"^(?:[^\W\d_]|\.(?!\d))[\w.]*$|^\.$", re.UNICODE)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num", "str", "name", "qname" (backticked), "op", "end"
    text: str
    pos: int


def _tokenize(text: str, offset: int, formula: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = offset + i
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise FormulaError("unclosed quote `", formula, pos)
            if end == i + 1:
                raise FormulaError("an empty name ``", formula, pos)
            toks.append(_Tok("qname", text[i + 1 : end], pos))
            i = end + 1
            continue
        if ch in "'\"":
            j, out = i + 1, []
            while j < len(text) and text[j] != ch:
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                    out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(text[j], "\\" + text[j]))
                else:
                    out.append(text[j])
                j += 1
            if j >= len(text):
                raise FormulaError(f"unclosed quote {ch}", formula, pos)
            toks.append(_Tok("str", "".join(out), pos))
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or (ch == "." and i + 1 < len(text) and text[i + 1].isdigit())):
            end = m.end()
            if end < len(text) and (text[end].isalpha() or text[end] == "_"):
                raise FormulaError(
                    f"'{text[i : end + 1]}...' is not a valid expression: a name cannot start with a digit "
                    "(write `3x` in backticks for a column of that name)",
                    formula,
                    pos,
                )
            toks.append(_Tok("num", m.group(0), pos))
            i = end
            continue
        if _NAME_START.match(ch) or ch == "_":
            m = _NAME.match(text, i) if ch != "_" else re.compile(r"[\w.]+").match(text, i)
            toks.append(_Tok("name", m.group(0), pos))
            i = m.end()
            continue
        if ch == "%":
            end = text.find("%", i + 1)
            if end < 0:
                raise FormulaError("an operator %...% is not closed", formula, pos)
            toks.append(_Tok("op", text[i : end + 1], pos))
            i = end + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("op", "^" if op == "**" else op, pos))
                i += len(op)
                break
        else:
            raise FormulaError(f"unexpected character {ch!r}", formula, pos)
    toks.append(_Tok("end", "", offset + len(text)))
    return toks


# --- parser -----------------------------------------------------------------------------------------------------

# (left binding power, right binding power) of R's binary operators, from ?Syntax.
_INFIX = {
    "^": (90, 89),
    ":": (70, 71),
    "*": (50, 51),
    "/": (50, 51),
    "+": (40, 41),
    "-": (40, 41),
    "<": (30, 31),
    ">": (30, 31),
    "<=": (30, 31),
    ">=": (30, 31),
    "==": (30, 31),
    "!=": (30, 31),
    "&": (20, 21),
    "&&": (20, 21),
    "|": (10, 11),
    "||": (10, 11),
}
_SPECIAL_BP = (60, 61)  # %any%
_UNARY_BP = 80  # unary minus binds tighter than ':' but looser than '^'
_NOT_BP = 25
_UNSUPPORTED = {
    "$": "'$' (use the column name itself)",
    "@": "'@'",
    "[": "indexing with '['",
    "<-": "assignment",
    "->": "assignment",
    "|>": "the pipe '|>'",
    "?": "'?'",
    "{": "braces",
    "~": "'~' inside an expression",
}


class _Parser:
    def __init__(self, text: str, offset: int, formula: str):
        self.formula = formula
        self.toks = _tokenize(text, offset, formula)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, pos: int) -> FormulaError:
        return FormulaError(message, self.formula, pos)

    def expect(self, op: str) -> _Tok:
        tok = self.peek()
        if tok.kind != "op" or tok.text != op:
            got = "the end" if tok.kind == "end" else f"'{tok.text}'"
            raise self.error(f"expected '{op}', found {got}", tok.pos)
        return self.take()

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty expression", self.peek().pos)
        node = self.expr(0)
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "op" and tok.text in (")", "]", "}"):
                raise self.error(f"unbalanced parentheses: '{tok.text}' has no matching opening bracket", tok.pos)
            raise self.error(
                f"missing operator before '{tok.text}' (two names or values in a row: write x + z, x:z or x * z)",
                tok.pos,
            )
        return node

    def expr(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind != "op":
                if tok.kind != "end":
                    raise self.error(
                        f"missing operator before '{tok.text}' (two names or values in a row: "
                        "write x + z, x:z or x * z)",
                        tok.pos,
                    )
                return left
            op = tok.text
            if op in _INFIX:
                lbp, rbp = _INFIX[op]
            elif op.startswith("%"):
                lbp, rbp = _SPECIAL_BP
            elif op in _UNSUPPORTED:
                raise self.error(f"{_UNSUPPORTED[op]} is not supported in a formula", tok.pos)
            else:
                return left  # ')', ',', '=' and the like end this expression
            if lbp < min_bp:
                return left
            self.take()
            if self.peek().kind == "end" or (self.peek().kind == "op" and self.peek().text in (")", ",")):
                raise self.error(f"operator '{op}' needs something on its right", tok.pos)
            right = self.expr(rbp)
            left = BinOp(left.pos, op, left, right)

    def prefix(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Num(tok.pos, tok.text)
        if tok.kind == "str":
            return Str(tok.pos, tok.text)
        if tok.kind == "qname":
            return self.postfix(Name(tok.pos, tok.text, quoted=True))
        if tok.kind == "name":
            name, namespace = tok.text, ""
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in ("::", ":::"):
                self.take()
                fn = self.take()
                if fn.kind not in ("name", "qname"):
                    raise self.error(f"a function name must follow '{name}{nxt.text}'", fn.pos)
                namespace, name = tok.text, fn.text
                if not (self.peek().kind == "op" and self.peek().text == "("):
                    raise self.error(
                        f"only functions can be taken from a package: {tok.text}{nxt.text}{name}(...)", tok.pos
                    )
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.postfix(self.call(name, tok.pos, namespace))
            return self.postfix(Name(tok.pos, name))
        if tok.kind == "op":
            if tok.text in ("-", "+"):
                if self.peek().kind == "end":
                    raise self.error(f"operator '{tok.text}' needs something on its right", tok.pos)
                return Unary(tok.pos, tok.text, self.expr(_UNARY_BP))
            if tok.text == "!":
                return Unary(tok.pos, "!", self.expr(_NOT_BP))
            if tok.text == "(":
                if self.peek().kind == "op" and self.peek().text == ")":
                    raise self.error("empty parentheses", tok.pos)
                inner = self.expr(0)
                self.close(tok)
                return self.postfix(Paren(tok.pos, inner))
            if tok.text in _UNSUPPORTED:
                raise self.error(f"{_UNSUPPORTED[tok.text]} is not supported in a formula", tok.pos)
            if tok.text in (")", "]", "}"):
                raise self.error(f"unbalanced parentheses: '{tok.text}' has no matching opening bracket", tok.pos)
            raise self.error(f"operator '{tok.text}' needs something on its left", tok.pos)
        raise self.error("the expression ends too early", tok.pos)

    def close(self, opener: _Tok) -> None:
        tok = self.peek()
        if tok.kind == "op" and tok.text == ")":
            self.take()
            return
        if tok.kind == "end":
            raise self.error("unbalanced parentheses: '(' is never closed", opener.pos)
        raise self.error(
            f"missing operator before '{tok.text}' (two names or values in a row: write x + z, x:z or x * z)",
            tok.pos,
        )

    def postfix(self, node: Node) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("[", "$", "@"):
            raise self.error(f"{_UNSUPPORTED[tok.text]} is not supported in a formula", tok.pos)
        if tok.kind == "op" and tok.text == "(":
            raise self.error("only a name can be called as a function", tok.pos)
        return node

    def call(self, name: str, pos: int, namespace: str) -> Node:
        opener = self.expect("(")
        args: list[Arg] = []
        if self.peek().kind == "op" and self.peek().text == ")":
            self.take()
            return Call(pos, name, (), namespace)
        while True:
            tok = self.peek()
            arg_name = None
            if tok.kind in ("name", "qname", "str") and self.toks[self.i + 1].kind == "op":
                if self.toks[self.i + 1].text == "=":
                    arg_name = tok.text
                    self.i += 2
            if self.peek().kind == "op" and self.peek().text in (",", ")"):
                raise self.error(f"an empty argument in {name}(...)", self.peek().pos)
            if self.peek().kind == "end":
                raise self.error("unbalanced parentheses: '(' is never closed", opener.pos)
            args.append(Arg(arg_name, self.expr(0)))
            tok = self.peek()
            if tok.kind == "op" and tok.text == ",":
                self.take()
                continue
            self.close(opener)
            break
        if name == "Q" and not namespace and len(args) == 1 and isinstance(args[0].value, Str):
            return Name(pos, args[0].value.value, quoted=True)  # formulaic's quoting: Q("my var")
        return Call(pos, name, tuple(args), namespace)


@lru_cache(maxsize=2048)
def parse(text: str, offset: int = 0, formula: str | None = None) -> Node:
    """Parse one R expression.

    Parameters
    ----------
    text
        The expression, e.g. ``"log(x + 1)"``.
    offset
        Offset of ``text`` in ``formula``, so that errors point into the formula.
    formula
        The whole formula (``text`` itself when None).

    Raises
    ------
    FormulaError
        With the position of the offending character.

    Examples
    --------
    >>> deparse(parse("I(x^2)+log(`my var`, base=2)"))
    'I(x^2) + log(`my var`, base = 2)'
    """
    return _Parser(text, offset, text if formula is None else formula).parse()


# --- printing ---------------------------------------------------------------------------------------------------

_TIGHT = {"^", ":", "/", "%%", "%/%"}  # R's deparse writes these without spaces


def deparse(node: Node) -> str:
    """The expression as R's ``deparse`` prints it (how R names model-matrix columns).

    Examples
    --------
    >>> deparse(parse("sin(2*pi*t)")), deparse(parse("x/2 - 1e5")), deparse(parse("poly(x,2,raw=TRUE)"))
    ('sin(2 * pi * t)', 'x/2 - 1e+05', 'poly(x, 2, raw = TRUE)')
    """
    if isinstance(node, Name):
        return node.id if node.id in CONSTANTS and not node.quoted else r_name(node.id)
    if isinstance(node, Num):
        return _deparse_number(node)
    if isinstance(node, Str):
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(node, Call):
        args = ", ".join((f"{r_name(a.name)} = " if a.name is not None else "") + deparse(a.value) for a in node.args)
        prefix = f"{node.namespace}::" if node.namespace else ""
        return f"{prefix}{r_name(node.fn)}({args})"
    if isinstance(node, BinOp):
        sep = node.op if node.op in _TIGHT else f" {node.op} "
        return deparse(node.left) + sep + deparse(node.right)
    if isinstance(node, Unary):
        return node.op + deparse(node.operand)
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    raise TypeError(node)  # pragma: no cover


def r_name(name: str) -> str:
    """A name as R prints it: syntactic names as they are, others in backticks (`` `my var` ``)."""
    if _R_SYNTACTIC.match(name) and name not in _RESERVED:
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _deparse_number(node: Num) -> str:
    text = node.text
    if text.endswith("L"):
        return f"{node.value}L"
    return format_double(float(node.value))


def format_double(value: float) -> str:
    """A double as R prints it with 15 significant digits (``as.character``, ``deparse``).

    R writes the shortest of the fixed and scientific forms, preferring fixed on
    a tie: ``1e+05`` but ``123456``, ``0.001`` but ``1e-04``.

    Examples
    --------
    >>> [format_double(v) for v in (2.0, 0.1 + 0.2, 1e5, 123456.0, 1e-4, 0.001, -2.5)]
    ['2', '0.3', '1e+05', '123456', '1e-04', '0.001', '-2.5']
    """
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sci = f"{value:.14e}"
    mantissa, exp = sci.split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    e = int(exp)
    sig = len(mantissa.replace("-", "").replace(".", ""))
    sci_text = f"{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    decimals = max(0, sig - 1 - e)
    fixed_text = f"{value:.{decimals}f}"
    return fixed_text if len(fixed_text) <= len(sci_text) else sci_text


# --- walking ----------------------------------------------------------------------------------------------------


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(node, Call):
        return tuple(a.value for a in node.args)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Paren):
        return (node.inner,)
    return ()


def walk(node: Node):
    """Every node of the tree, depth first, parents before children."""
    yield node
    for c in children(node):
        yield from walk(c)
