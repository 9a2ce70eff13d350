"""The GLMM engine: maximum likelihood by the Laplace approximation and adaptive Gauss-Hermite quadrature.

Like lme4's ``glmer``: penalized IRLS for the conditional modes
(:mod:`~hierbayes.glmm.pirls`), the Laplace deviance
(:mod:`~hierbayes.glmm.laplace`) and AGQ for one scalar random effect
(:mod:`~hierbayes.glmm.agq`), optimised in two stages
(:mod:`~hierbayes.glmm.fit`); Wald and profile intervals
(:mod:`~hierbayes.glmm.intervals`) and the parametric bootstrap
(:mod:`~hierbayes.glmm.bootstrap`). NumPy/SciPy only; builds on the REML
engine's cross-products and blocked Cholesky factor.
"""

from hierbayes.glmm.agq import AgqDeviance, gh_rule
from hierbayes.glmm.fit import GlmmEstimates, estimate_glmm, fit_glmm, make_devfun
from hierbayes.glmm.laplace import LaplaceDeviance, ThetaDeviance
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse, glm_response

__all__ = [
    "AgqDeviance",
    "GlmResponse",
    "GlmmEstimates",
    "LaplaceDeviance",
    "Pirls",
    "PirlsResult",
    "ThetaDeviance",
    "estimate_glmm",
    "fit_glmm",
    "gh_rule",
    "glm_response",
    "make_devfun",
]
