"""Adaptive Gauss-Hermite quadrature for a single scalar random effect (lme4's nAGQ > 1).

With one grouping factor and one random-effect term, the likelihood is a
product of one-dimensional integrals, one per level i. Each is centred at the
conditional mode u~_i and scaled by the conditional SD ``s_i = 1 / L_ii`` (L as
in the Laplace approximation), and evaluated on the nodes z_k and weights w_k
of the standard-normal Gauss-Hermite rule:

    devc_i(u) = sum_{j in i} d_j(y_j, mu_j(u)) + u^2
    m_i       = sum_k w_k exp(-(devc_i(u~_i + z_k s_i) - devc_i(u~_i)) / 2 + z_k^2 / 2)
    deviance  = sum_i devc_i(u~_i) + log|L|^2 - 2 sum_i log m_i

exactly as lme4's ``glmerAGQ``. Like lme4, the result is built from deviance
residuals, not from the family's full log-likelihood, so with binomial or
Poisson data it differs from the Laplace deviance by a constant (lme4 reports
it as -2 logLik all the same: AIC values of nAGQ = 1 and nAGQ > 1 fits are not
comparable). With one node the rule is the Laplace approximation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.polynomial.hermite import hermgauss

from hierbayes.errors import ModelError
from hierbayes.glmm.laplace import LaplaceDeviance
from hierbayes.glmm.pirls import Pirls, PirlsResult
from hierbayes.glmm.response import GlmResponse

if TYPE_CHECKING:
    from hierbayes.design import Design

MAX_NAGQ = 100


def gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss-Hermite rule for the standard normal density.

    Examples
    --------
    >>> z, w = gh_rule(3)
    >>> [round(float(v), 6) for v in z], [round(float(v), 6) for v in w]
    ([-1.732051, 0.0, 1.732051], [0.166667, 0.666667, 0.166667])
    """
    x, w = hermgauss(n)
    z = np.sqrt(2.0) * x
    z[np.abs(z) < 1e-13] = 0.0
    return z, w / np.sqrt(np.pi)


def check_agq(design: Design, nAGQ: int) -> None:
    """Raise a ModelError unless nAGQ > 1 is usable (one grouping factor, one scalar term)."""
    if not 0 <= nAGQ <= MAX_NAGQ:
        raise ModelError(f"nAGQ must be between 0 and {MAX_NAGQ}, not {nAGQ}")
    if nAGQ > 1 and (len(design.blocks) != 1 or design.blocks[0].k != 1):
        terms = ", ".join(f"{b.group}: {', '.join(b.terms)}" for b in design.blocks)
        raise ModelError(
            f"nAGQ > 1 is only available for models with a single, scalar random-effects term (lme4's rule); "
            f"this model has {terms}. Use nAGQ=1 (Laplace)"
        )


class AgqDeviance(LaplaceDeviance):
    """The adaptive Gauss-Hermite deviance as a function of ``c(theta, beta)``.

    Parameters
    ----------
    design, response
        The model's design (one grouping factor, one scalar term) and response.
    nAGQ
        Number of quadrature nodes (lme4 allows up to 25 in R; here up to 100).

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.glmm.response import glm_response
    >>> m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...              family="binomial")
    >>> f = AgqDeviance(m.design, glm_response(m.design, m.family), nAGQ=25)
    >>> round(f([0.64752, -1.399224, -0.991409, -1.12781, -1.579481]), 3)
    100.01
    """

    def __init__(self, design: Design, response: GlmResponse, nAGQ: int, pirls: Pirls | None = None):
        check_agq(design, nAGQ)
        super().__init__(design, response, pirls)
        self.nAGQ = nAGQ
        self.nodes, self.weights = gh_rule(nAGQ)
        # the non-zero nodes are evaluated together (nodes x rows); their (node, level) bins are fixed
        nz = self.nodes != 0.0
        self._zk, self._wk, self._w0 = self.nodes[nz], self.weights[nz], float(self.weights[~nz].sum())
        block = design.blocks[0]
        self._bins = (np.arange(len(self._zk))[:, None] * block.nlevels + block.codes[None, :]).ravel()
        self._half_z2 = 0.5 * (self._zk * self._zk)[:, None]

    def value(self, res: PirlsResult) -> float:
        """The AGQ deviance at converged modes."""
        r, block = self.response, self.design.blocks[0]
        lam = float(res.theta[0])
        codes, z = block.codes, block.Z[:, 0]
        nl = block.nlevels
        sqrtw, _ = r.working(res.eta, res.mu)
        L2 = lam * lam * np.bincount(codes, weights=(sqrtw * z) ** 2, minlength=nl) + 1.0
        sd = 1.0 / np.sqrt(L2)
        u_hat = res.u[0][:, 0]
        devc0 = np.bincount(codes, weights=r.dev_resid(res.mu), minlength=nl) + u_hat**2
        eta_base = res.eta - lam * z * u_hat[codes]
        mult = np.full(nl, self._w0)
        zk, wk = self._zk, self._wk
        if len(zk):  # all non-zero nodes at once: (nodes x rows)
            uk = u_hat[None, :] + zk[:, None] * sd[None, :]
            mu_k = r.linkinv(eta_base[None, :] + (lam * z)[None, :] * uk[:, codes])
            dev = np.bincount(self._bins, weights=r.dev_resid(mu_k).ravel(), minlength=len(zk) * nl)
            devc = dev.reshape(len(zk), nl) + uk**2
            mult += wk @ np.exp(-0.5 * (devc - devc0[None, :]) + self._half_z2)
        return float(devc0.sum() + np.log(L2).sum() - 2.0 * np.log(mult).sum())
