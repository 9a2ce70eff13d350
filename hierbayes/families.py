"""Response families and link functions: one object each, shared by the GLMM and Bayesian engines.

A :class:`Link` carries the link function, its inverse and the derivative of
the inverse (exact, and with R's ``make.link`` clamping, which the GLMM
engine uses so extreme linear predictors behave as in lme4), and its PyTensor
form. A :class:`Family` carries its link and everything the engines, the fits,
``predict`` and the tables ask of a family: the response's validation, the
variance function, deviance residuals and lme4's ``aic`` terms (maximum
likelihood), the NumPy log-density and random draws and the PyMC likelihood
(Bayesian), the names of its auxiliary parameters, and flags such as whether
``glmer`` fits it. The engines never switch on a family's name: a new family
is one new class here.

NumPy and SciPy only at import; PyTensor and PyMC are imported inside the
methods that build their expressions, so that ``import hierbayes`` stays light.

Examples
--------
>>> fam = get_family("binomial", "probit")
>>> fam.name, fam.link.name, fam.ml
('binomial', 'probit', True)
>>> float(LINKS["logit"].inverse(np.array(0.0)))
0.5
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from scipy import special, stats

from hierbayes.errors import DataError, ModelError

#: R's .Machine$double.eps: the clamp of make.link's inverse links and their derivatives
EPS = np.finfo(float).eps
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_HALF_LOG2PI = 0.5 * float(np.log(2 * np.pi))


# --- links ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A link function g: ``eta = g(mu)``.

    Subclasses give ``__call__`` (g), ``inverse`` (g^-1), ``mu_eta``
    (d mu / d eta) and ``pt_inverse`` (g^-1 of a PyTensor expression);
    ``linkinv_r`` and ``mu_eta_r`` are R's ``make.link`` versions, clamped
    where R clamps them (the GLMM engine uses these).

    Attributes
    ----------
    name
        R's name of the link.
    unit_scale
        The linear predictor lives on a unit scale whatever the data's
        (logit, probit, cloglog, log): default priors use scale 1 there.
    domain
        Where g is defined: ``"real"``, ``"nonnegative"``, ``"positive"`` or ``"unit"`` (0, 1).
    """

    name: str
    unit_scale: ClassVar[bool] = False
    domain: ClassVar[str] = "real"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        """mu = g^{-1}(eta)."""
        raise NotImplementedError

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """d mu / d eta."""
        raise NotImplementedError

    def mu_eta_deriv(self, eta: np.ndarray) -> np.ndarray:
        """d^2 mu / d eta^2 (the observed information of a non-canonical link needs it)."""
        raise NotImplementedError

    def linkinv_r(self, eta: np.ndarray) -> np.ndarray:
        """g^{-1}(eta) as R's ``make.link`` computes it (clamped for logit, probit, cloglog and log)."""
        return self.inverse(eta)

    def mu_eta_r(self, eta: np.ndarray) -> np.ndarray:
        """d mu / d eta as R's ``make.link`` computes it (at least eps for logit, probit, cloglog and log)."""
        return self.mu_eta(eta)

    def pt_inverse(self, eta):
        """mu = g^{-1}(eta) for a PyTensor expression."""
        raise NotImplementedError


@dataclass(frozen=True)
class IdentityLink(Link):
    name: str = "identity"

    def __call__(self, mu):
        return np.asarray(mu, dtype=float)

    def inverse(self, eta):
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return np.ones_like(np.asarray(eta, dtype=float))

    def mu_eta_deriv(self, eta):
        return np.zeros_like(np.asarray(eta, dtype=float))

    def pt_inverse(self, eta):
        return eta


@dataclass(frozen=True)
class LogLink(Link):
    name: str = "log"
    unit_scale: ClassVar[bool] = True
    domain: ClassVar[str] = "positive"

    def __call__(self, mu):
        return np.log(np.asarray(mu, dtype=float))

    def inverse(self, eta):
        return np.exp(np.asarray(eta, dtype=float))

    def mu_eta(self, eta):
        return np.exp(np.asarray(eta, dtype=float))

    def mu_eta_deriv(self, eta):
        return np.exp(np.asarray(eta, dtype=float))

    def linkinv_r(self, eta):
        with np.errstate(over="ignore"):  # exp() of a huge eta is inf, as in R (PIRLS halves such steps)
            return np.maximum(np.exp(eta), EPS)

    def mu_eta_r(self, eta):
        with np.errstate(over="ignore"):  # as linkinv_r
            return np.maximum(np.exp(eta), EPS)

    def pt_inverse(self, eta):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        return pt.exp(eta)


@dataclass(frozen=True)
class LogitLink(Link):
    name: str = "logit"
    unit_scale: ClassVar[bool] = True
    domain: ClassVar[str] = "unit"

    def __call__(self, mu):
        return special.logit(np.asarray(mu, dtype=float))

    def inverse(self, eta):
        return special.expit(np.asarray(eta, dtype=float))

    def mu_eta(self, eta):
        p = special.expit(np.asarray(eta, dtype=float))
        return p * (1.0 - p)

    def mu_eta_deriv(self, eta):
        p = special.expit(np.asarray(eta, dtype=float))
        return p * (1.0 - p) * (1.0 - 2.0 * p)

    def linkinv_r(self, eta):
        return np.clip(special.expit(eta), EPS, 1.0 - EPS)

    def mu_eta_r(self, eta):
        p = special.expit(eta)
        return np.maximum(p * (1.0 - p), EPS)

    def pt_inverse(self, eta):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        return pt.sigmoid(eta)


@dataclass(frozen=True)
class ProbitLink(Link):
    name: str = "probit"
    unit_scale: ClassVar[bool] = True
    domain: ClassVar[str] = "unit"

    def __call__(self, mu):
        return stats.norm.ppf(np.asarray(mu, dtype=float))

    def inverse(self, eta):
        return special.ndtr(np.asarray(eta, dtype=float))

    def mu_eta(self, eta):
        return stats.norm.pdf(np.asarray(eta, dtype=float))

    def mu_eta_deriv(self, eta):
        eta = np.asarray(eta, dtype=float)
        return -eta * stats.norm.pdf(eta)

    def linkinv_r(self, eta):
        return special.ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))

    def mu_eta_r(self, eta):
        # the density written out: scipy.stats' pdf is slow on small arrays
        return np.maximum(np.exp(-0.5 * eta * eta) * _INV_SQRT_2PI, EPS)

    def pt_inverse(self, eta):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        return 0.5 * pt.erfc(-eta / np.sqrt(2.0))


