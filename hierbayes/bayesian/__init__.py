"""The Bayesian engine: a hierbayes Model becomes a PyMC model, sampled with NUTS.

* :mod:`~hierbayes.bayesian.names`: names and dims of every posterior variable (the one list).
* :mod:`~hierbayes.bayesian.priors`: default priors scaled to the data, overrides by name, ``describe_priors``.
* :mod:`~hierbayes.bayesian.model`: ``build_pymc_model`` (partial pooling, LKJ for correlated bars, non-centered).
* :mod:`~hierbayes.bayesian.blocked`, :mod:`~hierbayes.bayesian.marginal`,
  :mod:`~hierbayes.bayesian.partial`:
  the exact gaussian path (random effects integrated out, then drawn from their exact conditional).
* each family's likelihood (PyMC and NumPy) is the family's own (:mod:`hierbayes.families`).
* :mod:`~hierbayes.bayesian.sampling`: ``sample_posterior`` (returns a ``Posterior``, from which
  ``hierbayes.fits.PosteriorFit`` is made) and ``sample_prior_predictive``;
  :mod:`~hierbayes.bayesian.laplace`: its starting point and mass matrix from the posterior mode.
* :mod:`~hierbayes.bayesian.diagnostics`: divergences, R-hat, ESS and the SamplingWarning.

Importing this package does not import PyMC; the functions do.
"""

from hierbayes._warnings import ignore_not_actionable

# PyTensor's "could not link to a BLAS" warning (pip installs) would only alarm users of every fit
ignore_not_actionable()

from hierbayes.bayesian.model import build_pymc_model  # noqa: E402
from hierbayes.bayesian.priors import Prior, describe_priors  # noqa: E402
from hierbayes.bayesian.sampling import Posterior, sample_posterior, sample_prior_predictive  # noqa: E402

__all__ = [
    "Posterior",
    "Prior",
    "build_pymc_model",
    "describe_priors",
    "sample_posterior",
    "sample_prior_predictive",
]
