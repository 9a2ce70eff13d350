"""The gaussian likelihood with a residual structure, as a PyTensor expression (PyMC models only).

The residual covariance is ``sigma^2 G C G`` (:mod:`hierbayes.structures`).
With the random effects sampled, the residuals ``e = y - eta`` are sorted
once into the structure's order; then, row-wise (no n x n matrix):

* ``w = e / g`` (the variance function; ``g`` from a column, the strata, or
  the conditional fitted values ``eta`` for ``varPower()``/``varExp()``);
* AR(1)/CAR(1): ``z_t = (w_t - a_t w_{t-1}) / sqrt(1 - a_t^2)``,
  ``a_t = Phi^(lag_t)`` (the tridiagonal precision of AR(1), as a recursion);
  compound symmetry: ``z = (w - a_g mean_g(w)) / sqrt(1 - Rho)`` with group
  sums by an indexed increment;
* ``log p = -0.5 sum z^2 / sigma^2 - n log sigma - sum log g - 0.5 log|C| - n/2 log(2 pi)``.

The structure's parameters get nlme's names (``Phi``, ``Phi1``, ``Rho``,
``power``, ``expon``; varIdent's ratios are the vector ``ratio`` over the
non-reference strata) and uniform (correlations), log-normal(0, 1) (ratios)
or normal(0, 1) (power, exponent) priors.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hierbayes.errors import ModelError
from hierbayes.structures import ResidualStructure

_LOG2PI = float(np.log(2 * np.pi))
#: Name of the vector of varIdent ratios (dims: ``stratum``).
RATIO = "ratio"
STRATUM_DIM = "stratum"


def structure_variables(structure: ResidualStructure, pm_model) -> tuple[dict, list[str]]:
    """The structure's random variables (in ``pm_model``'s context) by kind, and their names."""
    out, names = {}, []
    c, v = structure.correlation, structure.variance
    if c is not None:
        if c.kind == "arma":
            raise ModelError(
                f"{c.spec!r} is not available in hb.bayes yet (its correlation is a Toeplitz matrix per group); "
                "corAR1, corCAR1 and corCompSymm are, and hb.lmer fits corARMA"
            )
        name = c.names[0]
        if c.kind == "ar1":
            out["cor"] = pm.Uniform(name, -1.0, 1.0)
        elif c.kind == "car1":
            out["cor"] = pm.Uniform(name, 0.0, 1.0)
        else:
            out["cor"] = pm.Uniform(name, -c._cs_a(), 1.0)
        names.append(name)
    if v is not None:
        if v.kind == "comb":
            raise ModelError("varComb is not available in hb.bayes; use one variance function")
        if v.kind == "ident":
            pm_model.add_coord(STRATUM_DIM, list(v.names))
            out["var"] = pm.LogNormal(RATIO, 0.0, 1.0, dims=STRATUM_DIM)
            names.append(RATIO)
        else:
            out["var"] = pm.Normal(v.names[0], 0.0, 1.0)
            names.append(v.names[0])
    return out, names


def structured_loglik(structure: ResidualStructure, y: np.ndarray, eta, sigma, params: dict,
                      weights: np.ndarray | None = None):  # fmt: skip
    """The log-likelihood of y given the conditional mean eta (PyTensor), sigma and the structure's variables.

    Prior weights (positive) scale row i's residual by ``sqrt(w_i)`` before the
    structure's whitening, as the REML/ML likelihood does
    (:mod:`hierbayes.reml.structured`): the residual covariance is
    ``sigma^2 W^{-1/2} G C G W^{-1/2}``.
    """
    o = structure.order
    e = pt.as_tensor_variable(np.asarray(y, float)[o]) - eta[o]
    n = len(o)
    logdet = pt.constant(0.0)
    if weights is not None:
        w = np.asarray(weights, float)
        if np.any(w <= 0):
            raise ModelError("prior weights of zero cannot be combined with a residual structure; drop those rows")
        half_log_w = 0.5 * np.log(w)[o]
        e = e * np.exp(half_log_w)
        logdet = logdet - 2.0 * float(half_log_w.sum())
    v = structure.variance
    if v is not None:
        if v.kind == "ident":
            lg = pt.log(pt.concatenate([pt.ones(1), params["var"]]))[v.codes]
        else:
            cov = eta[o] if v.covariate is None else pt.as_tensor_variable(v.covariate)
            lg = params["var"] * (pt.log(pt.abs(cov)) if v.kind == "power" else cov)
        e = e * pt.exp(-lg)
        logdet = logdet + 2.0 * pt.sum(lg)
    c = structure.correlation
    if c is not None:
        phi = params["cor"]
        if c.kind in ("ar1", "car1"):
            prev = c.prev.astype(bool)
            lag = pt.as_tensor_variable(c.lag)
            a = pt.switch(pt.as_tensor_variable(prev), phi**lag if np.any(c.lag != 1) else phi, 0.0)
            s2 = 1.0 - a**2
            e_prev = pt.concatenate([pt.zeros(1), e[:-1]])
            e = (e - a * e_prev) / pt.sqrt(s2)
            logdet = logdet + pt.sum(pt.log(s2))
        else:
            m = np.bincount(c.gcodes).astype(float)
            sums = pt.inc_subtensor(pt.zeros(len(m))[c.gcodes], e)
            ag = 1.0 - pt.sqrt((1 - phi) / (1 - phi + m * phi))
            e = (e - (ag * sums / m)[c.gcodes]) / pt.sqrt(1 - phi)
            logdet = logdet + pt.sum((m - 1) * pt.log(1 - phi) + pt.log(1 + (m - 1) * phi))
    return -0.5 * pt.sum(e**2) / sigma**2 - n * pt.log(sigma) - 0.5 * logdet - 0.5 * n * _LOG2PI
