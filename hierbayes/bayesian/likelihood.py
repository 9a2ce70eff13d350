"""Each family's likelihood: as a PyMC observed variable, and in NumPy for draws.

The NumPy half computes the pointwise log-likelihood and the posterior
predictive from posterior draws of the linear predictor, the same way for
the marginalized and the full model (the marginalized model has no
observed variable PyMC could use).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from hierbayes.design import Design
from hierbayes.errors import ModelError
from hierbayes.families import Family

_HALF_LOG2PI = 0.5 * float(np.log(2 * np.pi))


def binomial_counts(design: Design, family: Family) -> tuple[np.ndarray, np.ndarray | None]:
    """The response as the likelihood sees it: (y, trials); trials None except for binomial.

    ``cbind(s, f)`` gives successes and trials; a proportion with prior
    weights gives ``round(y * w)`` out of ``w``; a 0/1 response gives one trial.
    """
    y = np.asarray(design.y, dtype=float)
    if family.name != "binomial":
        return y, None
    if design.trials is not None:
        return y, np.asarray(design.trials, dtype=float)
    if design.weights is not None:
        w = np.asarray(design.weights, dtype=float)
        if np.any(np.abs(w - np.round(w)) > 1e-8):
            raise ModelError("binomial weights must be whole numbers of trials")
        return np.round(y * w), np.round(w)
    return y, np.ones_like(y)


def pymc_likelihood(family: Family, eta, y: np.ndarray, trials: np.ndarray | None, params: dict, dims: str):
    """The observed variable ``y`` of a PyMC model (call inside the model context)."""
    import pymc as pm

    link = family.link.name
    name = family.name
    kw = {"observed": y, "dims": dims}
    if name in ("bernoulli", "binomial") and link == "logit":
        p = {"logit_p": eta}
    elif name in ("bernoulli", "binomial"):
        p = {"p": pt_inverse_link(link, eta)}
    mu = pt_inverse_link(link, eta)
    match name:
        case "gaussian":
            return pm.Normal("y", mu=mu, sigma=params["sigma"], **kw)
        case "student_t":
            return pm.StudentT("y", nu=params["nu"], mu=mu, sigma=params["sigma"], **kw)
        case "bernoulli":
            return pm.Bernoulli("y", **p, **kw)
        case "binomial":
            return pm.Binomial("y", n=trials.astype("int64"), **p, **kw)
        case "poisson":
            return pm.Poisson("y", mu=mu, **kw)
        case "negative_binomial":
            return pm.NegativeBinomial("y", mu=mu, alpha=params["alpha"], **kw)
        case "gamma":
            return pm.Gamma("y", alpha=params["shape"], beta=params["shape"] / mu, **kw)
        case "beta":
            return pm.Beta("y", alpha=mu * params["phi"], beta=(1.0 - mu) * params["phi"], **kw)
        case "zero_inflated_poisson":
            return pm.ZeroInflatedPoisson("y", psi=params["psi"], mu=mu, **kw)
    raise ModelError(f"the Bayesian engine has no likelihood for the {name} family")


def pt_inverse_link(link: str, eta):
    """mu = g^{-1}(eta) for a PyTensor expression."""
    import pytensor.tensor as pt

    match link:
        case "identity":
            return eta
        case "log":
            return pt.exp(eta)
        case "logit":
            return pt.sigmoid(eta)
        case "probit":
            return 0.5 * pt.erfc(-eta / np.sqrt(2.0))
        case "cloglog":
            return 1.0 - pt.exp(-pt.exp(eta))
        case "inverse":
            return 1.0 / eta
        case "sqrt":
            return eta**2
    raise ModelError(f"unknown link {link}")


def logpdf(family: Family, y: np.ndarray, eta: np.ndarray, params: dict, trials: np.ndarray | None) -> np.ndarray:
    """Pointwise log-likelihood for draws of eta (..., n); ``params`` values broadcast as (..., 1)."""
    name, link = family.name, family.link.name
    if name in ("bernoulli", "binomial"):
        if link == "logit":
            lp, lq = special.log_expit(eta), special.log_expit(-eta)
        else:
            mu = np.clip(family.link.inverse(eta), 1e-300, 1 - 1e-16)
            lp, lq = np.log(mu), np.log1p(-mu)
        if name == "bernoulli":
            return y * lp + (1 - y) * lq
        return (
            special.gammaln(trials + 1)
            - special.gammaln(y + 1)
            - special.gammaln(trials - y + 1)
            + y * lp
            + (trials - y) * lq
        )
    mu = family.link.inverse(eta)
    match name:
        case "gaussian":
            s = params["sigma"]
            return -0.5 * ((y - mu) / s) ** 2 - np.log(s) - _HALF_LOG2PI
        case "student_t":
            return stats.t.logpdf(y, params["nu"], mu, params["sigma"])
        case "poisson":
            return stats.poisson.logpmf(y, mu)
        case "negative_binomial":
            a = params["alpha"]
            return stats.nbinom.logpmf(y, a, a / (a + mu))
        case "gamma":
            return stats.gamma.logpdf(y, params["shape"], scale=mu / params["shape"])
        case "beta":
            return stats.beta.logpdf(y, mu * params["phi"], (1 - mu) * params["phi"])
        case "zero_inflated_poisson":
            psi = params["psi"]
            pois = stats.poisson.logpmf(y, mu) + np.log(psi)
            return np.where(y == 0, np.logaddexp(np.log1p(-psi) + 0 * mu, pois), pois)
    raise ModelError(f"the Bayesian engine has no likelihood for the {name} family")


def rvs(
    family: Family, eta: np.ndarray, params: dict, trials: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the response for draws of eta (..., n)."""
    name = family.name
    mu = family.link.inverse(eta)
    match name:
        case "gaussian":
            return rng.normal(mu, params["sigma"])
        case "student_t":
            return mu + params["sigma"] * rng.standard_t(params["nu"], size=mu.shape)
        case "bernoulli":
            return (rng.random(mu.shape) < mu).astype(float)
        case "binomial":
            return rng.binomial(np.broadcast_to(trials, mu.shape).astype(np.int64), np.clip(mu, 0, 1)).astype(float)
        case "poisson":
            return rng.poisson(mu).astype(float)
        case "negative_binomial":
            a = params["alpha"]
            return rng.poisson(rng.gamma(a, mu / a)).astype(float)
        case "gamma":
            return rng.gamma(params["shape"], mu / params["shape"])
        case "beta":
            return rng.beta(mu * params["phi"], (1 - mu) * params["phi"])
        case "zero_inflated_poisson":
            return np.where(rng.random(mu.shape) < params["psi"], rng.poisson(mu), 0).astype(float)
    raise ModelError(f"the Bayesian engine has no likelihood for the {name} family")


def response_mean(family: Family, eta: np.ndarray, params: dict) -> np.ndarray:
    """E[y | eta]: the inverse link, times psi for the zero-inflated Poisson."""
    mu = family.link.inverse(eta)
    if family.name == "zero_inflated_poisson":
        return params["psi"] * mu
    return mu