@dataclass(frozen=True)
class CloglogLink(Link):
    name: str = "cloglog"
    unit_scale: ClassVar[bool] = True
    domain: ClassVar[str] = "unit"

    def __call__(self, mu):
        return np.log(-np.log1p(-np.asarray(mu, dtype=float)))

    def inverse(self, eta):
        return -np.expm1(-np.exp(np.asarray(eta, dtype=float)))

    def mu_eta(self, eta):
        eta = np.asarray(eta, dtype=float)
        return np.exp(eta - np.exp(eta))

    def mu_eta_deriv(self, eta):
        eta = np.asarray(eta, dtype=float)
        return np.exp(eta - np.exp(eta)) * (1.0 - np.exp(eta))

    def linkinv_r(self, eta):
        return np.clip(self.inverse(eta), EPS, 1.0 - EPS)

    def mu_eta_r(self, eta):
        return np.maximum(self.mu_eta(eta), EPS)

    def pt_inverse(self, eta):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        return 1.0 - pt.exp(-pt.exp(eta))


@dataclass(frozen=True)
class InverseLink(Link):
    name: str = "inverse"
    domain: ClassVar[str] = "positive"

    def __call__(self, mu):
        return 1.0 / np.asarray(mu, dtype=float)

    def inverse(self, eta):
        return 1.0 / np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        eta = np.asarray(eta, dtype=float)
        return -1.0 / (eta * eta)

    def mu_eta_deriv(self, eta):
        eta = np.asarray(eta, dtype=float)
        return 2.0 / (eta * eta * eta)

    def pt_inverse(self, eta):
        return 1.0 / eta


@dataclass(frozen=True)
class SqrtLink(Link):
    name: str = "sqrt"
    domain: ClassVar[str] = "nonnegative"

    def __call__(self, mu):
        return np.sqrt(np.asarray(mu, dtype=float))

    def inverse(self, eta):
        eta = np.asarray(eta, dtype=float)
        return eta * eta

    def mu_eta(self, eta):
        return 2.0 * np.asarray(eta, dtype=float)

    def mu_eta_deriv(self, eta):
        return np.full_like(np.asarray(eta, dtype=float), 2.0)

    def pt_inverse(self, eta):
        return eta**2


@dataclass(frozen=True)
class InverseSquareLink(Link):
    """R's ``"1/mu^2"``, the canonical link of the inverse Gaussian family."""

    name: str = "1/mu^2"
    domain: ClassVar[str] = "positive"

    def __call__(self, mu):
        mu = np.asarray(mu, dtype=float)
        return 1.0 / (mu * mu)

    def inverse(self, eta):
        with np.errstate(invalid="ignore", divide="ignore"):  # eta <= 0 has no mean: NaN, a step PIRLS halves
            return 1.0 / np.sqrt(np.asarray(eta, dtype=float))

    def mu_eta(self, eta):
        with np.errstate(invalid="ignore", divide="ignore"):  # as inverse
            return -0.5 * np.asarray(eta, dtype=float) ** -1.5

    def mu_eta_deriv(self, eta):
        with np.errstate(invalid="ignore", divide="ignore"):  # as inverse
            return 0.75 * np.asarray(eta, dtype=float) ** -2.5

    def pt_inverse(self, eta):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        return 1.0 / pt.sqrt(eta)


LINKS: dict[str, Link] = {
    link.name: link
    for link in (IdentityLink(), LogLink(), LogitLink(), ProbitLink(), CloglogLink(), InverseLink(), SqrtLink(),
                 InverseSquareLink())
}  # fmt: skip


