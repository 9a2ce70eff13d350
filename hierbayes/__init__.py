"""hierbayes: multilevel regression with lme4 formulas, fitted by REML/ML and by PyMC.

>>> import hierbayes as hb
>>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
>>> round(fit.reml_criterion, 2)
1743.63
"""

from __future__ import annotations

from hierbayes import datasets
from hierbayes.errors import (
    ColumnNotFoundError,
    ConvergenceWarning,
    DataError,
    FormulaError,
    HierbayesError,
    HierbayesWarning,
    ModelError,
    SingularFitWarning,
)
from hierbayes.formula import parse_formula
from hierbayes.model import Model, lmer

__version__ = "0.1.0"

__all__ = [
    "ColumnNotFoundError",
    "ConvergenceWarning",
    "DataError",
    "FormulaError",
    "HierbayesError",
    "HierbayesWarning",
    "Model",
    "ModelError",
    "SingularFitWarning",
    "datasets",
    "lmer",
    "parse_formula",
]
