"""Formula pieces (R expressions) -> the code formulaic evaluates, with the data's columns bound.

Names are looked up the way R's model frame looks them up: a name that is a
column is the column (whatever it is called: ``class``, ``I``, ``pi``,
``center``, `` `my var` ``, `` `0` ``), a call is a function (``center(x)``,
``I(N/I)``), and a name that is neither is an error listing the closest
columns. Columns become safe identifiers (:mod:`hierbayes.design.columns`);
R's operators become the helpers of :mod:`hierbayes.design.rfunctions`
(``x^2`` is ``_r_pow(x, 2)``: R's power, in doubles).

In a right-hand side, the formula operators (``+ - * / : ^ %in%``) stay
formulaic's, and each variable of a term becomes ``_r_term(code)``, which
makes character and logical values factors as R's model frame does. The
translator records, for each variable, formulaic's text and R's
(``display``), so that model-matrix columns get R's names.
"""

from __future__ import annotations

from collections.abc import Hashable

from formulaic.utils.code import format_expr

from hierbayes.design.columns import ColumnTable, safe_name
from hierbayes.design.rfunctions import CONTRAST_ALIASES, CONTRAST_FUNCTIONS, FUNCTIONS
from hierbayes.errors import DataError, FormulaError
from hierbayes.formula.rexpr import BinOp, Call, Name, Node, Num, Paren, Str, Unary, deparse, parse
from hierbayes.formula.syntax import FORMULA_OPERATORS, NAMESPACES

_CONSTANT_CODE = {"TRUE": "True", "FALSE": "False", "NULL": "None", "NA": "_r_NA", "NaN": "_r_NA", "Inf": "_r_Inf"}
_SOFT_CONSTANTS = {"T": "True", "F": "False", "pi": "_r_pi"}  # R's variables: a column of that name wins
_PY_OPERATORS = {"*": "*", "/": "/", "+": "+", "-": "-", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "==": "==",
                 "!=": "!=", "&": "&", "&&": "&", "|": "|", "||": "|", "%%": "%", "%/%": "//"}  # fmt: skip


