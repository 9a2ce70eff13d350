"""``hb.compare``: the parameters of several fits of one model side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from hierbayes.tables.fitinfo import check_fits, fit_labels, is_bayes
from hierbayes.tables.params import parameter_table
from hierbayes.tables.table import Comparison

if TYPE_CHECKING:
    from hierbayes._types import MixedFit  # a Protocol: the fits sit above this layer

KEY = ["effect", "group", "term"]


def compare(
    *fits: MixedFit,
    prob: float = 0.95,
    intervals: str | pd.DataFrame | dict = "auto",
    labels: list[str] | None = None,
) -> Comparison:
    """Fixed effects, SDs, correlations and sigma of several fits, one row per parameter.

    Parameters
    ----------
    *fits
        REML/ML fits (``hb.lmer``), GLMM fits (``hb.glmer``) and posterior
        fits (``hb.bayes``) of the same model, in the column order wanted.
    prob
        Probability of every interval: confidence level for REML/ML fits,
        credible mass of the posterior's equal-tailed intervals.
    intervals
        How REML/ML intervals are made: ``"auto"`` (bootstrap percentile
        intervals when the fit holds replicates from ``fit.bootstrap()`` or
        ``fit.confint(method="boot")``; else profile intervals, lme4's default, for
        every parameter up to 20,000 observations (GLMMs: 250 random effects), the same default as the CLI report;
        else Wald for fixed effects and none for variance parameters), ``"wald"``, ``"profile"``,
        ``"boot"`` (computed now), a DataFrame in lme4's confint layout, or a
        dict from fit label to any of these.
    labels
        Column-group names; default the engine (``REML``, ``ML``, ``Bayes``).

    Returns
    -------
    Comparison
        ``.frame`` is the DataFrame: index (effect, group, term), columns a
        MultiIndex (fit label, statistic) with ``estimate``, ``std.error``,
        ``conf.low``, ``conf.high``, ``interval`` and, for posteriors,
        ``median``. The object prints as an aligned table and has
        ``to_markdown()`` and an HTML form for notebooks.

    Examples
    --------
    >>> import hierbayes as hb
    >>> data = hb.datasets.load("sleepstudy")
    >>> reml = hb.lmer("Reaction ~ Days + (Days | Subject)", data)
    >>> ml = hb.lmer("Reaction ~ Days + (Days | Subject)", data, reml=False)
    >>> table = hb.compare(reml, ml)
    >>> table.frame.loc[("fixed", "", "Days"), ("REML", "estimate")].round(3)
    np.float64(10.467)
    >>> print(table)  # doctest: +SKIP
    """
    fits = check_fits(fits, "compare")
    names = fit_labels(fits, labels)
    parts = []
    for fit, name in zip(fits, names, strict=True):
        spec = intervals.get(name, "auto") if isinstance(intervals, dict) else intervals
        t = parameter_table(fit, prob, spec).set_index(KEY)
        if not is_bayes(fit):
            t = t.drop(columns="median")
        t.columns = pd.MultiIndex.from_product([[name], t.columns], names=["fit", "statistic"])
        parts.append(t)
    frame = pd.concat(parts, axis=1, join="outer", sort=False)
    frame = frame.loc[_row_order(parts)]
    frame.attrs["prob"] = prob
    for name in names:
        col = frame[(name, "interval")]
        frame.loc[col.isna(), (name, "interval")] = "absent"
        if not is_bayes(fits[names.index(name)]):
            for c in ("estimate", "std.error", "conf.low", "conf.high"):
                frame[(name, c)] = frame[(name, c)].astype(float)
    return Comparison(frame, names, prob, [("bayes" if is_bayes(f) else f.method) for f in fits])


def _row_order(parts: list[pd.DataFrame]) -> pd.MultiIndex:
    """Fixed effects first, then each grouping factor's SDs and correlations, Residual last; first-seen order."""
    seen: list[tuple] = []
    for p in parts:
        seen += [k for k in p.index if k not in seen]
    rank = {"fixed": 0, "ran_pars": 1}
    order = sorted(range(len(seen)), key=lambda i: (rank.get(seen[i][0], 2), seen[i][1] == "Residual", i))
    return pd.MultiIndex.from_tuples([seen[i] for i in order], names=KEY)
