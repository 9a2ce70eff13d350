"""One long table of a fit's parameters with intervals, whatever the engine.

This is the common currency of :func:`hierbayes.tables`, :func:`tidy` and
the forest and caterpillar plots. Rows follow broom.mixed's naming:

* ``effect="fixed"``: one row per fixed effect, ``group=""``;
* ``effect="ran_pars"``: ``sd__<term>`` and ``cor__<term1>.<term2>`` per
  grouping factor (``group`` as lme4's VarCorr prints it: ``Subject``, or
  ``Subject.1`` for a second bar of the same factor), and ``sd__Observation``
  with ``group="Residual"`` for sigma.

Columns: ``estimate`` (REML/ML estimate or posterior mean), ``median``
(posterior only), ``std.error`` (REML/ML: fixed effects only; posterior SD),
``conf.low``/``conf.high`` and ``interval`` (how the interval was made:
``"Wald"``, ``"profile"``, ``"boot"``, ``"ETI"`` for a posterior's
equal-tailed credible interval, or ``"none"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._warnings import warn
from hierbayes.errors import HierbayesError, HierbayesWarning, ModelError
from hierbayes.tables.fitinfo import is_bayes

if TYPE_CHECKING:
    from hierbayes._types import MixedFit  # a Protocol: the fits sit above this layer

COLUMNS = ["effect", "group", "term", "estimate", "median", "std.error", "conf.low", "conf.high", "interval"]
INTERVALS = ("auto", "wald", "profile", "boot")
#: ``intervals="auto"`` profiles REML/ML and GLMM fits up to this many observations and uses Wald intervals
#: beyond (fixed effects only); the one rule for hb.compare, hb.tidy, the forest plot and the CLI report.
PROFILE_MAX_NOBS = 20_000
#: ... and GLMMs with up to this many random effects (levels x terms): each profile point of a GLMM is a
#: Laplace refit, so beyond this a profile takes minutes (grouseticks with one effect per chick, 584: 78 s)
PROFILE_MAX_GLMM_RANEF = 250


def ran_pars_keys(fit: MixedFit) -> list[tuple[str, str, int, int | None]]:
    """(group, term, i, j) of every SD (j None) and correlation in varcorr order; Residual last (i = -1)."""
    out = []
    for b in fit.design.blocks:
        for cols in b.bars:
            grp = b.bar_name(cols[0])
            out += [(grp, f"sd__{b.terms[c]}", c, None) for c in cols]
            for j, cj in enumerate(cols):
                out += [(grp, f"cor__{b.terms[cj]}.{b.terms[ci]}", cj, ci) for ci in cols[j + 1 :]]
    if fit.sigma is not None:
        out.append(("Residual", "sd__Observation", -1, None))
    return out


def sdcor_names(fit: MixedFit) -> dict[tuple[str, str], str]:
    """(group, term) -> lme4's confint row name (``.sig01``, ..., ``.sigma``), in theta order."""
    names, n = {}, 0
    for b in fit.design.blocks:
        for r, c in b.theta_index:
            n += 1
            grp = b.bar_name(c)
            term = f"sd__{b.terms[r]}" if r == c else f"cor__{b.terms[c]}.{b.terms[r]}"
            names[(grp, term)] = f".sig{n:02d}"
    if fit.sigma is not None:
        names[("Residual", "sd__Observation")] = ".sigma"
    return names


