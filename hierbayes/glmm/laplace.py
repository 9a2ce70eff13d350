"""The Laplace approximation to a GLMM's deviance (lme4's nAGQ = 1 and nAGQ = 0).

At the conditional modes u~ (found by PIRLS), with L the Cholesky factor of
``Lambda' Z' W Z Lambda + I`` at the working weights W,

    -2 log L(theta, beta) ~ log|L|^2 + ||u~||^2 - 2 sum_i log p(y_i | u~),

which is lme4's ``glmResp::Laplace(ldL2, ldRX2, sqrL) = ldL2 + sqrL + aic``
(the family's ``aic`` is -2 times the conditional log-likelihood).

``LaplaceDeviance`` is lme4's ``devfun`` of the second stage: a function of
``c(theta, beta)``. ``ThetaDeviance`` is the first stage's (nAGQ = 0):
a function of theta alone, with beta estimated by PIRLS together with u.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse

if TYPE_CHECKING:
    from hierbayes.design import Design


def laplace_value(res: PirlsResult, response: GlmResponse) -> float:
    """``ldL2 + ||u||^2 + aic(mu)`` at a PIRLS result."""
    return res.ldL2 + res.sqr_u + response.aic(res.mu)


class ThetaDeviance:
    """The nAGQ = 0 deviance: a function of theta, beta optimised inside PIRLS.

    Parameters
    ----------
    design, response
        The model's design and its response in lme4's form.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.glmm.response import glm_response
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> f = ThetaDeviance(m.design, glm_response(m.design, m.family))
    >>> round(float(f([0.64])), 3)
    184.109
    """

    def __init__(self, design: Design, response: GlmResponse, pirls: Pirls | None = None):
        self.design = design
        self.response = response
        self.pirls = pirls or Pirls(design, response)
        self.last: PirlsResult | None = None

    def __call__(self, theta) -> float:
        try:
            res = self.pirls.run(np.asarray(theta, float), None)
        except FloatingPointError:
            return np.inf
        self.last = res
        return laplace_value(res, self.response)


class LaplaceDeviance:
    """The Laplace deviance as a function of ``pars = c(theta, beta)`` (lme4's nAGQ = 1 devfun).

    Parameters
    ----------
    design, response
        The model's design and its response in lme4's form.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.glmm.response import glm_response
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> f = LaplaceDeviance(m.design, glm_response(m.design, m.family))
    >>> round(float(f([0.642070, -1.398343, -0.991925, -1.128216, -1.579745])), 4)
    184.0526
    """

    def __init__(self, design: Design, response: GlmResponse, pirls: Pirls | None = None):
        self.design = design
        self.response = response
        self.pirls = pirls or Pirls(design, response)
        self.n_theta = self.pirls.layout.size
        self.last: PirlsResult | None = None

    def split(self, pars) -> tuple[np.ndarray, np.ndarray]:
        pars = np.asarray(pars, float)
        return pars[: self.n_theta], pars[self.n_theta :]

    def modes(self, pars) -> PirlsResult:
        """PIRLS at ``c(theta, beta)``."""
        theta, beta = self.split(pars)
        res = self.pirls.run(theta, beta)
        self.last = res
        return res

    def __call__(self, pars) -> float:
        try:
            res = self.modes(pars)
        except FloatingPointError:
            return np.inf
        return self.value(res)

    def value(self, res: PirlsResult) -> float:
        """The deviance at converged modes (the Laplace approximation; AGQ overrides it)."""
        return laplace_value(res, self.response)
