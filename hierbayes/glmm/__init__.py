"""The GLMM engine: maximum likelihood by the Laplace approximation and adaptive Gauss-Hermite quadrature.

Like lme4's ``glmer``: penalized IRLS for the conditional modes
(:mod:`~hierbayes.glmm.pirls`, on the numerical core's weighted cross-products
and blocked Cholesky), the Laplace deviance (:mod:`~hierbayes.glmm.laplace`)
and AGQ for one scalar random effect (:mod:`~hierbayes.glmm.agq`), optimised
in two stages (:mod:`~hierbayes.glmm.fit`), which return the estimates
(``hierbayes.fits.GlmerFit`` is made from them). The response in lme4's form
is :mod:`~hierbayes.glmm.response`; separated data are recognised by
:mod:`~hierbayes.glmm.separation`. NumPy/SciPy only.
"""

from hierbayes.glmm.agq import AgqDeviance, gh_rule
from hierbayes.glmm.family_par import FamilyParDeviance, estimate_family_par_glmm
from hierbayes.glmm.fit import GlmmEstimates, check_nagq, deviance_function, estimate_glmm, make_devfun
from hierbayes.glmm.laplace import LaplaceDeviance, ThetaDeviance
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse, glm_response

__all__ = [
    "AgqDeviance",
    "FamilyParDeviance",
    "GlmResponse",
    "GlmmEstimates",
    "LaplaceDeviance",
    "Pirls",
    "PirlsResult",
    "ThetaDeviance",
    "check_nagq",
    "deviance_function",
    "estimate_family_par_glmm",
    "estimate_glmm",
    "gh_rule",
    "glm_response",
    "make_devfun",
]
