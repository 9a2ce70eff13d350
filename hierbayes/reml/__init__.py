"""The REML/ML engine: profiled criteria over theta (NumPy/SciPy only)."""

from hierbayes.reml.fit import LmmEstimates, LmmObjective, estimates_at, fit_lmm
from hierbayes.reml.optimize import OptSummary, minimize_theta

__all__ = [
    "LmmEstimates",
    "LmmObjective",
    "OptSummary",
    "estimates_at",
    "fit_lmm",
    "minimize_theta",
]
