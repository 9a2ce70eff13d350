"""Fixed-effects tables with degrees of freedom and p-values (lmerTest's ``summary``).

``ddf`` chooses the reference distribution of ``Estimate / Std. Error``:

* ``"satterthwaite"`` (default, lmerTest's): t with Satterthwaite's df;
* ``"kenward-roger"`` (pbkrtest's): the SE from the adjusted covariance and
  t with Kenward-Roger's df (REML fits only);
* ``"containment"``: t with nlme's containment df (:mod:`.containment`; the
  default of fits with a residual structure, as nlme's ``lme``);
* ``"residual"``: t with ``n - p`` df;
* ``"wald"``: the standard normal (z value, ``Pr(>|z|)``), as glmer reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes.errors import ArgumentError
from hierbayes.inference import kenward_roger as kr
from hierbayes.inference import satterthwaite as satt
from hierbayes.inference.containment import containment_df

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

_DDF = {
    "satterthwaite": "satterthwaite", "kenward-roger": "kenward-roger", "kenward_roger": "kenward-roger",
    "kr": "kenward-roger", "residual": "residual", "wald": "wald", "z": "wald", "lme4": "wald",
    "containment": "containment", "nlme": "containment",
}  # fmt: skip


def ddf_method(ddf: str) -> str:
    """Normalise a ``ddf`` name (case-insensitive; ``"KR"``, ``"Kenward-Roger"``, ...)."""
    key = str(ddf).strip().lower()
    if key not in _DDF:
        raise ArgumentError(
            f"ddf must be 'satterthwaite', 'kenward-roger', 'containment', 'residual' or 'wald', not {ddf!r}"
        )
    return _DDF[key]


def cached(fit: Any, key: str, compute: Callable[[], Any]) -> Any:
    """Compute something about a fit once and keep it in the fit's ``cache``."""
    store = fit.cache
    if key not in store:
        store[key] = compute()
    return store[key]


def derivatives(fit: LmerFit) -> satt.VarparDerivatives:
    """The fit's Satterthwaite derivatives (computed once, warnings on first use)."""

    def compute():
        d = satt.varpar_derivatives(fit)
        satt.warn_messages(d)
        return d

    return cached(fit, "varpar_derivatives", compute)


def kr_adjustment(fit: LmerFit) -> kr.KRAdjustment:
    """The fit's Kenward-Roger adjustment (computed once)."""
    return cached(fit, "kr_adjustment", lambda: kr.vcov_adjusted(fit))


def coef_table(fit: LmerFit, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Estimate, Std. Error, df, t value and Pr(>|t|) for every fixed effect.

    Parameters
    ----------
    fit
        A REML or ML fit.
    ddf
        ``"satterthwaite"``, ``"kenward-roger"``, ``"residual"`` or ``"wald"``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ 1 + Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> coef_table(fit).loc["(Intercept)", ["Std. Error", "df"]].round(4).tolist()
    [9.7467, 22.8102]
    """
    method = ddf_method(ddf)
    beta = fit.fixef
    names = list(beta.index)
    b = beta.to_numpy()
    V = fit.vcov.to_numpy()
    p = len(b)
    if method == "wald":
        se = np.sqrt(np.diag(V))
        z = b / se
        return pd.DataFrame(
            {"Estimate": b, "Std. Error": se, "z value": z, "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))}, index=names
        )
    if method == "residual":
        se = np.sqrt(np.diag(V))
        df = np.full(p, float(fit.nobs - p))
    elif method == "containment":
        se = np.sqrt(np.diag(V))
        df = containment_df(fit.design)
    elif method == "satterthwaite":
        d = derivatives(fit)
        se = np.sqrt(np.diag(V))
        df = np.array([satt.contrast_df(np.eye(p)[i], V, d) for i in range(p)])
    else:
        adj = kr_adjustment(fit)
        se = np.sqrt(np.diag(adj.vcov_adjusted))
        df = np.array([kr.kr_ddf(np.eye(p)[i : i + 1], adj)[0] for i in range(p)])
    t = b / se
    return pd.DataFrame(
        {"Estimate": b, "Std. Error": se, "df": df, "t value": t, "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df)},
        index=names,
    )
