"""F tests per model term (``anova()`` on an lmerTest fit).

For each term's contrast matrix L (:mod:`hierbayes.inference.contrasts`),
Satterthwaite's method (lmerTest's ``contestMD``) or Kenward-Roger's
(pbkrtest's ``KRmodcomp``) gives the F value and denominator df. As in
lmerTest, ``Mean Sq = F sigma^2`` and ``Sum Sq = NumDF x Mean Sq`` (with the
unscaled F for Kenward-Roger, whose ``F value`` is the scaled one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes.errors import ArgumentError
from hierbayes.inference import kenward_roger as kr
from hierbayes.inference import satterthwaite as satt
from hierbayes.inference.coef_table import ddf_method, derivatives, kr_adjustment
from hierbayes.inference.contrasts import contrasts_marginal, contrasts_type1, contrasts_type2, contrasts_type3

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


#: anova types under lmerTest's (and nlme's) spellings -> the contrasts they test.
TYPES = {"1": "1", "I": "1", "SEQUENTIAL": "1", "2": "2", "II": "2", "3": "3", "III": "3", "MARGINAL": "marginal"}
_CONTRASTS = {"1": contrasts_type1, "2": contrasts_type2, "3": contrasts_type3, "marginal": contrasts_marginal}


def anova_type(type: int | str) -> str:
    """lmerTest's name of an anova type ("1", "2", "3" or "marginal"), from any of its spellings.

    Accepts 1, 2, 3 (numbers or strings), "I", "II", "III" (lmerTest), "sequential" and
    "marginal" (nlme; lmerTest's marginal contrasts). Anything else is an ArgumentError.

    Examples
    --------
    >>> anova_type("III"), anova_type(2), anova_type("sequential")
    ('3', '2', '1')
    """
    key = str(int(type)) if isinstance(type, (int, np.integer)) and not isinstance(type, bool) else None
    if key is None and isinstance(type, str):
        key = type.strip().upper()
    if key not in TYPES:
        raise ArgumentError(
            f"anova type must be one of 1, 2, 3 (or 'I', 'II', 'III'), 'sequential' or 'marginal', not {type!r}"
        )
    return TYPES[key]


def term_contrasts(fit: LmerFit, type: int | str = 3) -> dict[str, np.ndarray]:
    """Contrast matrix of every fixed-effects term for a type I, II, III or marginal test."""
    return _CONTRASTS[anova_type(type)](fit.design)


def anova_table(fit: LmerFit, type: int | str = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
    """F tests of each model term, like ``anova(m, type=, ddf=)`` on an lmerTest fit.

    Parameters
    ----------
    fit
        A REML or ML fit.
    type
        3 (lmerTest's default), 2 or 1 (sequential), also spelled "III", "II", "I";
        "marginal" for lmerTest's (and nlme's) marginal tests.
    ddf
        ``"satterthwaite"`` or ``"kenward-roger"`` (REML fits).

    Returns
    -------
    pandas.DataFrame
        One row per term: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> round(float(anova_table(fit).loc["Days", "F value"]), 2)
    45.85
    """
    method = ddf_method(ddf)
    if method not in ("satterthwaite", "kenward-roger"):
        raise ArgumentError(f"anova tables use ddf='satterthwaite' or 'kenward-roger', not {ddf!r}")
    contrasts = term_contrasts(fit, type)
    beta, V, s2 = fit.fixef.to_numpy(), fit.vcov.to_numpy(), fit.sigma**2
    rows = {}
    for term, L in contrasts.items():
        if L.shape[0] == 0:
            rows[term] = [np.nan] * len(COLUMNS)
            continue
        if method == "satterthwaite":
            F, q, den = satt.f_test(L, beta, V, derivatives(fit))
            F_unscaled = F
        else:
            F_unscaled, F, q, den = kr.kr_f_test(L, beta, kr_adjustment(fit))
        ms = F_unscaled * s2
        rows[term] = [ms * q, ms, q, den, F, float(stats.f.sf(F, q, den))]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    table["NumDF"] = table["NumDF"].astype("Int64") if table["NumDF"].notna().all() else table["NumDF"]
    return table
