"""The Bayesian engine: a hierbayes Model becomes a PyMC model, sampled with NUTS.

* :mod:`~hierbayes.bayesian.names`: names and dims of every posterior variable (the one list).
* :mod:`~hierbayes.bayesian.priors`: default priors scaled to the data, overrides by name, ``describe_priors``.
* :mod:`~hierbayes.bayesian.model`: ``build_pymc_model`` (partial pooling, LKJ for correlated bars, non-centered).
* :mod:`~hierbayes.bayesian.crossprod`, :mod:`~hierbayes.bayesian.blocked`, :mod:`~hierbayes.bayesian.marginal`:
  the exact gaussian path (random effects integrated out, then drawn from their exact conditional).
* :mod:`~hierbayes.bayesian.likelihood`: each family's likelihood (PyMC and NumPy).
* :mod:`~hierbayes.bayesian.sampling`: ``fit_bayes`` and ``sample_prior_predictive``.
* :mod:`~hierbayes.bayesian.diagnostics`: divergences, R-hat, ESS and the SamplingWarning.

Importing this package does not import PyMC; the functions do.
"""

from hierbayes.bayesian.model import build_pymc_model
from hierbayes.bayesian.priors import Prior, describe_priors
from hierbayes.bayesian.sampling import fit_bayes, sample_prior_predictive

__all__ = ["Prior", "build_pymc_model", "describe_priors", "fit_bayes", "sample_prior_predictive"]
