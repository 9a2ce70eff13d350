"""The REML/ML engine: profiled criteria over theta (NumPy/SciPy only)."""

from hierbayes.reml.fit import LmmEstimates, LmmObjective, estimates_at, fit_lmm

__all__ = [
    "LmmEstimates",
    "LmmObjective",
    "estimates_at",
    "fit_lmm",
]