class Translator:
    """Binds formula pieces to one data frame's columns and writes the code formulaic runs.

    Parameters
    ----------
    table
        The data's columns.
    formula
        The whole formula text, for error messages.
    known
        Safe identifiers already given to columns (a fitted design's); a column
        outside them is an error.
    """

    def __init__(self, table: ColumnTable, formula: str | None = None, known: dict[Hashable, str] | None = None):
        self.table = table
        self.formula = formula
        self.known = known
        self.used: dict[Hashable, str] = {}  # label -> safe identifier, in order of first use
        self.display: dict[str, str] = {}  # formulaic's text of a variable -> R's
        self.reads: list[Hashable] = []  # columns read by the last translated piece

    # --- public ------------------------------------------------------------------------------------------------

    def rhs(self, text: str, context: str) -> str:
        """A right-hand side (``"1 + x * k"``) as formulaic formula text."""
        self.reads = []
        return self._formula(parse(text), context, text)

    def value(self, text: str, context: str) -> str:
        """An expression (a response, an offset, a grouping factor) as Python code."""
        self.reads = []
        return self._value(parse(text), context, text)

    def columns_of(self, text: str, context: str) -> list[Hashable]:
        """The columns an expression reads (checking every name), in order."""
        self.value(text, context)
        return list(self.reads)

    def safe(self, label: Hashable) -> str:
        """The safe identifier of a column (assigned on first use)."""
        if label not in self.used:
            if self.known is not None:
                if label not in self.known:
                    raise DataError(f"column '{label}' is not used by the model")
                self.used[label] = self.known[label]
            else:
                self.used[label] = safe_name(len(self.used))
        if label not in self.reads:
            self.reads.append(label)
        return self.used[label]

    # --- formula level -----------------------------------------------------------------------------------------

    def _formula(self, node: Node, context: str, expr: str) -> str:
        if isinstance(node, Paren):
            return "(" + self._formula(node.inner, context, expr) + ")"
        if isinstance(node, BinOp) and node.op in FORMULA_OPERATORS:
            left = self._formula(node.left, context, expr)
            if node.op == "^":
                return f"{left} ^ {node.right.text if isinstance(node.right, Num) else 1}"
            op = ":" if node.op == "%in%" else node.op
            return f"{left} {op} {self._formula(node.right, context, expr)}"
        if isinstance(node, Unary) and node.op in "+-":
            return node.op + self._formula(node.operand, context, expr)
        if isinstance(node, Num):
            return node.text
        shown = deparse(node)
        code = f"_r_term({self._value(node, context, expr)}, {shown!r})"
        self.display[format_expr(code)] = shown
        return code

    # --- expressions -------------------------------------------------------------------------------------------

    def _value(self, node: Node, context: str, expr: str) -> str:
        if isinstance(node, Name):
            return self._name(node, context, expr)
        if isinstance(node, Num):
            value = node.value
            return repr(int(value)) if isinstance(value, int) else repr(float(value))
        if isinstance(node, Str):
            return repr(node.value)
        if isinstance(node, Paren):
            return "(" + self._value(node.inner, context, expr) + ")"
        if isinstance(node, Unary):
            operand = self._value(node.operand, context, expr)
            return f"_r_not({operand})" if node.op == "!" else f"({node.op}{operand})"
        if isinstance(node, BinOp):
            a, b = self._value(node.left, context, expr), self._value(node.right, context, expr)
            if node.op == "^":
                return f"_r_pow({a}, {b})"
            if node.op == "%in%":
                return f"_r_in({a}, {b})"
            if node.op == ":":
                return f"_r_seq({a}, {b})"
            if node.op not in _PY_OPERATORS:
                raise FormulaError(f"unknown operator '{node.op}'", self.formula, None)
            return f"({a} {_PY_OPERATORS[node.op]} {b})"
        if isinstance(node, Call):
            return self._call(node, context, expr)
        raise TypeError(node)  # pragma: no cover

    def _name(self, node: Name, context: str, expr: str) -> str:
        if not node.quoted and node.id in _CONSTANT_CODE:
            return _CONSTANT_CODE[node.id]
        label = self.table.find(node.id)
        if label is not None:
            return self.safe(label)
        if not node.quoted:
            if node.id in _SOFT_CONSTANTS:
                return _SOFT_CONSTANTS[node.id]
            if node.id in CONTRAST_FUNCTIONS:
                return FUNCTIONS[node.id][0]
            if node.id.split(".")[0] in NAMESPACES and "." in node.id:
                return node.id
        raise self.table.unknown(node.id, context, self.formula, expr)

    def _call(self, node: Call, context: str, expr: str) -> str:
        fn = node.fn
        if fn.split(".")[0] in NAMESPACES and "." in fn:
            target = fn
        elif fn in FUNCTIONS:
            target = FUNCTIONS[fn][0]
        else:
            raise FormulaError(f"unknown function '{fn}'", self.formula, None)
        args = []
        for i, arg in enumerate(node.args):
            if fn == "C" and (i == 1 or arg.name == "contr") and isinstance(arg.value, Name):
                v = arg.value
                if not v.quoted and v.id in CONTRAST_ALIASES:  # R's C() reads C(f, sum) before looking `sum` up
                    code = repr(f"contr.{v.id}")
                    args.append(code if arg.name is None else f"contr={code}")
                    continue
            code = self._value(arg.value, context, expr)
            if arg.name is None:
                args.append(code)
            else:
                key = arg.name.replace(".", "_")
                if not key.isidentifier():
                    raise FormulaError(f"'{arg.name}' is not an argument of {fn}()", self.formula, None)
                args.append(f"{key}={code}")
        return f"{target}({', '.join(args)})"
