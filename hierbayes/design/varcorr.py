"""lme4's presentation of the random-effects covariances: ``VarCorr`` rows and the ``.sig01`` profile names.

Both are named by the design's blocks: groups as lme4 prints them (a second
bar on a factor is ``g.1``), terms as the model columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierbayes.design.random import ReBlock


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
