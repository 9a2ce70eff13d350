"""GLM pieces of the binomial and Poisson families, as lme4's ``glmResp`` uses them.

``GlmResponse`` holds the response as lme4 stores it -- the proportion ``y``
with prior weights ``wt`` equal to the number of trials for binomial data
(``cbind(s, f)`` or proportions with ``weights``), counts for Poisson -- and
gives, for a mean ``mu``: the variance function, the deviance residuals, the
family's ``aic`` term (-2 times the conditional log-likelihood), the IRLS
working weights and response, and lme4's starting values (``mustart``).

Links come from :mod:`hierbayes.families`; the inverse link and its
derivative are clamped as R's ``make.link`` does (``mu`` kept inside
(eps, 1 - eps) for binomial links, ``exp(eta) >= eps`` for the log link), so
extreme linear predictors behave as in lme4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from hierbayes.design import Design
from hierbayes.errors import ModelError
from hierbayes.families import Family

EPS = np.finfo(float).eps
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
GLMM_FAMILIES = ("binomial", "bernoulli", "poisson")


@dataclass(frozen=True)
class GlmResponse:
    """A GLM response in lme4's internal form, with its family.

    Attributes
    ----------
    family
        Family and link.
    y
        Response: the proportion of successes (binomial) or the count (Poisson).
    wt
        Prior weights; for binomial data, trials times the user's weights.
    n
        Binomial trials (ones for Poisson and 0/1 data).
    offset
        Offset of the linear predictor (zeros when the model has none).
    """

    family: Family
    y: np.ndarray
    wt: np.ndarray
    n: np.ndarray
    offset: np.ndarray

    @property
    def binomial(self) -> bool:
        return self.family.name in ("binomial", "bernoulli")

    # --- link ---------------------------------------------------------------------------
    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        name = self.family.link.name
        if name == "logit":
            return np.clip(special.expit(eta), EPS, 1.0 - EPS)
        if name == "probit":
            return special.ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))
        if name == "log":
            with np.errstate(over="ignore"):  # exp() of a huge eta is inf, as in R (PIRLS halves such steps)
                return np.maximum(np.exp(eta), EPS)
        mu = self.family.link.inverse(eta)
        return np.clip(mu, EPS, 1.0 - EPS) if self.binomial else mu

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        name = self.family.link.name
        if name == "logit":  # fast paths for the common links (scipy.stats' pdf is slow on small arrays)
            p = special.expit(eta)
            d = p * (1.0 - p)
        elif name == "probit":
            d = np.exp(-0.5 * eta * eta) * _INV_SQRT_2PI
        elif name == "log":
            with np.errstate(over="ignore"):
                d = np.exp(eta)
        else:
            d = self.family.link.mu_eta(eta)
        return np.maximum(d, EPS) if self.binomial or name == "log" else d

    # --- distribution -------------------------------------------------------------------
    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu) if self.binomial else mu

    def dev_resid(self, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``family$dev.resids``)."""
        y, wt = self.y, self.wt
        if self.binomial:
            return 2.0 * wt * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))
        with np.errstate(invalid="ignore"):  # an infinite mu (overflowed exp) gives NaN: a step PIRLS halves
            return 2.0 * wt * (_ylogy(y, mu) - (y - mu))

    def aic(self, mu: np.ndarray) -> float:
        """-2 sum of log-likelihood contributions (R's ``family$aic`` without the 2p)."""
        return -2.0 * float(np.sum(self.loglik_terms(mu)))

    def loglik_terms(self, mu: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood contributions, weighted as lme4's ``aic``."""
        if self.binomial:
            m, yy, scale, const = self._binomial_terms
            ll = const + special.xlogy(yy, mu) + special.xlogy(m - yy, 1.0 - mu)
            return scale * ll
        return self.wt * (special.xlogy(self.y, mu) - mu - special.gammaln(self.y + 1.0))

    @property
    def _binomial_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_bt")
        if cached is None:
            m = self.n if np.any(self.n > 1) else self.wt
            yy = np.round(m * self.y)
            m = np.round(m)
            scale = np.divide(self.wt, m, out=np.zeros_like(m), where=m > 0)
            const = special.gammaln(m + 1) - special.gammaln(yy + 1) - special.gammaln(m - yy + 1)
            cached = (m, yy, scale, const)
            object.__setattr__(self, "_bt", cached)
        return cached

    def mustart(self) -> np.ndarray:
        """Starting means (R's ``family$initialize``)."""
        if self.binomial:
            return (self.wt * self.y + 0.5) / (self.wt + 1.0)
        return self.y + 0.1

    # --- IRLS ---------------------------------------------------------------------------
    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Square-root working weights and working residuals ``(y - mu) / mu_eta`` at eta.

        A row of prior weight zero has working weight zero and working
        residual zero, whatever its mean (no 0/0 where its variance or
        ``mu_eta`` is zero, as with the identity link at mu = 0).
        """
        me = self.mu_eta(eta)
        var = self.variance(mu)
        with np.errstate(divide="ignore", invalid="ignore"):  # an overflowed mu gives NaN: PIRLS restarts
            if self._all_weighted:
                return me * np.sqrt(self.wt / var), (self.y - mu) / me
            used = self.wt > 0
            sqrtw = np.where(used, me * np.sqrt(self.wt / np.where(used, var, 1.0)), 0.0)
            wres = np.where(used, (self.y - mu) / np.where(used, me, 1.0), 0.0)
        return sqrtw, wres

    @property
    def _all_weighted(self) -> bool:
        cached = self.__dict__.get("_aw")
        if cached is None:
            cached = bool(np.all(self.wt > 0))
            object.__setattr__(self, "_aw", cached)
        return cached

    def residuals(self, eta: np.ndarray, kind: str = "deviance") -> np.ndarray:
        """lme4's ``residuals(m, type)``: deviance, pearson, response or working."""
        mu = self.linkinv(eta)
        match kind:
            case "deviance":
                return np.sign(self.y - mu) * np.sqrt(np.maximum(self.dev_resid(mu), 0.0))
            case "pearson":
                return (self.y - mu) * np.sqrt(self.wt / self.variance(mu))
            case "response":
                return self.y - mu
            case "working":
                return (self.y - mu) / self.mu_eta(eta)
        raise ValueError(f"residual type must be deviance, pearson, response or working, not {kind!r}")


def _ylogy(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y log(y / mu)``, zero where y is zero (R's ``y_log_y``); mu > 0 (the links clamp it)."""
    return special.xlogy(y, y / mu)


def glm_response(design: Design, family: Family) -> GlmResponse:
    """The response of a design in lme4's internal form.

    ``cbind(s, f)`` gives the proportion ``s / (s + f)`` with weights ``s + f``
    (times any prior weights); a proportion with ``weights`` keeps those
    weights as trials; 0/1 data have unit weights.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> r = glm_response(m.design, m.family)
    >>> float(r.y[0]), float(r.wt[0])
    (0.14285714285714285, 14.0)
    """
    if family.name not in GLMM_FAMILIES:
        raise ModelError(
            f"maximum-likelihood GLMMs support the {', '.join(GLMM_FAMILIES)} families, not '{family.name}'; "
            "fit it with method='bayes'"
        )
    n_obs = design.n
    prior = np.ones(n_obs) if design.weights is None else np.asarray(design.weights, float)
    y = np.asarray(design.y, float)
    if family.name == "poisson":
        return GlmResponse(family, y, prior, np.ones(n_obs), _offset(design))
    if design.trials is not None:
        trials = np.asarray(design.trials, float)
        prop = np.divide(y, trials, out=np.zeros_like(y), where=trials > 0)
        return GlmResponse(family, prop, prior * trials, trials, _offset(design))
    # proportions with weights (the weights are the trials), or 0/1 data:
    # (R's binomial initialize sets n = 1 here; its aic then takes the weights as trials)
    return GlmResponse(family, y, prior, np.ones(n_obs), _offset(design))


def _offset(design: Design) -> np.ndarray:
    return np.zeros(design.n) if design.offset is None else np.asarray(design.offset, float)
