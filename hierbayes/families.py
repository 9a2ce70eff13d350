"""Response families and link functions, shared by the GLMM and Bayesian engines.

Only NumPy here: each engine maps a ``Family`` to its own likelihood. The
validation of the response (0/1 for bernoulli, non-negative counts for
poisson, (0, 1) for beta, ...) lives here so both engines give the same
error for the same mistake.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from hierbayes.errors import DataError, ModelError


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse and derivative of the inverse.

    Examples
    --------
    >>> float(LINKS["logit"].inverse(np.array(0.0)))
    0.5
    """

    name: str

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        mu = np.asarray(mu, dtype=float)
        match self.name:
            case "identity":
                return mu
            case "log":
                return np.log(mu)
            case "logit":
                return special.logit(mu)
            case "probit":
                return stats.norm.ppf(mu)
            case "cloglog":
                return np.log(-np.log1p(-mu))
            case "inverse":
                return 1.0 / mu
            case "sqrt":
                return np.sqrt(mu)
        raise ModelError(f"unknown link {self.name}")

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        """mu = g^{-1}(eta)."""
        eta = np.asarray(eta, dtype=float)
        match self.name:
            case "identity":
                return eta
            case "log":
                return np.exp(eta)
            case "logit":
                return special.expit(eta)
            case "probit":
                return special.ndtr(eta)
            case "cloglog":
                return -np.expm1(-np.exp(eta))
            case "inverse":
                return 1.0 / eta
            case "sqrt":
                return eta * eta
        raise ModelError(f"unknown link {self.name}")

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """d mu / d eta."""
        eta = np.asarray(eta, dtype=float)
        match self.name:
            case "identity":
                return np.ones_like(eta)
            case "log":
                return np.exp(eta)
            case "logit":
                p = special.expit(eta)
                return p * (1.0 - p)
            case "probit":
                return stats.norm.pdf(eta)
            case "cloglog":
                return np.exp(eta - np.exp(eta))
            case "inverse":
                return -1.0 / (eta * eta)
            case "sqrt":
                return 2.0 * eta
        raise ModelError(f"unknown link {self.name}")


LINKS = {name: Link(name) for name in ("identity", "log", "logit", "probit", "cloglog", "inverse", "sqrt")}


@dataclass(frozen=True)
class Family:
    """A response distribution and its link.

    Attributes
    ----------
    name
        ``gaussian``, ``student_t``, ``bernoulli``, ``binomial``, ``poisson``,
        ``negative_binomial``, ``gamma``, ``beta`` or ``zero_inflated_poisson``.
    link
        The link function.
    """

    name: str
    link: Link

    @property
    def is_gaussian(self) -> bool:
        return self.name == "gaussian" and self.link.name == "identity"

    def validate(self, y: np.ndarray, trials: np.ndarray | None, response: str) -> None:
        """Raise a DataError naming the response when its values do not fit the family."""
        y = np.asarray(y, dtype=float)
        bad: np.ndarray | None = None
        need = ""
        if self.name == "bernoulli" or (self.name == "binomial" and trials is None and np.all((y == 0) | (y == 1))):
            bad, need = ~np.isin(y, (0.0, 1.0)), "0 or 1"
        elif self.name == "binomial":
            if trials is None:
                bad, need = (y < 0) | (y > 1), "a proportion in [0, 1] (with weights), or cbind(successes, failures)"
            else:
                bad, need = (y < 0) | (y > trials) | (y != np.round(y)), "whole numbers of successes <= trials"
        elif self.name in ("poisson", "negative_binomial", "zero_inflated_poisson"):
            bad, need = (y < 0) | (y != np.round(y)), "non-negative whole-number counts"
        elif self.name == "gamma":
            bad, need = y <= 0, "positive"
        elif self.name == "beta":
            bad, need = (y <= 0) | (y >= 1), "strictly between 0 and 1"
        if bad is not None and bad.any():
            idx = np.flatnonzero(bad)
            examples = ", ".join(f"{y[i]:g} (row {i})" for i in idx[:3])
            raise DataError(
                f"the {self.name} family needs the response '{response}' to be {need}; "
                f"{len(idx)} value(s) are not, e.g. {examples}"
            )


DEFAULT_LINKS = {
    "gaussian": "identity",
    "student_t": "identity",
    "bernoulli": "logit",
    "binomial": "logit",
    "poisson": "log",
    "negative_binomial": "log",
    "gamma": "log",
    "beta": "logit",
    "zero_inflated_poisson": "log",
}
ALLOWED_LINKS = {
    "gaussian": ("identity", "log", "inverse"),
    "student_t": ("identity", "log"),
    "bernoulli": ("logit", "probit", "cloglog"),
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log", "identity", "sqrt"),
    "negative_binomial": ("log", "identity", "sqrt"),
    "gamma": ("log", "inverse", "identity"),
    "beta": ("logit", "probit", "cloglog"),
    "zero_inflated_poisson": ("log",),
}
_ALIASES = {"normal": "gaussian", "t": "student_t", "studentt": "student_t", "negbinomial": "negative_binomial",
            "negbin": "negative_binomial", "zip": "zero_inflated_poisson", "logistic": "bernoulli"}  # fmt: skip


def get_family(family: str | Family = "gaussian", link: str | None = None) -> Family:
    """Look up a family by name, with its default or a chosen link.

    Examples
    --------
    >>> get_family("binomial", "probit").link.name
    'probit'
    """
    if isinstance(family, Family):
        return family if link is None else get_family(family.name, link)
    key = str(family).lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in DEFAULT_LINKS:
        raise ModelError(f"unknown family '{family}'; choose one of {', '.join(DEFAULT_LINKS)}")
    link = link or DEFAULT_LINKS[key]
    if link not in ALLOWED_LINKS[key]:
        raise ModelError(f"the {key} family takes the links {', '.join(ALLOWED_LINKS[key])}, not '{link}'")
    return Family(key, LINKS[link])