# --- families ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A response distribution and its link.

    Attributes
    ----------
    link
        The link function.
    name
        The family's name (``gaussian``, ``binomial``, ...).
    links
        The links it takes, its default first.
    aux
        Names of its auxiliary parameters in the Bayesian model (``sigma``, ``nu``, ...).
    ml
        Whether ``glmer`` fits it by maximum likelihood (Laplace, AGQ).
    binomial
        The response is successes out of trials (a proportion with weights in lme4's form).
    has_trials
        Each row is successes out of its own number of trials (from ``cbind()``, or prior
        weights as the Bayesian model reads them: the only weights it takes).
    check_overdispersion
        ``glmer`` fits check the Pearson ratio and warn when the data are overdispersed.
    mean_label
        emmeans' name of a mean on the response scale (``prob``, ``rate`` or ``response``).
    ml_parameter
        The family's own parameter that ``glmer`` estimates by maximum likelihood
        beside theta and beta (``"theta"``: the negative binomial's size;
        ``"dispersion"``: phi of the Gamma and inverse Gaussian families), or None.
        A family object whose parameter has a value keeps it fixed.
    observed_laplace
        ``glmer``'s Laplace approximation uses the observed information at the
        modes (the exact Laplace likelihood, as glmmTMB maximises it) rather
        than lme4's expected information (its PIRLS weights).
    r_link
        R's default link when it differs from ``links[0]`` (``Gamma()``:
        inverse); ``glmer`` uses it for a family named without a link.
    response_kind
        ``None`` for a numeric response; ``"ordinal"`` (an ordered factor or
        integers, coded 0..K-1 in level order; the location predictor has no
        intercept) or ``"categorical"`` (a factor with 2 or more levels) for
        the families whose likelihood gives per-category probabilities.
    """

    link: Link
    name: ClassVar[str] = ""
    links: ClassVar[tuple[str, ...]] = ()
    aux: ClassVar[tuple[str, ...]] = ()
    ml: ClassVar[bool] = False
    binomial: ClassVar[bool] = False
    has_trials: ClassVar[bool] = False
    check_overdispersion: ClassVar[bool] = False
    mean_label: ClassVar[str] = "response"
    ml_parameter: ClassVar[str | None] = None
    observed_laplace: ClassVar[bool] = False
    r_link: ClassVar[str | None] = None
    response_kind: ClassVar[str | None] = None

    @property
    def is_gaussian(self) -> bool:
        """The linear mixed model: gaussian with the identity link (REML/ML by ``lmer``)."""
        return False

    @property
    def r_name(self) -> str:
        """The family as R names it (lme4 knows ``binomial`` for 0/1 data too)."""
        return self.name

    # --- the response -------------------------------------------------------------------------
    def validate(self, y: np.ndarray, trials: np.ndarray | None, response: str) -> None:
        """Raise a DataError naming the response when its values do not fit the family."""
        bad_need = self._invalid(np.asarray(y, dtype=float), trials)
        if bad_need is None:
            return
        bad, need = bad_need
        if bad.any():
            y = np.asarray(y, dtype=float)
            idx = np.flatnonzero(bad)
            examples = ", ".join(f"{y[i]:g} (row {i})" for i in idx[:3])
            raise DataError(
                f"the {self.name} family needs the response '{response}' to be {need}; "
                f"{len(idx)} value(s) are not, e.g. {examples}"
            )

    def _invalid(self, y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str] | None:
        """(rows whose value the family cannot take, what it needs) or None."""
        return None

    def counts(self, y: np.ndarray, trials: np.ndarray | None, weights: np.ndarray | None):
        """The response as the Bayesian likelihood sees it: (y, trials); trials None except for binomial."""
        return np.asarray(y, dtype=float), None

    # --- maximum likelihood (lme4's glmResp) -----------------------------------------------------
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function V(mu)."""
        raise ModelError(f"the {self.name} family has no maximum-likelihood GLMM here")

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``family$dev.resids``)."""
        raise ModelError(f"the {self.name} family has no maximum-likelihood GLMM here")

    def aic_setup(self, y: np.ndarray, wt: np.ndarray, n: np.ndarray) -> Any:
        """What :meth:`loglik_terms` needs that does not depend on mu (computed once per response)."""
        return None

    def loglik_terms(self, mu: np.ndarray, y: np.ndarray, wt: np.ndarray, setup: Any) -> np.ndarray:
        """Per-row log-likelihood contributions, weighted as lme4's ``family$aic`` weighs them."""
        raise ModelError(f"the {self.name} family has no maximum-likelihood GLMM here")

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Starting means (R's ``family$initialize``)."""
        return np.asarray(y, dtype=float).copy()

    def simulate(self, mu: np.ndarray, trials: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A response drawn at the means ``mu`` (lme4's ``simulate``): successes out of ``trials``, or counts."""
        raise ModelError(f"the {self.name} family has no maximum-likelihood GLMM here")

    # --- the family's own parameter (glmer.nb's theta, the Gamma dispersion) ----------------------
    @property
    def parameter(self) -> float | None:
        """The value of :attr:`ml_parameter` (None: glmer estimates it; also None without one)."""
        return None if self.ml_parameter is None else getattr(self, self.ml_parameter)

    def with_parameter(self, value: float) -> Family:
        """The same family with :attr:`ml_parameter` set to ``value``."""
        if self.ml_parameter is None:
            raise ModelError(f"the {self.name} family has no parameter of its own to set")
        return replace(self, **{self.ml_parameter: float(value)})

    def mode_weight_scale(self) -> float:
        """Factor of the prior weights under which PIRLS' penalized deviance is -2 log p(y, u) (1 / phi)."""
        return 1.0

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """dV/dmu (for the observed information)."""
        raise ModelError(f"the {self.name} family has no maximum-likelihood GLMM here")

    def observed_weights(self, y: np.ndarray, mu: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """-d^2 log p(y | eta) / d eta^2 per row for prior weights ``wt`` (already divided by phi).

        ``wt (mu_eta^2 / V - (y - mu) d(mu_eta / V)/d eta)``: the working
        weight less a term that vanishes for canonical links and in expectation.
        """
        me, me2 = self.link.mu_eta(eta), self.link.mu_eta_deriv(eta)
        v, dv = self.variance(mu), self.variance_deriv(mu)
        return wt * (me * me / v - (y - mu) * (me2 * v - me * me * dv) / (v * v))

    # --- Bayesian ---------------------------------------------------------------------------------
    def pymc_likelihood(self, eta, y: np.ndarray, trials: np.ndarray | None, params: dict, dims: str):
        """The observed variable ``y`` of a PyMC model (call inside the model context)."""
        raise ModelError(f"the Bayesian engine has no likelihood for the {self.name} family")

    def logpdf(self, y: np.ndarray, eta: np.ndarray, params: dict, trials: np.ndarray | None) -> np.ndarray:
        """Pointwise log-likelihood for draws of eta (..., n); ``params`` values broadcast as (..., 1)."""
        raise ModelError(f"the Bayesian engine has no likelihood for the {self.name} family")

    def rvs(self, eta: np.ndarray, params: dict, trials: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Draws of the response for draws of eta (..., n) and of the auxiliary parameters."""
        raise ModelError(f"the Bayesian engine has no likelihood for the {self.name} family")

    def response_mean(self, eta: np.ndarray, params: dict) -> np.ndarray:
        """E[y | eta] (the inverse link, unless the family adds to it)."""
        return self.link.inverse(eta)


def _ylogy(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y log(y / mu)``, zero where y is zero (R's ``y_log_y``); mu > 0 (the links clamp it)."""
    return special.xlogy(y, y / mu)


def _pymc():
    import pymc as pm  # PyMC only for the Bayesian model: import hierbayes stays light

    return pm


@dataclass(frozen=True)
class Gaussian(Family):
    link: Link = LINKS["identity"]
    name: ClassVar[str] = "gaussian"
    links: ClassVar[tuple[str, ...]] = ("identity", "log", "inverse")
    aux: ClassVar[tuple[str, ...]] = ("sigma",)

    @property
    def is_gaussian(self) -> bool:
        return self.link.name == "identity"

    def variance(self, mu):
        return np.ones_like(mu)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().Normal("y", mu=self.link.pt_inverse(eta), sigma=params["sigma"], observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        s = params["sigma"]
        return -0.5 * ((y - self.link.inverse(eta)) / s) ** 2 - np.log(s) - _HALF_LOG2PI

    def rvs(self, eta, params, trials, rng):
        return rng.normal(self.link.inverse(eta), params["sigma"])


@dataclass(frozen=True)
class StudentT(Family):
    link: Link = LINKS["identity"]
    name: ClassVar[str] = "student_t"
    links: ClassVar[tuple[str, ...]] = ("identity", "log")
    aux: ClassVar[tuple[str, ...]] = ("sigma", "nu")

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().StudentT("y", nu=params["nu"], mu=self.link.pt_inverse(eta), sigma=params["sigma"],
                                observed=y, dims=dims)  # fmt: skip

    def logpdf(self, y, eta, params, trials):
        return stats.t.logpdf(y, params["nu"], self.link.inverse(eta), params["sigma"])

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        return mu + params["sigma"] * rng.standard_t(params["nu"], size=mu.shape)


@dataclass(frozen=True)
class _Trials(Family):
    """Successes out of trials: what the Bernoulli and binomial families share (lme4's ``binomial()``)."""

    link: Link = LINKS["logit"]
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    ml: ClassVar[bool] = True
    binomial: ClassVar[bool] = True
    mean_label: ClassVar[str] = "prob"

    @property
    def r_name(self) -> str:
        return "binomial"

    def variance(self, mu):
        return mu * (1.0 - mu)

    def dev_resids(self, y, mu, wt):
        return 2.0 * wt * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))

    def aic_setup(self, y, wt, n):
        m = n if np.any(n > 1) else wt
        yy = np.round(m * y)
        m = np.round(m)
        scale = np.divide(wt, m, out=np.zeros_like(m), where=m > 0)
        const = special.gammaln(m + 1) - special.gammaln(yy + 1) - special.gammaln(m - yy + 1)
        return m, yy, scale, const

    def loglik_terms(self, mu, y, wt, setup):
        m, yy, scale, const = setup
        return scale * (const + special.xlogy(yy, mu) + special.xlogy(m - yy, 1.0 - mu))

    def mustart(self, y, wt):
        return (wt * y + 0.5) / (wt + 1.0)

    def simulate(self, mu, trials, rng):
        return rng.binomial(np.rint(trials).astype(np.int64), mu)

    def _log_p_q(self, eta):
        if self.link.name == "logit":
            return special.log_expit(eta), special.log_expit(-eta)
        mu = np.clip(self.link.inverse(eta), 1e-300, 1 - 1e-16)
        return np.log(mu), np.log1p(-mu)

    def _pymc_p(self, eta) -> dict:
        return {"logit_p": eta} if self.link.name == "logit" else {"p": self.link.pt_inverse(eta)}


@dataclass(frozen=True)
class Bernoulli(_Trials):
    name: ClassVar[str] = "bernoulli"

    def _invalid(self, y, trials):
        return ~np.isin(y, (0.0, 1.0)), "0 or 1"

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().Bernoulli("y", **self._pymc_p(eta), observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        lp, lq = self._log_p_q(eta)
        return y * lp + (1 - y) * lq

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        return (rng.random(mu.shape) < mu).astype(float)


@dataclass(frozen=True)
class Binomial(_Trials):
    name: ClassVar[str] = "binomial"
    has_trials: ClassVar[bool] = True

    def _invalid(self, y, trials):
        if trials is None and np.all((y == 0) | (y == 1)):
            return ~np.isin(y, (0.0, 1.0)), "0 or 1"
        if trials is None:
            return (y < 0) | (y > 1), "a proportion in [0, 1] (with weights), or cbind(successes, failures)"
        return (y < 0) | (y > trials) | (y != np.round(y)), "whole numbers of successes <= trials"

    def counts(self, y, trials, weights):
        """``cbind(s, f)``: successes and trials; proportions with weights: ``round(y * w)`` of ``w``; 0/1: one."""
        y = np.asarray(y, dtype=float)
        if trials is not None:
            return y, np.asarray(trials, dtype=float)
        if weights is not None:
            w = np.asarray(weights, dtype=float)
            if np.any(np.abs(w - np.round(w)) > 1e-8):
                raise ModelError("binomial weights must be whole numbers of trials")
            return np.round(y * w), np.round(w)
        return y, np.ones_like(y)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().Binomial("y", n=trials.astype("int64"), **self._pymc_p(eta), observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        lp, lq = self._log_p_q(eta)
        return (
            special.gammaln(trials + 1)
            - special.gammaln(y + 1)
            - special.gammaln(trials - y + 1)
            + y * lp
            + (trials - y) * lq
        )

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        return rng.binomial(np.broadcast_to(trials, mu.shape).astype(np.int64), np.clip(mu, 0, 1)).astype(float)


def _count_invalid(y: np.ndarray) -> tuple[np.ndarray, str]:
    return (y < 0) | (y != np.round(y)), "non-negative whole-number counts"


@dataclass(frozen=True)
class Poisson(Family):
    link: Link = LINKS["log"]
    name: ClassVar[str] = "poisson"
    links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    mean_label: ClassVar[str] = "rate"
    ml: ClassVar[bool] = True
    check_overdispersion: ClassVar[bool] = True

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def variance(self, mu):
        return mu

    def dev_resids(self, y, mu, wt):
        with np.errstate(invalid="ignore"):  # an infinite mu (overflowed exp) gives NaN: a step PIRLS halves
            return 2.0 * wt * (_ylogy(y, mu) - (y - mu))

    def loglik_terms(self, mu, y, wt, setup):
        return wt * (special.xlogy(y, mu) - mu - special.gammaln(y + 1.0))

    def mustart(self, y, wt):
        return y + 0.1

    def simulate(self, mu, trials, rng):
        return rng.poisson(mu)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().Poisson("y", mu=self.link.pt_inverse(eta), observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        return stats.poisson.logpmf(y, self.link.inverse(eta))

    def rvs(self, eta, params, trials, rng):
        return rng.poisson(self.link.inverse(eta)).astype(float)


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """Negative binomial counts, variance ``mu + mu^2 / theta`` (MASS's ``negative.binomial(theta)``).

    ``glmer`` estimates theta by maximum likelihood (lme4's ``glmer.nb``)
    unless the object fixes it; the Bayesian model's ``alpha`` is theta.
    """

    link: Link = LINKS["log"]
    theta: float | None = None
    name: ClassVar[str] = "negative_binomial"
    links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    aux: ClassVar[tuple[str, ...]] = ("alpha",)
    ml: ClassVar[bool] = True
    ml_parameter: ClassVar[str | None] = "theta"

    def __post_init__(self) -> None:
        _check_positive(self.theta, "negative_binomial theta")

    @property
    def r_name(self) -> str:
        return "Negative Binomial" if self.theta is None else f"Negative Binomial({self.theta:.4g})"

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def _theta(self) -> float:
        if self.theta is None:
            raise ModelError("the negative binomial's theta is not set (glmer estimates it; see hb.glmer_nb)")
        return self.theta

    def variance(self, mu):
        return mu + mu * mu / self._theta()

    def variance_deriv(self, mu):
        return 1.0 + 2.0 * mu / self._theta()

    def dev_resids(self, y, mu, wt):
        th = self._theta()
        with np.errstate(invalid="ignore", divide="ignore"):  # an overflowed mu: NaN, a step PIRLS halves
            return 2.0 * wt * (special.xlogy(y, np.maximum(y, 1.0) / mu) - (y + th) * np.log((y + th) / (mu + th)))

    def aic_setup(self, y, wt, n):
        th = self.theta
        if th is None:
            return None
        return special.gammaln(th + y) - special.gammaln(th) - special.gammaln(y + 1.0) + th * np.log(th)

    def loglik_terms(self, mu, y, wt, setup):
        th = self._theta()
        const = self.aic_setup(y, wt, None) if setup is None else setup
        with np.errstate(invalid="ignore", divide="ignore"):  # as dev_resids
            return wt * (const + special.xlogy(y, mu) - (th + y) * np.log(th + mu))

    def mustart(self, y, wt):
        return y + (y == 0) / 6.0

    def simulate(self, mu, trials, rng):
        th = self._theta()
        return rng.negative_binomial(th, th / (th + mu)).astype(float)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().NegativeBinomial("y", mu=self.link.pt_inverse(eta), alpha=params["alpha"], observed=y,
                                        dims=dims)  # fmt: skip

    def logpdf(self, y, eta, params, trials):
        a = params["alpha"]
        return stats.nbinom.logpmf(y, a, a / (a + self.link.inverse(eta)))

    def rvs(self, eta, params, trials, rng):
        a = params["alpha"]
        return rng.poisson(rng.gamma(a, self.link.inverse(eta) / a)).astype(float)


def _check_positive(value: float | None, what: str) -> None:
    if value is None:
        return
    try:
        ok = bool(np.isfinite(value) and value > 0)
    except TypeError:
        ok = False
    if not ok:
        raise ModelError(f"{what} must be a positive number, not {value!r}")


@dataclass(frozen=True)
class _Dispersion(Family):
    """An exponential-dispersion family with dispersion phi (variance ``phi V(mu)``), fitted by glmer.

    glmer maximises the Laplace approximation to the likelihood with phi as
    a parameter and the observed information at the modes (glmmTMB's fit):
    lme4 1.1-31 does not (see docs/families.md). ``sigma`` is ``sqrt(phi)``.
    """

    link: Link = LINKS["log"]
    dispersion: float | None = None
    ml: ClassVar[bool] = True
    ml_parameter: ClassVar[str | None] = "dispersion"
    observed_laplace: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_positive(self.dispersion, f"the {self.name} dispersion")

    def _invalid(self, y, trials):
        return ~(y > 0), "positive"

    def _phi(self) -> float:
        if self.dispersion is None:
            raise ModelError(f"the {self.name} dispersion is not set (glmer estimates it)")
        return self.dispersion

    def mode_weight_scale(self) -> float:
        return 1.0 / self._phi()

    def mustart(self, y, wt):
        return np.asarray(y, dtype=float).copy()


@dataclass(frozen=True)
class Gamma(_Dispersion):
    """Gamma responses: variance ``phi mu^2`` (shape ``1 / phi``; ``sigma = sqrt(phi)`` is the CV)."""

    name: ClassVar[str] = "gamma"
    links: ClassVar[tuple[str, ...]] = ("log", "inverse", "identity")
    aux: ClassVar[tuple[str, ...]] = ("shape",)
    r_link: ClassVar[str | None] = "inverse"

    @property
    def r_name(self) -> str:
        return "Gamma"

    def variance(self, mu):
        return mu * mu

    def variance_deriv(self, mu):
        return 2.0 * mu

    def dev_resids(self, y, mu, wt):
        with np.errstate(invalid="ignore", divide="ignore"):  # mu <= 0 (identity/inverse links): NaN, halved
            return -2.0 * wt * (np.log(y / mu) - (y - mu) / mu)

    def loglik_terms(self, mu, y, wt, setup):
        shape = wt / self._phi()
        with np.errstate(invalid="ignore", divide="ignore"):  # as dev_resids
            r = y / mu
            ll = special.xlogy(shape, shape * r) - shape * r - np.log(y) - special.gammaln(shape)
        return np.where(wt > 0, ll, 0.0)

    def simulate(self, mu, trials, rng):
        phi = self._phi()
        return rng.gamma(1.0 / phi, mu * phi)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        mu = self.link.pt_inverse(eta)
        return _pymc().Gamma("y", alpha=params["shape"], beta=params["shape"] / mu, observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        return stats.gamma.logpdf(y, params["shape"], scale=self.link.inverse(eta) / params["shape"])

    def rvs(self, eta, params, trials, rng):
        return rng.gamma(params["shape"], self.link.inverse(eta) / params["shape"])


@dataclass(frozen=True)
class InverseGaussian(_Dispersion):
    """Inverse Gaussian responses: variance ``phi mu^3`` (R's ``inverse.gaussian``; lambda = 1 / phi)."""

    link: Link = LINKS["1/mu^2"]
    name: ClassVar[str] = "inverse_gaussian"
    links: ClassVar[tuple[str, ...]] = ("1/mu^2", "log", "inverse", "identity")

    @property
    def r_name(self) -> str:
        return "inverse.gaussian"

    def variance(self, mu):
        return mu * mu * mu

    def variance_deriv(self, mu):
        return 3.0 * mu * mu

    def dev_resids(self, y, mu, wt):
        with np.errstate(invalid="ignore", divide="ignore"):  # as Gamma's
            return wt * (y - mu) ** 2 / (y * mu * mu)

    def loglik_terms(self, mu, y, wt, setup):
        phi = self._phi() / np.where(wt > 0, wt, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):  # as dev_resids
            ll = -0.5 * (np.log(2 * np.pi * phi) + 3.0 * np.log(y)) - (y - mu) ** 2 / (2.0 * phi * y * mu * mu)
        return np.where(wt > 0, ll, 0.0)

    def simulate(self, mu, trials, rng):
        return rng.wald(mu, 1.0 / self._phi())


@dataclass(frozen=True)
class Beta(Family):
    link: Link = LINKS["logit"]
    name: ClassVar[str] = "beta"
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    aux: ClassVar[tuple[str, ...]] = ("phi",)

    def _invalid(self, y, trials):
        return (y <= 0) | (y >= 1), "strictly between 0 and 1"

    def pymc_likelihood(self, eta, y, trials, params, dims):
        mu = self.link.pt_inverse(eta)
        return _pymc().Beta("y", alpha=mu * params["phi"], beta=(1.0 - mu) * params["phi"], observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        mu = self.link.inverse(eta)
        return stats.beta.logpdf(y, mu * params["phi"], (1 - mu) * params["phi"])

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        return rng.beta(mu * params["phi"], (1 - mu) * params["phi"])


@dataclass(frozen=True)
class ZeroInflatedPoisson(Family):
    link: Link = LINKS["log"]
    name: ClassVar[str] = "zero_inflated_poisson"
    links: ClassVar[tuple[str, ...]] = ("log",)
    aux: ClassVar[tuple[str, ...]] = ("psi",)

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().ZeroInflatedPoisson("y", psi=params["psi"], mu=self.link.pt_inverse(eta), observed=y,
                                           dims=dims)  # fmt: skip

    def logpdf(self, y, eta, params, trials):
        mu, psi = self.link.inverse(eta), params["psi"]
        pois = stats.poisson.logpmf(y, mu) + np.log(psi)
        return np.where(y == 0, np.logaddexp(np.log1p(-psi) + 0 * mu, pois), pois)

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        return np.where(rng.random(mu.shape) < params["psi"], rng.poisson(mu), 0).astype(float)

    def response_mean(self, eta, params):
        return params["psi"] * self.link.inverse(eta)


def _mix_zero(y: np.ndarray, log_p0: np.ndarray, log_q: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """Zero inflation: ``log((1 - psi) + psi p(0))`` at zeros, ``log psi + log p(y)`` elsewhere (log_q = log psi)."""
    return np.where(y == 0, np.logaddexp(log_p0, log_q + logp), log_q + logp)


def _truncated_counts(dist, mu_shape: tuple, p0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of a count distribution given y > 0 (inverse CDF from above P(0))."""
    u = p0 + (1.0 - p0) * rng.random(mu_shape)
    return np.maximum(dist.ppf(np.minimum(u, 1.0 - 1e-16)), 1.0)


@dataclass(frozen=True)
class ZeroInflatedNegativeBinomial(Family):
    """With probability ``1 - psi`` a structural zero, else NB(mu, alpha) (PyMC's and bambi's parametrisation)."""

    link: Link = LINKS["log"]
    name: ClassVar[str] = "zero_inflated_negative_binomial"
    links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    aux: ClassVar[tuple[str, ...]] = ("psi", "alpha")

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().ZeroInflatedNegativeBinomial("y", psi=params["psi"], mu=self.link.pt_inverse(eta),
                                                    alpha=params["alpha"], observed=y, dims=dims)  # fmt: skip

    def logpdf(self, y, eta, params, trials):
        a, psi = params["alpha"], params["psi"]
        mu = self.link.inverse(eta)
        return _mix_zero(y, np.log1p(-psi), np.log(psi), stats.nbinom.logpmf(y, a, a / (a + mu)))

    def rvs(self, eta, params, trials, rng):
        a, mu = params["alpha"], self.link.inverse(eta)
        counts = rng.poisson(rng.gamma(a, mu / a))
        return np.where(rng.random(mu.shape) < params["psi"], counts, 0).astype(float)

    def response_mean(self, eta, params):
        return params["psi"] * self.link.inverse(eta)


@dataclass(frozen=True)
class ZeroInflatedBinomial(Binomial):
    """With probability ``1 - psi`` zero successes, else Binomial(n, p) (PyMC's ``ZeroInflatedBinomial``)."""

    name: ClassVar[str] = "zero_inflated_binomial"
    aux: ClassVar[tuple[str, ...]] = ("psi",)
    ml: ClassVar[bool] = False

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().ZeroInflatedBinomial("y", psi=params["psi"], n=trials.astype("int64"),
                                            p=self.link.pt_inverse(eta), observed=y, dims=dims)  # fmt: skip

    def logpdf(self, y, eta, params, trials):
        psi = params["psi"]
        return _mix_zero(y, np.log1p(-psi), np.log(psi), super().logpdf(y, eta, params, trials))

    def rvs(self, eta, params, trials, rng):
        draws = super().rvs(eta, params, trials, rng)
        return np.where(rng.random(draws.shape) < params["psi"], draws, 0.0)

    def response_mean(self, eta, params):
        return params["psi"] * self.link.inverse(eta)


@dataclass(frozen=True)
class HurdlePoisson(Family):
    """Zero with probability ``1 - psi``; else a zero-truncated Poisson(mu) (PyMC's ``HurdlePoisson``)."""

    link: Link = LINKS["log"]
    name: ClassVar[str] = "hurdle_poisson"
    links: ClassVar[tuple[str, ...]] = ("log",)
    aux: ClassVar[tuple[str, ...]] = ("psi",)

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().HurdlePoisson("y", psi=params["psi"], mu=self.link.pt_inverse(eta), observed=y, dims=dims)

    def logpdf(self, y, eta, params, trials):
        psi, mu = params["psi"], self.link.inverse(eta)
        positive = np.log(psi) + stats.poisson.logpmf(y, mu) - np.log(-np.expm1(-mu))
        return np.where(y == 0, np.log1p(-psi) + 0.0 * mu, positive)

    def rvs(self, eta, params, trials, rng):
        mu = self.link.inverse(eta)
        pos = _truncated_counts(stats.poisson(mu), mu.shape, np.exp(-mu), rng)
        return np.where(rng.random(mu.shape) < params["psi"], pos, 0.0)

    def response_mean(self, eta, params):
        mu = self.link.inverse(eta)
        return params["psi"] * mu / -np.expm1(-mu)


@dataclass(frozen=True)
class HurdleNegativeBinomial(Family):
    """Zero with probability ``1 - psi``; else a zero-truncated NB(mu, alpha) (PyMC's ``HurdleNegativeBinomial``)."""

    link: Link = LINKS["log"]
    name: ClassVar[str] = "hurdle_negative_binomial"
    links: ClassVar[tuple[str, ...]] = ("log",)
    aux: ClassVar[tuple[str, ...]] = ("psi", "alpha")

    def _invalid(self, y, trials):
        return _count_invalid(y)

    def pymc_likelihood(self, eta, y, trials, params, dims):
        return _pymc().HurdleNegativeBinomial("y", psi=params["psi"], mu=self.link.pt_inverse(eta),
                                              alpha=params["alpha"], observed=y, dims=dims)  # fmt: skip

    @staticmethod
    def _log_p0(mu, a):
        return a * (np.log(a) - np.log(a + mu))

    def logpdf(self, y, eta, params, trials):
        psi, a, mu = params["psi"], params["alpha"], self.link.inverse(eta)
        lp0 = self._log_p0(mu, a)
        positive = np.log(psi) + stats.nbinom.logpmf(y, a, a / (a + mu)) - np.log(-np.expm1(lp0))
        return np.where(y == 0, np.log1p(-psi) + 0.0 * mu, positive)

    def rvs(self, eta, params, trials, rng):
        a, mu = params["alpha"], self.link.inverse(eta)
        a = np.broadcast_to(a, mu.shape)
        pos = _truncated_counts(stats.nbinom(a, a / (a + mu)), mu.shape, np.exp(self._log_p0(mu, a)), rng)
        return np.where(rng.random(mu.shape) < params["psi"], pos, 0.0)

    def response_mean(self, eta, params):
        a, mu = params["alpha"], self.link.inverse(eta)
        return params["psi"] * mu / -np.expm1(self._log_p0(mu, a))


# --- per-category responses (ordinal, categorical) ----------------------------------------------------------------


def _take(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``probs[..., i, y_i]``: the probability of each row's observed category."""
    codes = np.asarray(y).astype(np.int64)
    idx = np.broadcast_to(codes[:, None], (*probs.shape[:-1], 1))
    return np.take_along_axis(probs, idx, axis=-1)[..., 0]


def _draw_categories(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category code per row from per-row probabilities (last axis), as floats."""
    u = rng.random((*probs.shape[:-1], 1))
    return np.minimum((np.cumsum(probs, axis=-1) < u).sum(axis=-1), probs.shape[-1] - 1).astype(float)


@dataclass(frozen=True)
class _CategoryResponse(Family):
    """A response with K categories: the likelihood gives per-category probabilities (..., n, K).

    ``y`` holds the category codes 0..K-1 (the design's ``response_levels`` in order);
    ``response_mean`` is the vector of category probabilities, the expectation of the
    one-hot response.
    """

    def category_probs(self, eta: np.ndarray, params: dict) -> np.ndarray:
        """P(y = k) for draws of the linear predictor(s): (..., n, K)."""
        raise NotImplementedError

    def pt_category_probs(self, eta, params):
        """:meth:`category_probs` as a PyTensor expression (eta (n,), thresholds (K-1,)): (n, K)."""
        raise NotImplementedError

    def pymc_likelihood(self, eta, y, trials, params, dims):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        p = pt.clip(self.pt_category_probs(eta, params), 1e-300, 1.0)
        return _pymc().Categorical("y", p=p, observed=np.asarray(y).astype(np.int64), dims=dims)

    def logpdf(self, y, eta, params, trials):
        with np.errstate(divide="ignore"):  # a probability of 0 is a log-likelihood of -inf
            return np.log(np.maximum(_take(self.category_probs(eta, params), y), 0.0))

    def rvs(self, eta, params, trials, rng):
        return _draw_categories(self.category_probs(eta, params), rng)

    def response_mean(self, eta, params):
        return self.category_probs(eta, params)


@dataclass(frozen=True)
class _Ordinal(_CategoryResponse):
    """Ordered categories from a latent ``eta`` and K-1 thresholds (bambi's and brms' parametrisation).

    The location predictor has no intercept (the thresholds take its place);
    the thresholds are the posterior variable ``threshold`` (dim ``threshold_dim``, 0..K-2, as bambi names them).
    """

    link: Link = LINKS["logit"]
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")
    aux: ClassVar[tuple[str, ...]] = ("threshold",)
    response_kind: ClassVar[str | None] = "ordinal"
    mean_label: ClassVar[str] = "prob"
    ordered_thresholds: ClassVar[bool] = True

    def _cdf(self, threshold, eta):
        with np.errstate(over="ignore"):  # exp() of a large argument in cloglog: probability 1
            return self.link.inverse(np.asarray(threshold) - np.asarray(eta)[..., None])

    def threshold_means(self, counts: np.ndarray) -> np.ndarray:
        """Prior means of the thresholds from the category counts (the model without predictors, at its fit)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Cumulative(_Ordinal):
    """Cumulative ordinal model: ``P(y <= k) = F(threshold_k - eta)`` (bambi ``cumulative``, ``ordinal::clmm``).

    Examples
    --------
    >>> fam = Cumulative()
    >>> fam.category_probs(np.array([0.0]), {"threshold": np.array([-1.0, 1.0])}).round(3)
    array([[0.269, 0.462, 0.269]])
    """

    name: ClassVar[str] = "cumulative"

    def category_probs(self, eta, params):
        cum = self._cdf(params["threshold"], eta)
        return np.diff(cum, axis=-1, prepend=0.0, append=1.0)

    def pt_category_probs(self, eta, params):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        cum = self.link.pt_inverse(params["threshold"][None, :] - eta[:, None])
        n = cum.shape[0]
        return pt.diff(pt.concatenate([pt.zeros((n, 1)), cum, pt.ones((n, 1))], axis=1), axis=1)

    def threshold_means(self, counts):
        cum = np.cumsum(counts)[:-1] / np.sum(counts)
        return self.link(np.clip(cum, 0.01, 0.99))


@dataclass(frozen=True)
class StoppingRatio(_Ordinal):
    """Stopping-ratio (sequential) ordinal model: ``P(y = k | y >= k) = F(threshold_k - eta)`` (bambi ``sratio``).

    The thresholds need not be ordered.

    Examples
    --------
    >>> fam = StoppingRatio()
    >>> fam.category_probs(np.array([0.0]), {"threshold": np.array([0.0, 0.0])}).round(3)
    array([[0.5 , 0.25, 0.25]])
    """

    name: ClassVar[str] = "sratio"
    ordered_thresholds: ClassVar[bool] = False

    def category_probs(self, eta, params):
        q = self._cdf(params["threshold"], eta)
        survive = np.cumprod(1.0 - q, axis=-1)
        before = np.concatenate([np.ones_like(survive[..., :1]), survive[..., :-1]], axis=-1)
        return np.concatenate([q * before, survive[..., -1:]], axis=-1)

    def pt_category_probs(self, eta, params):
        import pytensor.tensor as pt  # PyTensor only for the Bayesian model: import hierbayes stays light

        q = self.link.pt_inverse(params["threshold"][None, :] - eta[:, None])
        survive = pt.cumprod(1.0 - q, axis=1)
        n = q.shape[0]
        before = pt.concatenate([pt.ones((n, 1)), survive[:, :-1]], axis=1)
        return pt.concatenate([q * before, survive[:, -1:]], axis=1)

    def threshold_means(self, counts):
        at_least = np.cumsum(counts[::-1])[::-1][:-1]
        return self.link(np.clip(counts[:-1] / at_least, 0.01, 0.99))


FAMILIES: dict[str, type[Family]] = {
    f.name: f
    for f in (
        Gaussian,
        StudentT,
        Bernoulli,
        Binomial,
        Poisson,
        NegativeBinomial,
        Gamma,
        InverseGaussian,
        Beta,
        ZeroInflatedPoisson,
        ZeroInflatedNegativeBinomial,
        ZeroInflatedBinomial,
        HurdlePoisson,
        HurdleNegativeBinomial,
        Cumulative,
        StoppingRatio,
    )
}
_ALIASES = {"normal": "gaussian", "t": "student_t", "studentt": "student_t", "negbinomial": "negative_binomial",
            "negbin": "negative_binomial", "zip": "zero_inflated_poisson", "logistic": "bernoulli",
            "zinb": "zero_inflated_negative_binomial",
            "negative.binomial": "negative_binomial", "nbinom2": "negative_binomial",
            "inverse.gaussian": "inverse_gaussian", "inversegaussian": "inverse_gaussian",
            "stopping_ratio": "sratio", "ordinal": "cumulative"}  # fmt: skip


def get_family(family: str | Family = "gaussian", link: str | None = None, r_default: bool = False) -> Family:
    """Look up a family by name, with its default or a chosen link.

    R's spellings are accepted (``"Gamma"``, ``"inverse.gaussian"``,
    ``"negative.binomial"``). With ``r_default`` a family named without a link
    takes R's default link (``Gamma``: inverse; ``inverse.gaussian``:
    ``1/mu^2``), as ``glmer(family = Gamma)`` does. A family object keeps its
    parameter (a fixed negative-binomial theta) when given another link.

    Examples
    --------
    >>> get_family("binomial", "probit").link.name
    'probit'
    >>> get_family("Gamma", r_default=True).link.name
    'inverse'
    >>> get_family("binomial(link = 'probit')").link.name
    'probit'
    """
    if isinstance(family, str) and "(" in family:  # R's call spelling: "poisson()", "binomial(link = 'probit')"
        family, link = _r_family_call(family, link)
    if isinstance(family, Family):
        if link is None:
            return family
        _check_link(type(family), family.name, link)
        return replace(family, link=LINKS[link])
    if not isinstance(family, str):
        raise ModelError(f"family must be a family name or a family object, not {family!r}")
    key = family.lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in FAMILIES:
        raise ModelError(f"unknown family '{family}'; choose one of {', '.join(FAMILIES)}")
    cls = FAMILIES[key]
    link = link or (cls.r_link if r_default and cls.r_link else cls.links[0])
    _check_link(cls, key, link)
    return cls(LINKS[link])


_R_CALL = re.compile(r"""\s*([A-Za-z][\w.]*)\s*\(\s*(?:(?:link\s*=\s*)?["']?([\w./^]+)["']?)?\s*\)\s*""")


def _r_family_call(text: str, link: str | None) -> tuple[str, str | None]:
    """``"binomial(link = 'probit')"`` -> ("binomial", "probit"); a link given twice must agree."""
    m = _R_CALL.fullmatch(text)
    if m is None:
        raise ModelError(f"family {text!r}: write a family name ('poisson'), or R's call with a link only, "
                         "such as \"binomial(link = 'probit')\"")  # fmt: skip
    name, inner = m.group(1), m.group(2)
    if inner is not None and link is not None and inner != link:
        raise ModelError(f"family {text!r} names the link {inner!r} but link={link!r} was given too")
    return name, link or inner


def _check_link(cls: type[Family], name: str, link: str) -> None:
    if link not in cls.links:
        raise ModelError(f"the {name} family takes the links {', '.join(cls.links)}, not '{link}'")


# --- R's family constructors -------------------------------------------------------------------------------------


def gamma_family(link: str = "inverse") -> Gamma:
    """R's ``Gamma(link = "inverse")``: ``hb.Gamma(link="log")``; glmer estimates the dispersion.

    Examples
    --------
    >>> gamma_family("log")
    Gamma(link=LogLink(name='log'), dispersion=None)
    """
    return get_family("gamma", link)  # type: ignore[return-value]


def inverse_gaussian_family(link: str = "1/mu^2") -> InverseGaussian:
    """R's ``inverse.gaussian(link = "1/mu^2")``: ``hb.inverse_gaussian(link="log")``.

    Examples
    --------
    >>> inverse_gaussian_family().link.name
    '1/mu^2'
    """
    return get_family("inverse_gaussian", link)  # type: ignore[return-value]


def negative_binomial_family(theta: float | None = None, link: str = "log") -> NegativeBinomial:
    """MASS's ``negative.binomial(theta, link = "log")``: theta fixed; None lets glmer estimate it.

    Examples
    --------
    >>> negative_binomial_family(2.5).variance(np.array([2.0]))
    array([3.6])
    """
    _check_link(NegativeBinomial, "negative_binomial", link)
    return NegativeBinomial(LINKS[link], theta)
