"""Wald and profile-likelihood confidence intervals for GLMM fits (lme4's ``confint``).

Rows are named as lme4's with ``oldNames = TRUE``: ``.sig01``, ``.sig02``,
... (the SDs and correlations of the random effects, in theta's order), then
the fixed effects. Columns are ``lower`` and ``upper``.

Profile intervals solve ``zeta(x) = +-z_(1+level)/2`` for each parameter,
where ``zeta(x) = sign(x - x^) sqrt(D(x) - D(x^))`` and ``D(x)`` is the
deviance minimised over all other parameters with this one held at x (lme4
interpolates a spline through a grid of zeta values; the ends it
approximates are these roots). Variance parameters are profiled on lme4's
scale: SDs and correlations; an SD whose profile never reaches the lower
bound gets the lower limit 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

from hierbayes._threads import single_thread_blas
from hierbayes.errors import UnknownParameterError
from hierbayes.optim import bobyqa

if TYPE_CHECKING:
    from hierbayes._types import GlmerFit  # a Protocol: the fits sit above this layer


def wald_confint(fit: GlmerFit, level: float = 0.95) -> pd.DataFrame:
    """Wald intervals ``estimate +- z SE`` for the fixed effects; NaN for variance parameters (as lme4).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> wald_confint(fit).loc["period2"].round(3).tolist()
    [-1.593, -0.391]
    """
    z = stats.norm.ppf(0.5 + level / 2)
    se = np.sqrt(np.diag(fit.estimates.vcov))
    fe = fit.fixef
    sig = pd.DataFrame(np.nan, index=fit.sdcor.index, columns=["lower", "upper"])
    fixed = pd.DataFrame({"lower": fe - z * se, "upper": fe + z * se}, index=fe.index)
    return pd.concat([sig, fixed])


class _Profiler:
    """The deviance in lme4's profile parameters: SDs/correlations, then beta."""

    def __init__(self, fit: GlmerFit):
        self.fit = fit
        self.devfun = fit.devfun
        self.blocks = fit.design.blocks
        self.n_theta = fit.layout.size
        self.names = list(fit.sdcor.index) + list(fit.fixef.index)
        self.phi_hat = np.concatenate([fit.sdcor.to_numpy(), fit.estimates.beta])
        self.dev_min = float(self.devfun(fit.estimates.pars))
        kinds = []
        for b in self.blocks:
            kinds += ["sd" if r == c else "cor" for r, c in b.theta_index]
        self.kinds = kinds + ["beta"] * len(fit.fixef)
        self.lower = np.array([0.0 if k == "sd" else (-1.0 if k == "cor" else -np.inf) for k in self.kinds])
        self.upper = np.array([1.0 if k == "cor" else np.inf for k in self.kinds])

    def theta_of(self, phi: np.ndarray) -> np.ndarray:
        """SDs and correlations -> theta (the Cholesky factor of each block's covariance)."""
        out, start = [], 0
        for b in self.blocks:
            sdcor = phi[start : start + b.n_theta]
            start += b.n_theta
            k = b.k
            sd = np.zeros(k)
            corr = np.eye(k)
            for (r, c), v in zip(b.theta_index, sdcor, strict=True):
                if r == c:
                    sd[r] = v
                else:
                    corr[r, c] = corr[c, r] = v
            lam = _chol_psd(corr * np.outer(sd, sd))
            out += [lam[r, c] for r, c in b.theta_index]
        return np.array(out)

    def deviance(self, phi: np.ndarray) -> float:
        pars = np.concatenate([self.theta_of(phi[: self.n_theta]), phi[self.n_theta :]])
        return float(self.devfun(pars))

    def profile(self, j: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """Minimum deviance with parameter j held at value; returns it and the minimiser."""
        others = np.array([i for i in range(len(start)) if i != j])
        if len(others) == 0:
            phi = start.copy()
            phi[j] = value
            return self.deviance(phi), phi

        def sub(x: np.ndarray) -> float:
            phi = start.copy()
            phi[others] = np.minimum(x, self.upper[others])
            phi[j] = value
            return self.deviance(phi)

        x0 = np.clip(start[others], self.lower[others], self.upper[others])
        steps = np.maximum(0.05 * np.abs(x0), 0.02)
        opt = bobyqa(sub, x0, self.lower[others], steps, ftol_rel=1e-11, xtol_abs=1e-8)
        phi = start.copy()
        phi[others] = np.minimum(opt.final, self.upper[others])
        phi[j] = value
        return opt.fmin, phi


def _chol_psd(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where a variance is 0)."""
    k = S.shape[0]
    L = np.zeros((k, k))
    for c in range(k):
        d = S[c, c] - L[c, :c] @ L[c, :c]
        if d <= 1e-300:
            continue
        L[c, c] = np.sqrt(d)
        L[c + 1 :, c] = (S[c + 1 :, c] - L[c + 1 :, :c] @ L[c, :c]) / L[c, c]
    return L


def profile_confint(fit: GlmerFit, level: float = 0.95, parm: list[str] | None = None) -> pd.DataFrame:
    """Profile-likelihood intervals (lme4's ``confint(m, method = "profile")``).

    Parameters
    ----------
    fit
        A GLMM fit.
    level
        Confidence level.
    parm
        Parameter names to profile (all when None).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> profile_confint(fit, parm=[".sig01"]).round(3).loc[".sig01"].tolist()
    [0.346, 1.1]
    """
    with single_thread_blas():
        return _profile_confint(fit, level, parm)


def _profile_confint(fit: GlmerFit, level: float, parm: list[str] | None) -> pd.DataFrame:
    pr = _Profiler(fit)
    names = pr.names if parm is None else list(parm)
    unknown = [n for n in names if n not in pr.names]
    if unknown:
        raise UnknownParameterError(f"unknown parameter(s) {', '.join(unknown)}; the fit has {', '.join(pr.names)}")
    target = stats.norm.ppf(0.5 + level / 2)
    se = _rough_se(fit, pr)
    rows = {}
    for name in names:
        j = pr.names.index(name)
        rows[name] = [_end(pr, j, -1, target, se[j]), _end(pr, j, +1, target, se[j])]
    return pd.DataFrame(rows, index=["lower", "upper"]).T


def _rough_se(fit: GlmerFit, pr: _Profiler) -> np.ndarray:
    """Step sizes for bracketing: Wald SEs for beta, from the Hessian in theta for SDs."""
    se_beta = np.sqrt(np.diag(fit.estimates.vcov))
    H = fit.estimates.hessian
    se_theta = np.full(pr.n_theta, 0.2)
    if H is not None:
        try:
            se_theta = np.sqrt(np.abs(np.diag(2 * np.linalg.inv(H))[: pr.n_theta]))
        except np.linalg.LinAlgError:
            pass
    se_theta = np.where(np.isfinite(se_theta) & (se_theta > 0), se_theta, 0.2)
    return np.concatenate([se_theta, se_beta])


def _end(pr: _Profiler, j: int, side: int, target: float, se: float) -> float:
    """One end of the interval: the root of |zeta| = target on one side of the estimate."""
    hat = pr.phi_hat[j]
    lo, hi = pr.lower[j], pr.upper[j]
    state = {"start": pr.phi_hat.copy()}

    def zeta(v: float) -> float:
        dev, phi = pr.profile(j, v, state["start"])
        state["start"] = phi
        return np.sqrt(max(dev - pr.dev_min, 0.0)) - target

    step = max(se, 1e-3)
    inner = hat
    for _ in range(30):
        outer = hat + side * step
        if (side < 0 and outer <= lo) or (side > 0 and outer >= hi):
            bound = lo if side < 0 else hi
            if zeta(bound) < 0:
                return float(bound) if np.isfinite(bound) else np.nan
            outer = bound
        if zeta(outer) > 0:
            state["start"] = pr.phi_hat.copy()
            return float(optimize.brentq(zeta, inner, outer, xtol=1e-7))
        inner, step = outer, step * 1.6
    return np.nan
