"""The covariance parameters theta: layout, bounds, and conversion to variances.

theta is the concatenation of every block's free entries of its relative
covariance factor lambda (lme4's ``getME(m, "theta")``); the random effects
of a block have covariance ``sigma^2 * lambda @ lambda.T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from hierbayes.design import ReBlock


@dataclass(frozen=True)
class ThetaLayout:
    """Where each block's parameters sit in theta."""

    blocks: tuple[ReBlock, ...]

    @cached_property
    def slices(self) -> list[slice]:
        out, start = [], 0
        for b in self.blocks:
            out.append(slice(start, start + b.n_theta))
            start += b.n_theta
        return out

    @property
    def size(self) -> int:
        return sum(b.n_theta for b in self.blocks)

    @property
    def lower(self) -> np.ndarray:
        return np.concatenate([b.theta_lower for b in self.blocks])

    @property
    def start(self) -> np.ndarray:
        return np.concatenate([b.theta_start for b in self.blocks])

    @property
    def names(self) -> list[str]:
        return [n for b in self.blocks for n in b.theta_names]

    @cached_property
    def _flat_index(self) -> list[tuple[int, np.ndarray, slice]]:
        return [
            (b.k, np.array([r * b.k + c for r, c in b.theta_index], dtype=np.intp), s)
            for b, s in zip(self.blocks, self.slices, strict=True)
        ]

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """The k x k factor of every block."""
        out = []
        for k, idx, s in self._flat_index:
            lam = np.zeros(k * k)
            lam[idx] = theta[s]
            out.append(lam.reshape(k, k))
        return out

    def covariances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Covariance matrix of every block's random effects: sigma^2 lambda lambda'."""
        return [sigma**2 * lam @ lam.T for lam in self.lambdas(theta)]


def varcorr_frame(blocks: tuple[ReBlock, ...], covs: list[np.ndarray], sigma: float | None) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(m))``: grp, var1, var2, vcov, sdcor.

    Variance rows come first within each bar, then its covariances, in R's
    order; the residual row last (``grp == "Residual"``) when sigma is given.
    """
    rows = []
    for b, cov in zip(blocks, covs, strict=True):
        for cols in b.bars:
            grp = b.bar_name(cols[0])
            for c in cols:
                rows.append((grp, b.terms[c], None, cov[c, c], np.sqrt(max(cov[c, c], 0.0))))
            for j, cj in enumerate(cols):
                for ci in cols[j + 1 :]:
                    denom = np.sqrt(cov[ci, ci] * cov[cj, cj])
                    corr = cov[ci, cj] / denom if denom > 0 else np.nan
                    rows.append((grp, b.terms[cj], b.terms[ci], cov[ci, cj], corr))
    if sigma is not None:
        rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def sdcor_parameters(blocks: tuple[ReBlock, ...], covs: list[np.ndarray], sigma: float | None) -> pd.Series:
    """SDs and correlations in lme4's profile order and names (``.sig01``, ..., ``.sigma``).

    The order follows theta: within a bar, column by column of the lower
    triangle, so ``(Days | Subject)`` gives .sig01 = SD of the intercept,
    .sig02 = their correlation, .sig03 = SD of Days.
    """
    values = []
    for b, cov in zip(blocks, covs, strict=True):
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        for r, c in b.theta_index:
            if r == c:
                values.append(sd[r])
            else:
                values.append(cov[r, c] / (sd[r] * sd[c]) if sd[r] * sd[c] > 0 else np.nan)
    names = [f".sig{i + 1:02d}" for i in range(len(values))]
    if sigma is not None:
        values.append(sigma)
        names.append(".sigma")
    return pd.Series(values, index=names, dtype=float)
