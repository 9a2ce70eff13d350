"""The response of a GLMM in lme4's internal form (lme4's ``glmResp``).

``GlmResponse`` holds the response as lme4 stores it -- the proportion ``y``
with prior weights ``wt`` equal to the number of trials for binomial data
(``cbind(s, f)`` or proportions with ``weights``), counts for Poisson -- and
gives, for a linear predictor or a mean, what PIRLS and the Laplace deviance
need: the inverse link and its derivative (clamped as R's ``make.link`` does),
the deviance residuals, the family's ``aic`` term (-2 times the conditional
log-likelihood), the IRLS working weights and response, and lme4's starting
values. The family's formulas are the family's (:mod:`hierbayes.families`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hierbayes.errors import ModelError
from hierbayes.families import FAMILIES, Family

if TYPE_CHECKING:
    from hierbayes.design import Design


#: (family, link) pairs with compiled row loops
_CANONICAL = {("binomial", "logit"), ("poisson", "log")}


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
    _aic: Any = field(default=None, repr=False, compare=False)
    #: every prior weight positive (the working weights' fast path)
    _all_weighted: bool = field(default=True, init=False, repr=False, compare=False)

    #: compiled row loops for a canonical link (None: the family's NumPy formulas)
    _kernels: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aic", self.family.aic_setup(self.y, self.wt, self.n))
        object.__setattr__(self, "_all_weighted", bool(np.all(self.wt > 0)))

    def compile(self) -> None:
        """Use compiled row loops where the family has them (binomial-logit, Poisson-log, all weights positive).

        PIRLS calls this when it uses the compiled weighted system (larger designs, or Numba loaded);
        the values are the family's formulas, to rounding.

        Examples
        --------
        >>> import hierbayes as hb
        >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
        ...              family="binomial")
        >>> r = glm_response(m.design, m.family)
        >>> mu = r.linkinv(m.design.X @ [-1.4, -1.0, -1.1, -1.6])
        >>> before = r.deviance(mu)
        >>> r.compile()
        >>> abs(r.deviance(mu) - before) < 1e-10 * before
        True
        """
        key = (self.family.r_name, self.family.link.name)
        if self._kernels is not None or key not in _CANONICAL or not self._all_weighted:
            return
        from hierbayes.glmm import _canonical_numba as K  # deferred: Numba's import (~0.5 s) for larger designs

        kernels = {
            ("binomial", "logit"): (K.logit_linkinv, K.logit_working, K.binomial_deviance, K.binomial_loglik),
            ("poisson", "log"): (K.log_linkinv, K.log_working, K.poisson_deviance, None),
        }[key]
        object.__setattr__(self, "_kernels", kernels)

    @property
    def binomial(self) -> bool:
        return self.family.binomial

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        if self._kernels is not None and eta.ndim == 1:
            return self._kernels[0](eta)
        return self.family.link.linkinv_r(eta)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        return self.family.link.mu_eta_r(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return self.family.variance(mu)

    def dev_resid(self, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``family$dev.resids``)."""
        return self.family.dev_resids(self.y, mu, self.wt)

    def deviance(self, mu: np.ndarray) -> float:
        """The sum of the deviance residuals."""
        if self._kernels is not None:
            return float(self._kernels[2](self.y, mu, self.wt))
        return float(self.dev_resid(mu).sum())

    def aic(self, mu: np.ndarray) -> float:
        """-2 sum of log-likelihood contributions (R's ``family$aic`` without the 2p)."""
        if self._kernels is not None and self._kernels[3] is not None:
            return -2.0 * float(self._kernels[3](mu, *self._aic))
        return -2.0 * float(np.sum(self.loglik_terms(mu)))

    def loglik_terms(self, mu: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood contributions, weighted as lme4's ``aic``."""
        return self.family.loglik_terms(mu, self.y, self.wt, self._aic)

    def mustart(self) -> np.ndarray:
        """Starting means (R's ``family$initialize``)."""
        return self.family.mustart(self.y, self.wt)

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Square-root working weights and working residuals ``(y - mu) / mu_eta`` at eta.

        A row of prior weight zero has working weight zero and working
        residual zero, whatever its mean (no 0/0 where its variance or
        ``mu_eta`` is zero, as with the identity link at mu = 0).
        """
        if self._kernels is not None:
            return self._kernels[1](eta, mu, self.y, self.wt)
        me = self.mu_eta(eta)
        var = self.variance(mu)
        with np.errstate(divide="ignore", invalid="ignore"):  # an overflowed mu gives NaN: PIRLS restarts
            if self._all_weighted:
                return me * np.sqrt(self.wt / var), (self.y - mu) / me
            used = self.wt > 0
            sqrtw = np.where(used, me * np.sqrt(self.wt / np.where(used, var, 1.0)), 0.0)
            wres = np.where(used, (self.y - mu) / np.where(used, me, 1.0), 0.0)
        return sqrtw, wres

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


def glm_response(design: Design, family: Family) -> GlmResponse:
    """The response of a design in lme4's internal form.

    ``cbind(s, f)`` gives the proportion ``s / (s + f)`` with weights ``s + f``
    (times any prior weights); a proportion with ``weights`` keeps those
    weights as trials; 0/1 data and counts have unit weights.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> r = glm_response(m.design, m.family)
    >>> float(r.y[0]), float(r.wt[0])
    (0.14285714285714285, 14.0)
    """
    if not family.ml:
        raise ModelError(
            f"maximum-likelihood GLMMs support the {', '.join(ML_FAMILIES)} families, not '{family.name}'; "
            "fit it with method='bayes'"
        )
    n_obs = design.n
    prior = np.ones(n_obs) if design.weights is None else np.asarray(design.weights, float)
    y = np.asarray(design.y, float)
    if family.binomial and design.trials is not None:
        trials = np.asarray(design.trials, float)
        prop = np.divide(y, trials, out=np.zeros_like(y), where=trials > 0)
        return GlmResponse(family, prop, prior * trials, trials, _offset(design))
    # counts, proportions with weights (the weights are the trials), or 0/1 data:
    # (R's binomial initialize sets n = 1 here; its aic then takes the weights as trials)
    return GlmResponse(family, y, prior, np.ones(n_obs), _offset(design))


def _offset(design: Design) -> np.ndarray:
    return np.zeros(design.n) if design.offset is None else np.asarray(design.offset, float)


#: the families glmer fits (maximum likelihood by Laplace or AGQ)
ML_FAMILIES = tuple(name for name, cls in FAMILIES.items() if cls.ml)
