"""The optimizers of the frequentist fits, with lme4's settings, and their record (NumPy, SciPy, NLopt).

* :mod:`~hierbayes.optim.control`: lme4's ``lmerControl()`` / ``glmerControl()``
  and ``optimizer=`` names, mapped onto NLopt and SciPy (:class:`OptimizerSettings`);
* :mod:`~hierbayes.optim.minimize`: :func:`run_optimizer` (BOBYQA, Nelder-Mead,
  L-BFGS-B, ...), the settings each fit runs with (``LMER``, ``GLMM_STAGE1``,
  ``GLMM_STAGE2``, ``PROFILE``), lme4's ``check.boundary``, and the record of
  every run, :class:`OptSummary` (``fit.optinfo``);
* :mod:`~hierbayes.optim.convergence`: lme4's convergence checks at the optimum
  (finite-difference gradient and Hessian, ``checkConv``'s messages).
"""

from hierbayes.optim.control import Control, OptimizerSettings, as_control, glmerControl, lmerControl, with_optimizer
from hierbayes.optim.convergence import ConvergenceReport, check_derivatives, derivatives
from hierbayes.optim.minimize import (
    GLMM_STAGE1,
    GLMM_STAGE2,
    LMER,
    PROFILE,
    OptStages,
    OptSummary,
    bobyqa,
    check_boundary,
    check_start,
    labelled,
    minimize_theta,
    run_optimizer,
)

__all__ = [
    "GLMM_STAGE1",
    "GLMM_STAGE2",
    "LMER",
    "PROFILE",
    "Control",
    "ConvergenceReport",
    "OptStages",
    "OptSummary",
    "OptimizerSettings",
    "as_control",
    "bobyqa",
    "check_boundary",
    "check_derivatives",
    "check_start",
    "derivatives",
    "glmerControl",
    "labelled",
    "lmerControl",
    "minimize_theta",
    "run_optimizer",
    "with_optimizer",
]
