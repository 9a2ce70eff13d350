"""hierbayes: multilevel regression with lme4 formulas, fitted by REML/ML and by PyMC.

>>> import hierbayes as hb
>>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
>>> round(float(fit.reml_criterion), 2)
1743.63
"""

from __future__ import annotations

import importlib

from hierbayes import (
    datasets,
    interpret,  # registers fit.predict(interval=...) with the fits, which sit below it
)
from hierbayes._version import __version__
from hierbayes.errors import (
    ArgumentError,
    ColumnNotFoundError,
    ConvergenceWarning,
    DataError,
    EstimationError,
    FormulaError,
    HierbayesError,
    HierbayesWarning,
    ModelError,
    SeparationWarning,
    SingularFitWarning,
)
from hierbayes.formula import Formula, parse_formula
from hierbayes.model import Model, bayes, glmer, lmer
from hierbayes.structures import corAR1, corARMA, corCAR1, corCompSymm, varComb, varExp, varIdent, varPower

# Heavier parts load on first use, so `import hierbayes` stays fast and never imports PyMC.
_LAZY = {
    "anova": ("hierbayes.inference", "anova"),
    "compare": ("hierbayes.tables", "compare"),
    "pooling": ("hierbayes.tables", "pooling"),
    "load": ("hierbayes.io", "load"),
    "lmerControl": ("hierbayes.optim.control", "lmerControl"),
    "glmerControl": ("hierbayes.optim.control", "glmerControl"),
    "plots": ("hierbayes.plots", None),
    "Prior": ("hierbayes.bayesian.priors", "Prior"),
    "simulate": ("hierbayes.simulate", None),
    "fits": ("hierbayes.fits", None),
    "predictions": ("hierbayes.interpret", "predictions"),
    "comparisons": ("hierbayes.interpret", "comparisons"),
    "slopes": ("hierbayes.interpret", "slopes"),
    "emmeans": ("hierbayes.interpret", "emmeans"),
    "emtrends": ("hierbayes.interpret", "emtrends"),
    "contrast": ("hierbayes.interpret", "contrast"),
    "pairs": ("hierbayes.interpret", "pairs"),
    "lsmeans": ("hierbayes.interpret", "lsmeans"),
    "lstrends": ("hierbayes.interpret", "lstrends"),
    "interpret": ("hierbayes.interpret", None),
    "Gamma": ("hierbayes.families", "gamma_family"),
    "inverse_gaussian": ("hierbayes.families", "inverse_gaussian_family"),
    "negative_binomial": ("hierbayes.families", "negative_binomial_family"),
    "glmer_nb": ("hierbayes.model", "glmer_nb"),
    "lme": ("hierbayes.model", "lme"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'hierbayes' has no attribute {name!r}")


__all__ = [
    "ArgumentError",
    "ColumnNotFoundError",
    "ConvergenceWarning",
    "DataError",
    "EstimationError",
    "Formula",
    "FormulaError",
    "Gamma",
    "HierbayesError",
    "HierbayesWarning",
    "Model",
    "ModelError",
    "Prior",
    "SeparationWarning",
    "SingularFitWarning",
    "__version__",
    "anova",
    "bayes",
    "compare",
    "comparisons",
    "contrast",
    "corAR1",
    "corARMA",
    "corCAR1",
    "corCompSymm",
    "datasets",
    "emmeans",
    "emtrends",
    "glmer",
    "glmerControl",
    "glmer_nb",
    "interpret",
    "inverse_gaussian",
    "lme",
    "lmer",
    "lmerControl",
    "load",
    "lsmeans",
    "lstrends",
    "negative_binomial",
    "pairs",
    "parse_formula",
    "plots",
    "pooling",
    "predictions",
    "simulate",
    "slopes",
    "varComb",
    "varExp",
    "varIdent",
    "varPower",
]
