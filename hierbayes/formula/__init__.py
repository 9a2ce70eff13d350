"""The lme4 formula grammar: parse ``y ~ x + (x | g)`` into response, fixed part and bars (no data, no formulaic)."""

from hierbayes.errors import FormulaError
from hierbayes.formula.formula_object import Formula
from hierbayes.formula.parser import KNOWN_FUNCTIONS, parse_formula
from hierbayes.formula.terms import ParsedFormula, RandomBar

__all__ = ["KNOWN_FUNCTIONS", "Formula", "FormulaError", "ParsedFormula", "RandomBar", "parse_formula"]
