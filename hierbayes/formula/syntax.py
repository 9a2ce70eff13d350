"""Syntax checks of single pieces of a formula, so that a malformed formula fails in the parser.

The parser splits a formula into its response, terms, offsets and bars
itself; each piece is an R expression, read here with R's grammar
(:mod:`hierbayes.formula.rexpr`). A term of the fixed part is more than an
expression: at its top level only the formula operators ``+ - * / : ^ %in%``
and parentheses combine variables, and a number there can only be the
intercept (``0``, ``1``). Every complaint is a ``FormulaError`` pointing into
the formula as the user wrote it.
"""

from __future__ import annotations

from hierbayes.errors import FormulaError
from hierbayes.formula.rexpr import BinOp, Call, Name, Node, Num, Paren, Str, Unary, parse, walk
from hierbayes.formula.scan import Span

#: Functions a formula may call: R's (``factor``, ``poly``, ``C``, ...), formulaic's, and ``np.*``.
KNOWN_FUNCTIONS = frozenset(
    {
        # arithmetic
        "log", "log2", "log10", "log1p", "exp", "expm1", "exp2", "exp10", "sqrt", "abs", "sin", "cos", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "tanh", "floor", "ceiling", "round", "trunc", "sign",
        "pmin", "pmax", "ifelse", "I", "c",
        # types and factors
        "factor", "as.factor", "ordered", "as.ordered", "as.numeric", "as.double", "as.integer",
        "as.character", "as.logical", "relevel", "interaction", "droplevels",
        # contrasts
        "C", "contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.SAS", "contr.diff",
        "Treatment", "Sum", "Helmert", "Diff", "Poly",
        # polynomials, scaling, splines (formulaic's)
        "poly", "scale", "center", "standardize", "bs", "cs", "cc", "cr", "lag", "hashed",
    }
)  # fmt: skip
#: Functions callable without an argument.
_NO_ARGUMENT = frozenset({"contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.SAS", "contr.diff",
                          "Treatment", "Sum", "Helmert", "Diff", "Poly", "c"})  # fmt: skip
#: Module prefixes whose functions may be called (``np.log``).
NAMESPACES = ("np", "numpy")
#: The operators that build terms at a formula's top level (R's ``terms.formula``).
FORMULA_OPERATORS = frozenset({"+", "-", "*", "/", ":", "^", "%in%"})


def is_known_function(name: str) -> bool:
    """True for a function a formula may call."""
    return name in KNOWN_FUNCTIONS or name.split(".")[0] in NAMESPACES


def check_expression(formula: str, span: Span) -> Node:
    """Parse an expression (a response, an offset, an argument of ``cbind``) and check its calls.

    Returns
    -------
    Node
        The parsed expression, positions relative to ``formula``.

    Raises
    ------
    FormulaError
        Pointing at the first offending character.
    """
    node = parse(span.text, span.start, formula)
    check_calls(formula, node)
    return node


def check_term(formula: str, span: Span) -> Node:
    """Parse one term of a right-hand side (``x:z``, ``log(x)``, ``(a + b)^2``) and check it.

    Raises
    ------
    FormulaError
        For a syntax error, a string or a number (other than the intercept)
        used as a term, ``.``, or an unknown function, pointing into ``formula``.
    """
    node = parse(span.text, span.start, formula)
    _check_formula_level(formula, node)
    check_calls(formula, node)
    return node


def formula_atoms(node: Node) -> list[Node]:
    """The variables of a term: what the formula operators combine (``x``, ``log(z)``, ``x > 1``)."""
    if isinstance(node, Paren):
        return formula_atoms(node.inner)
    if isinstance(node, BinOp) and node.op in FORMULA_OPERATORS:
        right = [] if node.op == "^" else formula_atoms(node.right)
        return formula_atoms(node.left) + right
    if isinstance(node, Unary) and node.op in "+-":
        return formula_atoms(node.operand)
    if isinstance(node, Num):
        return []
    return [node]


def _check_formula_level(formula: str, node: Node) -> None:
    if isinstance(node, Paren):
        _check_formula_level(formula, node.inner)
    elif isinstance(node, BinOp) and node.op in FORMULA_OPERATORS:
        _check_formula_level(formula, node.left)
        if node.op == "^":
            if not isinstance(node.right, Num):
                raise FormulaError("the power of a formula term must be a number: (a + b)^2", formula, node.right.pos)
        else:
            _check_formula_level(formula, node.right)
    elif isinstance(node, Unary) and node.op in "+-":
        _check_formula_level(formula, node.operand)
    elif isinstance(node, Num):
        if node.text not in ("0", "1"):
            raise FormulaError(
                f"a number ({node.text}) is not a term: only 0 and 1 (the intercept) can stand alone; "
                f"write I({node.text} * x) for a scaled variable",
                formula,
                node.pos,
            )
    elif isinstance(node, Str):
        raise FormulaError("a string literal is not a term (write a column name, in `backticks` if needed)",
                           formula, node.pos)  # fmt: skip


def check_calls(formula: str, node: Node) -> None:
    """Every call is to a known function, with an argument where one is needed; ``.`` is not a variable."""
    for sub in walk(node):
        if isinstance(sub, Name) and sub.id == "." and not sub.quoted:
            raise FormulaError(
                "'.' (all other columns) is not supported: list the predictors by name", formula, sub.pos
            )
        if not isinstance(sub, Call):
            continue
        if not is_known_function(sub.fn):
            known = ", ".join(sorted(KNOWN_FUNCTIONS - {"Treatment", "Sum", "Helmert", "Diff", "Poly"}, key=str.lower))
            raise FormulaError(f"unknown function '{sub.fn}' (known: {known}, np.*)", formula, sub.pos)
        if not sub.args and sub.fn not in _NO_ARGUMENT:
            raise FormulaError(f"{sub.fn}() needs an argument, e.g. {sub.fn}(x)", formula, sub.pos)