def parameter_table(fit: MixedFit, prob: float = 0.95, intervals: str | pd.DataFrame = "auto") -> pd.DataFrame:
    """Every fixed effect, SD, correlation and sigma of a fit, with an interval.

    Parameters
    ----------
    fit
        A REML/ML, GLMM or posterior fit.
    prob
        Probability of the intervals (confidence level or credible mass).
    intervals
        For REML/ML fits: ``"auto"`` (bootstrap percentile intervals when the
        fit holds bootstrap replicates, ``fit.boot``; else profile intervals, lme4's default
        ``confint``, for every parameter, up to :data:`PROFILE_MAX_NOBS` observations; else Wald
        for fixed effects and none for variance parameters), ``"wald"``, ``"profile"`` or ``"boot"``
        (computed now with ``fit.confint``), or a DataFrame in lme4's
        ``confint`` layout (rows ``.sig01``, ..., ``.sigma`` and fixed-effect
        names; the first two columns are the ends). Ignored for posteriors.

    Returns
    -------
    pandas.DataFrame
        Columns as in the module docstring, one row per parameter.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> parameter_table(fit)["term"].tolist()
    ['(Intercept)', 'Days', 'sd__(Intercept)', 'sd__Days', 'cor__(Intercept).Days', 'sd__Observation']
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), not {prob}")
    table = _bayes_table(fit, prob) if is_bayes(fit) else _frequentist_table(fit, prob, intervals)
    return table[COLUMNS]


# --- REML / ML / GLMM --------------------------------------------------------------------------
def _frequentist_table(fit: MixedFit, prob: float, intervals) -> pd.DataFrame:
    ci, method = _confint(fit, prob, intervals)
    fe = fit.fixef
    se = np.sqrt(np.diag(fit.vcov.to_numpy()))
    z = stats.norm.ppf(0.5 + prob / 2)
    rows = []
    for name, est, s in zip(fe.index, fe.to_numpy(), se, strict=True):
        if ci is not None and name in ci.index and method != "Wald":
            lo, hi, how = ci.loc[name, "lower"], ci.loc[name, "upper"], method
        else:
            lo, hi, how = est - z * s, est + z * s, "Wald"
        rows.append(("fixed", "", name, est, np.nan, s, lo, hi, how))
    vc = fit.varcorr
    values = _varcorr_values(fit, vc)
    names = sdcor_names(fit)
    for grp, term, *_ in ran_pars_keys(fit):
        est = values[(grp, term)]
        row = names.get((grp, term))
        if ci is not None and row in ci.index and method != "Wald":
            lo, hi, how = ci.loc[row, "lower"], ci.loc[row, "upper"], method
        else:
            lo, hi, how = np.nan, np.nan, "none"
        rows.append(("ran_pars", grp, term, est, np.nan, np.nan, lo, hi, how))
    return pd.DataFrame(rows, columns=COLUMNS)


def _varcorr_values(fit: MixedFit, vc: pd.DataFrame) -> dict[tuple[str, str], float]:
    out = {}
    for grp, v1, v2, sdcor in zip(vc["grp"], vc["var1"], vc["var2"], vc["sdcor"], strict=True):
        if grp == "Residual":
            out[("Residual", "sd__Observation")] = float(sdcor)
        elif v2 is None or (isinstance(v2, float) and np.isnan(v2)):
            out[(grp, f"sd__{v1}")] = float(sdcor)
        else:
            out[(grp, f"cor__{v1}.{v2}")] = float(sdcor)
    return out


def _confint(fit: MixedFit, prob: float, intervals) -> tuple[pd.DataFrame | None, str]:
    """Intervals in lme4's confint layout, renamed to lower/upper, and how they were made."""
    if isinstance(intervals, pd.DataFrame):
        return _as_lower_upper(intervals), str(intervals.attrs.get("method", "user"))
    if intervals not in INTERVALS:
        raise ValueError(f"intervals must be one of {', '.join(INTERVALS)} or a confint DataFrame, not {intervals!r}")
    if intervals == "auto":
        cached = _cached_confint(fit, prob)
        if cached is not None:
            return cached
        ci, how = default_intervals(fit, prob)
        return (None if ci is None else _as_lower_upper(ci)), how
    if intervals == "wald":
        return None, "Wald"
    if not hasattr(fit, "confint"):
        raise ModelError(f"{type(fit).__name__} has no confint(); cannot make {intervals} intervals")
    return _as_lower_upper(fit.confint(method=intervals, level=prob, progressbar=False)), intervals


