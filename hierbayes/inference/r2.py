"""Nakagawa's R2 and intraclass correlations of an LMM, with bootstrap intervals.

Variance of the random effects (Johnson 2014): for each grouping factor the
mean over rows of ``z_i' Sigma_g z_i`` (``z_i`` the row's random-effects
covariates), which is the variance for a random intercept. Then

* marginal R2 = var_f / (var_f + var_r + sigma^2), conditional R2 =
  (var_f + var_r) / (var_f + var_r + sigma^2), with var_f the variance of
  ``X beta`` (n - 1 denominator, as R's ``var``);
* the ICC of factor g (Nakagawa's adjusted ICC) = var_g / (var_r + sigma^2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes.design import Design
from hierbayes.inference.bootstrap import check_boot_options, norm_inter
from hierbayes.inference.intervals import check_level

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer


def variance_components(design: Design, covs: list[np.ndarray]) -> dict[str, float]:
    """Per grouping factor, the mean over rows of ``z_i' Sigma_g z_i``."""
    return {
        b.group: float(np.mean(np.einsum("ij,jk,ik->i", b.Z, S, b.Z))) for b, S in zip(design.blocks, covs, strict=True)
    }


def icc_values(design: Design, covs: list[np.ndarray], sigma: float) -> pd.Series:
    comps = variance_components(design, covs)
    total = sum(comps.values()) + sigma**2
    return pd.Series({g: v / total for g, v in comps.items()}, name="icc")


def r2_nakagawa(fit: LmerFit) -> pd.Series:
    """Marginal and conditional R2 with their variance components.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> r2_nakagawa(fit)[["R2_marginal", "R2_conditional"]].round(3).tolist()
    [0.279, 0.799]
    """
    d = fit.design
    var_f = float(np.var(d.X @ fit.fixef.to_numpy(), ddof=1)) if d.n > 1 else 0.0
    var_r = sum(variance_components(d, list(fit.covariances.values())).values())
    var_e = fit.sigma**2
    total = var_f + var_r + var_e
    return pd.Series(
        {"R2_marginal": var_f / total, "R2_conditional": (var_f + var_r) / total, "var_fixed": var_f,
         "var_random": var_r, "var_residual": var_e},
        name="r2",
    )  # fmt: skip


def icc_interval(fit: LmerFit, level: float = 0.95, **boot_options) -> pd.DataFrame:
    """ICC per grouping factor with a bootstrap percentile interval (replicates kept on ``fit.boot``).

    Each replicate's ICC uses its theta and sigma with the original rows' random-effects
    covariates (for random intercepts, the only case where rows do not matter, this is exact
    also for a case bootstrap).
    """
    check_boot_options(boot_options, "icc(ci='boot')")
    check_level(level)
    result = fit.bootstrap(**boot_options)  # the fit keeps the replicates (fit.boot)
    layout, d = fit.layout, fit.design
    reps = [
        icc_values(d, layout.covariances(th, s), s) if np.isfinite(s) else None
        for th, s in zip(result.theta, result.sigma, strict=True)
    ]
    point = fit.icc()
    a = (1 - level) / 2
    cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
    out = pd.DataFrame(index=point.index, columns=["icc", *cols], dtype=float)
    out["icc"] = point
    for g in point.index:
        vals = np.array([r[g] for r in reps if r is not None])
        out.loc[g, cols] = norm_inter(vals, np.array([a, 1 - a]))
    return out
