"""Residual covariance structures (nlme's correlation classes and variance functions).

NumPy/pandas only: parsing of nlme's one-sided forms (:mod:`.forms`), the
correlation structures (:mod:`.correlation`), the variance functions
(:mod:`.variance`) and their combination on a design's rows, with the
whitening the likelihoods use (:mod:`.residual`).
"""

from hierbayes.structures.correlation import BoundCorrelation, Correlation, corAR1, corARMA, corCAR1, corCompSymm
from hierbayes.structures.residual import ResidualStructure, bind_structure
from hierbayes.structures.variance import BoundVariance, Variance, varComb, varExp, varIdent, varPower

__all__ = [
    "BoundCorrelation",
    "BoundVariance",
    "Correlation",
    "ResidualStructure",
    "Variance",
    "bind_structure",
    "corAR1",
    "corARMA",
    "corCAR1",
    "corCompSymm",
    "varComb",
    "varExp",
    "varIdent",
    "varPower",
]