def default_intervals(fit: MixedFit, prob: float = 0.95) -> tuple[pd.DataFrame | None, str]:
    """The default intervals of a REML/ML or GLMM fit: profile intervals up to :data:`PROFILE_MAX_NOBS` rows
    (and, for a GLMM, :data:`PROFILE_MAX_GLMM_RANEF` random effects).

    Returns ``(confint DataFrame in lme4's layout, "profile")``, or ``(None, "Wald")`` for
    larger data, fits without ``confint`` and profiles that fail (with the reason as a
    warning). A fit's profile intervals are computed once per level and kept in the fit's
    ``cache`` (``"profile_confint"``, by level), so a table, a forest plot and a report of the
    same fit share one profile.
    """
    if not hasattr(fit, "confint") or fit.nobs > PROFILE_MAX_NOBS:
        return None, "Wald"
    if hasattr(fit, "nAGQ") and sum(b.nlevels * b.k for b in fit.design.blocks) > PROFILE_MAX_GLMM_RANEF:
        return None, "Wald"
    by_level = fit.cache.setdefault("profile_confint", {})
    if prob not in by_level:
        try:
            by_level[prob] = fit.confint(method="profile", level=prob, progressbar=False)  # a table: no bar
        except (HierbayesError, FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
            warn(f"profile intervals failed ({exc}); Wald intervals for the fixed effects instead", HierbayesWarning)
            by_level[prob] = None
    ci = by_level[prob]
    return (None, "Wald") if ci is None else (ci.copy(), "profile")


def _cached_confint(fit: MixedFit, prob: float) -> tuple[pd.DataFrame, str] | None:
    """Bootstrap intervals from replicates the fit already holds (``fit.boot``, kept by ``bootstrap``/``confint``)."""
    boot = getattr(fit, "boot", None)
    if boot is None or not hasattr(boot, "confint"):
        return None
    return _as_lower_upper(boot.confint(prob)), "boot"


def _as_lower_upper(ci: pd.DataFrame) -> pd.DataFrame:
    if ci.shape[1] < 2:
        raise ValueError("a confint DataFrame needs two columns (lower and upper ends)")
    return pd.DataFrame({"lower": ci.iloc[:, 0].astype(float), "upper": ci.iloc[:, 1].astype(float)}, index=ci.index)


# --- posterior ----------------------------------------------------------------------------------
def _bayes_table(fit, prob: float) -> pd.DataFrame:
    rows = []
    thresholds = getattr(fit, "thresholds", None)
    if thresholds is not None:  # an ordinal model's thresholds first, named as ordinal::clmm names them
        for j, name in enumerate(thresholds.index):
            rows.append(("fixed", "", name, *_summarise(fit.posterior["threshold"].isel(threshold_dim=j), prob)))
    for name in fit.design.x_names:
        rows.append(("fixed", "", name, *_summarise(fit.fixef_draws().sel(fixef=name), prob)))
    sds = {b.group: fit.sd_draws(b.group) for b in fit.design.blocks}
    corrs = {b.group: fit.corr_draws(b.group) for b in fit.design.blocks if any(len(c) > 1 for c in b.bars)}
    owner = {b.bar_name(c): b.group for b in fit.design.blocks for c in range(b.k)}
    for grp, term, i, j in ran_pars_keys(fit):
        if i == -1:
            draws = fit.sigma_draws()
        elif j is None:
            draws = sds[owner[grp]].isel(term=i)
        else:
            draws = corrs[owner[grp]].isel(term=j, term2=i)
        rows.append(("ran_pars", grp, term, *_summarise(draws, prob)))
    rows += _aux_rows(fit, prob)
    return pd.DataFrame(rows, columns=COLUMNS)


def _aux_rows(fit, prob: float) -> list[tuple]:
    """A distributional model's auxiliary predictors (link scale): fixed ``sigma_x``; SDs of group ``g (sigma)``."""
    rows = []
    for par in getattr(fit, "aux_formulas", {}):
        draws = fit.aux_fixef_draws(par)
        rows += [("fixed", "", f"{par}_{x}", *_summarise(draws.sel(fixef=x), prob)) for x in draws.fixef.values]
        for var in fit.posterior.data_vars:
            if var.startswith(f"{par}__sd__"):
                sd = fit.posterior[var]
                grp = f"{var[len(par) + 6 :]} ({par})"
                rows += [("ran_pars", grp, f"sd__{t}", *_summarise(sd.isel({sd.dims[-1]: j}), prob))
                         for j, t in enumerate(sd[sd.dims[-1]].values)]  # fmt: skip
    return rows


def _summarise(draws, prob: float) -> tuple[float, float, float, float, float, str]:
    v = np.asarray(draws.values, dtype=float).ravel()
    lo, hi = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
    return float(v.mean()), float(np.median(v)), float(v.std()), float(lo), float(hi), "ETI"


# --- random effects -------------------------------------------------------------------------------
def ranef_table(fit: MixedFit, group: str, prob: float = 0.95) -> pd.DataFrame:
    """Random effects of one grouping factor with intervals, long: level, term, estimate, std.error, conf.low/high.

    REML/ML/GLMM: conditional modes +- z * conditional SD (lme4's ``condVar``);
    posterior: posterior mean, SD and equal-tailed credible interval.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> ranef_table(fit, "Subject").shape
    (36, 6)
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), not {prob}")
    groups = [b.group for b in fit.design.blocks]
    if group not in groups:
        raise ModelError(f"the model has no grouping factor '{group}' (it has {', '.join(groups)})")
    if is_bayes(fit):
        t = fit.ranef_interval(group, prob)
        out = pd.DataFrame(
            {"level": t.index.get_level_values("level").astype(str), "term": t.index.get_level_values("term"),
             "estimate": t["mean"].to_numpy(), "std.error": t["sd"].to_numpy(), "conf.low": t["lower"].to_numpy(),
             "conf.high": t["upper"].to_numpy()}
        )  # fmt: skip
        return out.reset_index(drop=True)
    re = fit.ranef[group]
    sd = np.sqrt(fit.ranef_condvar[group].loc[re.index, re.columns])
    z = stats.norm.ppf(0.5 + prob / 2)
    est = re.stack()
    se = sd.stack()
    return pd.DataFrame(
        {"level": est.index.get_level_values(0).astype(str), "term": est.index.get_level_values(1),
         "estimate": est.to_numpy(), "std.error": se.to_numpy(), "conf.low": (est - z * se).to_numpy(),
         "conf.high": (est + z * se).to_numpy()}
    )  # fmt: skip
