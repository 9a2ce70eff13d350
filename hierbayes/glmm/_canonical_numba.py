"""Compiled row loops of :class:`hierbayes.glmm.response.GlmResponse` for the canonical links (Numba).

The binomial family with the logit link and the Poisson family with the log
link, with R's clamps (``make.link``: the mean and its derivative at least
``eps``, the binomial mean at most ``1 - eps``) and R's deviance residuals:
one pass over the rows where NumPy makes several. Imported on first use,
cached on disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np

EPS = np.finfo(np.float64).eps


@numba.njit(cache=True, nogil=True)
def _ylogy(y, mu):  # pragma: no cover - compiled
    return y * math.log(y / mu) if y != 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _clamp(v, lo, hi):  # pragma: no cover - compiled
    """v within [lo, hi]; NaN stays NaN (as NumPy's clip)."""
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@numba.njit(cache=True, nogil=True)
def _exp_r(e):  # pragma: no cover - compiled
    """R's log-link inverse: exp(e) at least eps, inf beyond the overflow, NaN for NaN."""
    if e > 709.0:
        return np.inf
    return _clamp(math.exp(e), EPS, np.inf)


@numba.njit(cache=True, nogil=True)
def logit_linkinv(eta):  # pragma: no cover - compiled
    out = np.empty_like(eta)
    for i in range(len(eta)):
        out[i] = _clamp(1.0 / (1.0 + math.exp(-eta[i])), EPS, 1.0 - EPS)
    return out


@numba.njit(cache=True, nogil=True)
def logit_working(eta, mu, y, wt):  # pragma: no cover - compiled
    n = len(eta)
    sqrtw = np.empty(n)
    wres = np.empty(n)
    for i in range(n):
        p = 1.0 / (1.0 + math.exp(-eta[i]))
        me = _clamp(p * (1.0 - p), EPS, np.inf)
        m = mu[i]
        sqrtw[i] = me * math.sqrt(wt[i] / (m * (1.0 - m)))
        wres[i] = (y[i] - m) / me
    return sqrtw, wres


@numba.njit(cache=True, nogil=True)
def binomial_deviance(y, mu, wt):  # pragma: no cover - compiled
    acc = 0.0
    for i in range(len(y)):
        acc += 2.0 * wt[i] * (_ylogy(y[i], mu[i]) + _ylogy(1.0 - y[i], 1.0 - mu[i]))
    return acc


@numba.njit(cache=True, nogil=True)
def log_linkinv(eta):  # pragma: no cover - compiled
    out = np.empty_like(eta)
    for i in range(len(eta)):
        out[i] = _exp_r(eta[i])
    return out


@numba.njit(cache=True, nogil=True)
def log_working(eta, mu, y, wt):  # pragma: no cover - compiled
    n = len(eta)
    sqrtw = np.empty(n)
    wres = np.empty(n)
    for i in range(n):
        me = _exp_r(eta[i])
        m = mu[i]
        sqrtw[i] = me * math.sqrt(wt[i] / m)
        wres[i] = (y[i] - m) / me
    return sqrtw, wres


@numba.njit(cache=True, nogil=True)
def poisson_deviance(y, mu, wt):  # pragma: no cover - compiled
    acc = 0.0
    for i in range(len(y)):
        acc += 2.0 * wt[i] * (_ylogy(y[i], mu[i]) - (y[i] - mu[i]))
    return acc


@numba.njit(cache=True, nogil=True)
def _xlogy(x, y):  # pragma: no cover - compiled
    return x * math.log(y) if x != 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def binomial_loglik(mu, m, yy, scale, const):  # pragma: no cover - compiled
    """The sum of the binomial family's weighted log-likelihood terms (families.Binomial.loglik_terms)."""
    acc = 0.0
    for i in range(len(mu)):
        acc += scale[i] * (const[i] + _xlogy(yy[i], mu[i]) + _xlogy(m[i] - yy[i], 1.0 - mu[i]))
    return acc
