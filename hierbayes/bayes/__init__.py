"""The Bayesian engine: a hierbayes Model becomes a PyMC model, sampled with NUTS.

* :mod:`~hierbayes.bayes.names`: names and dims of every posterior variable (the one list).
* :mod:`~hierbayes.bayes.priors`: default priors scaled to the data, overrides by name, ``describe_priors``.
* :mod:`~hierbayes.bayes.model`: ``build_pymc_model`` (partial pooling, LKJ for correlated bars, non-centered).
* :mod:`~hierbayes.bayes.crossprod`, :mod:`~hierbayes.bayes.blocked`, :mod:`~hierbayes.bayes.marginal`:
  the exact gaussian path (random effects integrated out, then drawn from their exact conditional).
* :mod:`~hierbayes.bayes.likelihood`: each family's likelihood (PyMC and NumPy).
* :mod:`~hierbayes.bayes.sampling`: ``fit_bayes`` and ``sample_prior_predictive``.
* :mod:`~hierbayes.bayes.diagnostics`: divergences, R-hat, ESS and the SamplingWarning.

Importing this package does not import PyMC; the functions do.
"""

from hierbayes.bayes.model import build_pymc_model
from hierbayes.bayes.priors import Prior, describe_priors
from hierbayes.bayes.sampling import fit_bayes, sample_prior_predictive

__all__ = ["Prior", "build_pymc_model", "describe_priors", "fit_bayes", "sample_prior_predictive"]


class _CallablePackage(__import__("types").ModuleType):
    """``hb.bayes`` is both this package and the shortcut ``hierbayes.model.bayes``.

    Importing ``hierbayes.bayes`` makes Python set the attribute ``bayes`` of
    ``hierbayes`` to this package, shadowing the function of the same name;
    calling the package calls the function, so ``hb.bayes(formula, data)``
    works either way.
    """

    def __call__(self, *args, **kwargs):
        from hierbayes.model import bayes

        return bayes(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallablePackage
