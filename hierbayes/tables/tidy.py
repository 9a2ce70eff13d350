"""broom.mixed-style tables of a fit: ``tidy`` (one row per parameter) and ``augment`` (the data with fits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes.tables.fitinfo import is_bayes
from hierbayes.tables.params import parameter_table, ranef_table

if TYPE_CHECKING:
    from hierbayes._types import MixedFit  # a Protocol: the fits sit above this layer

TIDY_COLUMNS = ["effect", "group", "term", "estimate", "std.error", "statistic", "df", "p.value", "conf.low",
                "conf.high"]  # fmt: skip
EFFECTS = ("fixed", "ran_pars", "ran_vals")


def tidy(
    fit: MixedFit,
    effects: Sequence[str] = ("fixed", "ran_pars"),
    conf_level: float = 0.95,
    intervals: str | pd.DataFrame = "auto",
    ddf: str = "satterthwaite",
) -> pd.DataFrame:
    """One row per parameter, as ``broom.mixed::tidy``.

    Parameters
    ----------
    fit
        A REML/ML, GLMM or posterior fit.
    effects
        Any of ``"fixed"`` (fixed effects), ``"ran_pars"`` (SDs
        ``sd__<term>``, correlations ``cor__<term1>.<term2>``, and the
        residual SD ``sd__Observation`` in group ``Residual``) and
        ``"ran_vals"`` (each level's random effects, with a ``level`` column).
    conf_level
        Probability of ``conf.low``/``conf.high``.
    intervals
        REML/ML intervals, as in :func:`hierbayes.tables.compare`: ``"auto"`` (profile
        intervals, or bootstrap ones when the fit holds replicates), ``"wald"``,
        ``"profile"``, ``"boot"`` or a confint DataFrame.
    ddf
        Denominator df of a linear mixed model's t tests (``"satterthwaite"``,
        ``"kenward-roger"``, ``"residual"``); GLMMs have Wald z tests (df NaN).

    Returns
    -------
    pandas.DataFrame
        Columns effect, group, term, estimate, std.error, statistic, df,
        p.value, conf.low, conf.high (NaN where not defined: no tests for
        variance parameters nor for posteriors, whose estimate is the posterior
        mean and std.error the posterior SD; ``level`` added for ran_vals).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fit.tidy()[["effect", "group", "term"]].tail(2).values.tolist()
    [['ran_pars', 'Subject', 'cor__(Intercept).Days'], ['ran_pars', 'Residual', 'sd__Observation']]
    """
    unknown = [e for e in effects if e not in EFFECTS]
    if unknown:
        raise ValueError(f"effects must be among {', '.join(EFFECTS)}; got {unknown}")
    parts = []
    if "fixed" in effects or "ran_pars" in effects:
        t = parameter_table(fit, conf_level, intervals)
        t = t[t["effect"].isin(effects)].copy()
        for c in ("statistic", "df", "p.value"):
            t[c] = np.nan
        if "fixed" in effects and not is_bayes(fit):
            _add_tests(fit, t, ddf)
        parts.append(t[TIDY_COLUMNS])
    if "ran_vals" in effects:
        for b in fit.design.blocks:
            r = ranef_table(fit, b.group, conf_level)
            r.insert(0, "group", b.group)
            r.insert(0, "effect", "ran_vals")
            parts.append(r.assign(statistic=np.nan, df=np.nan, **{"p.value": np.nan}))
    out = pd.concat(parts, ignore_index=True)
    cols = TIDY_COLUMNS[:2] + (["level"] if "ran_vals" in effects else []) + TIDY_COLUMNS[2:]
    return out[cols]


def _add_tests(fit: MixedFit, t: pd.DataFrame, ddf: str) -> None:
    if not hasattr(fit, "coef_table"):
        return
    table = fit.coef_table(ddf) if fit.model.family.is_gaussian else fit.coef_table()  # t tests of an LMM
    stat = next(c for c in table.columns if c.endswith("value"))
    pval = next(c for c in table.columns if c.startswith("Pr("))
    fixed = t["effect"] == "fixed"
    names = t.loc[fixed, "term"]
    t.loc[fixed, "statistic"] = table.loc[names, stat].to_numpy()
    t.loc[fixed, "p.value"] = table.loc[names, pval].to_numpy()
    if "df" in table.columns:
        t.loc[fixed, "df"] = table.loc[names, "df"].to_numpy()


def augment(fit: MixedFit, data: pd.DataFrame | None = None, prob: float = 0.95) -> pd.DataFrame:
    """The model's rows with fitted values and residuals, as ``broom.mixed::augment``.

    Parameters
    ----------
    fit
        A REML/ML, GLMM or posterior fit.
    data
        The user's data frame: when given, the new columns are added to it,
        aligned by index (NaN on rows the model dropped). Default: the model
        frame (the used columns of the rows used, indexed as in the user's data).
    prob
        Probability of a posterior fit's predictive interval.

    Returns
    -------
    pandas.DataFrame
        Adds ``.fitted`` (conditional on the random effects, response scale),
        ``.resid`` (the fit's ``residuals``: response residuals for linear
        models, deviance residuals for a GLMM, as lme4), ``.fixed`` (the
        population-level linear predictor, random effects zero), and for a
        posterior ``.lower``/``.upper``: the equal-tailed posterior predictive
        interval of a new observation on that row (proportions for binomial data).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fit.augment().columns.tolist()
    ['Reaction', 'Days', 'Subject', '.fitted', '.resid', '.fixed']
    """
    design = fit.design
    index = pd.Index(design.frame.row_index)
    cols = {".fitted": np.asarray(fit.fitted, dtype=float), ".resid": np.asarray(fit.residuals, dtype=float)}
    kept = design.frame.kept
    if kept is not None and len(cols[".fitted"]) == len(kept) != design.n:  # na_action="exclude" pads with NaN
        cols = {k: v[kept] for k, v in cols.items()}
    if is_bayes(fit):
        cols[".fixed"] = np.asarray(fit.predict(re_form="~0", scale="link"), dtype=float)
        cols[".lower"], cols[".upper"] = _predictive_interval(fit, prob)
    else:
        cols[".fixed"] = np.asarray(fit.predict(re_form="~0"), dtype=float)
    if data is None:
        out = design.frame.data.copy()
        out.index = index
        for k, v in cols.items():
            out[k] = v
        return out
    out = pd.DataFrame(data).copy()
    for k, v in cols.items():
        out[k] = pd.Series(v, index=index).reindex(out.index)
    return out


def _predictive_interval(fit, prob: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), not {prob}")
    if "posterior_predictive" in fit.idata.children and "y" in fit.idata.posterior_predictive:
        draws = fit.idata.posterior_predictive["y"]
    else:
        draws = fit.predict(kind="predictive", random_seed=0)
    v = np.asarray(draws.values, dtype=float).reshape(-1, fit.nobs)
    lo, hi = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    trials = fit.design.trials
    if trials is not None:
        lo, hi = lo / trials, hi / trials
    return lo, hi
