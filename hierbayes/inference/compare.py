"""Likelihood-ratio tests between fitted models (lme4's ``anova(m1, m2, ...)``).

Works on any fit that follows a small protocol, so REML/ML fits and GLMM fits
mix: ``loglik``, ``npar``, ``nobs``, ``method`` (``"reml"`` or ``"ml"``),
``formula``, ``aic``, ``bic`` and ``refit_ml()`` (an ML fit of the same model;
an ML fit returns itself). The table has lme4's columns: npar, AIC, BIC,
logLik, deviance (``-2 logLik``), Chisq, Df, Pr(>Chisq), with the models
sorted by number of parameters. Rows are named as lme4 names them, by the models' names:
the user's (``hb.anova(null=m0, full=m1)`` or ``names=[...]``), else ``m0``, ``m1``, ... in
the order given; the formulas are printed above the table, not used as row names.
"""

from __future__ import annotations

import html
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._warnings import warn
from hierbayes.errors import ArgumentError, DataError, HierbayesWarning, ModelError

COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


class LikelihoodFit(Protocol):
    """What :func:`anova` needs from a fit."""

    method: str
    formula: str

    @property
    def loglik(self) -> float: ...

    @property
    def npar(self) -> int: ...

    @property
    def nobs(self) -> int: ...

    def refit_ml(self) -> LikelihoodFit: ...


class RefitWarning(HierbayesWarning):
    """REML fits were refitted by ML before a likelihood-ratio test (lme4's message)."""


def _check(fits: list[Any]) -> None:
    for i, f in enumerate(fits):
        method = getattr(f, "method", None)
        if method == "bayes":
            raise ModelError(
                f"model {i + 1} is a Bayesian fit: likelihood-ratio tests need REML/ML fits; compare Bayesian "
                "fits by leave-one-out cross-validation (arviz.loo / arviz.compare on fit.idata)"
            )
        if method not in ("reml", "ml") or not hasattr(f, "loglik"):
            raise ModelError(f"model {i + 1} ({type(f).__name__}) is not a REML/ML fit with a log-likelihood")
    nobs = [f.nobs for f in fits]
    if len(set(nobs)) > 1:
        raise DataError(
            f"models were not all fitted to the same number of observations ({', '.join(map(str, nobs))}); "
            "drop rows with missing values in any model's variables before fitting"
        )
    ys = [getattr(getattr(f, "design", None), "y", None) for f in fits]
    if all(y is not None for y in ys) and not all(np.array_equal(ys[0], y) for y in ys[1:]):
        raise DataError("models were not all fitted to the same data (their responses differ)")


def _same_fixed(fits: list[Any]) -> bool:
    names = [tuple(getattr(getattr(f, "design", None), "x_names", ())) for f in fits]
    return all(set(n) == set(names[0]) for n in names[1:])


class AnovaTable(pd.DataFrame):
    """The table of :func:`anova`: a DataFrame that prints as lme4's ``anova`` does.

    Above the table, each model's name and formula and whether REML fits were refitted
    by ML; then the table with significance stars. Anything computed from it (``.round()``,
    ``.loc[...]``) is a plain DataFrame.
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    def _head(self) -> list[str]:
        models = self.attrs.get("models", {})
        width = max((len(str(k)) for k in models), default=0)
        lines = ["Models:"] + [f"{str(k) + ':':<{width + 1}} {v}" for k, v in models.items()]
        if self.attrs.get("refitted"):
            lines.append("(REML fits refitted by ML before the test, as lme4's anova does)")
        return lines

    def _cells(self) -> pd.DataFrame:
        out = pd.DataFrame(index=self.index)
        for col in self.columns:
            v = self[col]
            if col in ("npar", "Df"):
                out[col] = ["" if pd.isna(x) else str(int(x)) for x in v]
            elif col == "Pr(>Chisq)":
                out[col] = ["" if pd.isna(x) else ("< 2.2e-16" if x < 2.2e-16 else f"{x:.4g}") for x in v]
                out[""] = [_stars(x) for x in v]
            else:
                out[col] = ["" if pd.isna(x) else f"{x:.5g}" for x in v]
        return out

    def __repr__(self) -> str:
        text = "\n".join([*self._head(), *(line.rstrip() for line in self._cells().to_string().splitlines())])
        if self["Pr(>Chisq)"].notna().any():
            text += "\n---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"
        return text

    __str__ = __repr__

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self._head())
        return f"<p><small>{head}</small></p>" + self._cells().to_html()


def _stars(p: float) -> str:
    if pd.isna(p):
        return ""
    return next(s for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.01, " ")) if p < cut)


def anova(
    *fits: Any,
    refit: bool | str = True,
    names: list[str] | None = None,
    model_names: list[str] | None = None,
    **named_fits: Any,
) -> pd.DataFrame:
    """Likelihood-ratio tests between nested models, like lme4's ``anova(m1, m2, ...)``.

    Parameters
    ----------
    *fits
        Two or more REML/ML (or GLMM) fits of the same data. With a single
        REML/ML fit this returns its per-term F tests (``fit.anova()``).
    refit
        ``True`` (lme4's default): refit every REML fit by ML first, with a
        :class:`RefitWarning` (REML likelihoods of models with different fixed
        effects are not comparable; lme4 1.1-31 refits even when the fixed
        effects agree). ``"auto"``: refit only when the fixed effects differ.
        ``False``: use the likelihoods as fitted.
    names
        Row names of the positional fits; by default ``m0``, ``m1``, ... in the order given
        (lme4 names the rows by the objects' names).
    model_names
        The older spelling of ``names``.
    **named_fits
        Fits given by name, which names their rows: ``hb.anova(null=fit0, full=fit1)``.

    Returns
    -------
    AnovaTable
        A DataFrame: npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq), one row per
        model in increasing npar. ``attrs["refitted"]`` says whether REML fits
        were refitted, ``attrs["models"]`` maps row names to formulas. It prints as lme4's
        table, with the formulas above it.

    Examples
    --------
    >>> import warnings
    >>> import hierbayes as hb
    >>> d = hb.datasets.load("sleepstudy")
    >>> m1 = hb.lmer("Reaction ~ Days + (1 | Subject)", d)
    >>> m2 = hb.lmer("Reaction ~ Days + (Days | Subject)", d)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     tab = hb.anova(m1, m2)
    >>> round(float(tab["Chisq"].iloc[1]), 2)
    42.14
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     print(hb.anova(intercepts=m1, slopes=m2))  # doctest: +NORMALIZE_WHITESPACE
    Models:
    intercepts: Reaction ~ Days + (1 | Subject)
    slopes:     Reaction ~ Days + (Days | Subject)
    (REML fits refitted by ML before the test, as lme4's anova does)
               npar     AIC     BIC   logLik deviance   Chisq Df Pr(>Chisq)
    intercepts    4  1802.1  1814.9  -897.04   1794.1
    slopes        6  1763.9  1783.1  -875.97   1751.9  42.139  2  7.072e-10  ***
    ---
    Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1
    """
    if names is not None and model_names is not None:
        raise ArgumentError("give names= or its older spelling model_names=, not both")
    names = names if names is not None else model_names
    fits = list(fits)
    if len(fits) == 1 and not named_fits and hasattr(fits[0], "anova"):
        return fits[0].anova()
    if names is not None and len(list(names)) != len(fits):
        raise ArgumentError(f"names has {len(list(names))} names for {len(fits)} models")
    names = [str(n) for n in names] if names is not None else [f"m{i}" for i in range(len(fits))]
    names += list(named_fits)
    fits += list(named_fits.values())
    if len(fits) < 2:
        raise ModelError("anova needs at least two fitted models (or one REML/ML fit for its F tests)")
    if len(set(names)) < len(names) or any(not n for n in names):
        raise ArgumentError(f"model names must be distinct and not empty, got {names}")
    _check(fits)
    reml = [f.method == "reml" for f in fits]
    if refit not in (True, False, "auto"):
        raise ValueError(f"refit must be True, False or 'auto', not {refit!r}")
    do_refit = any(reml) and (refit is True or (refit == "auto" and not _same_fixed(fits)))
    if do_refit:
        warn("refitting model(s) with ML (instead of REML)", RefitWarning)
        fits = [f.refit_ml() if r else f for f, r in zip(fits, reml, strict=True)]
    elif any(reml) and not all(reml):
        warn("some models fit with REML, some not: their likelihoods are not comparable", RefitWarning)  # fmt: skip
    order = sorted(range(len(fits)), key=lambda i: fits[i].npar)
    fits = [fits[i] for i in order]
    names = [names[i] for i in order]
    llk = np.array([float(f.loglik) for f in fits])
    npar = np.array([int(f.npar) for f in fits])
    n = fits[0].nobs
    chisq = np.r_[np.nan, 2 * np.maximum(0.0, np.diff(llk))]
    df = np.r_[np.nan, np.diff(npar)]
    with np.errstate(invalid="ignore"):
        p = np.where(df == 0, np.nan, stats.chi2.sf(chisq, np.where(df > 0, df, np.nan)))
    table = AnovaTable(
        {"npar": npar, "AIC": -2 * llk + 2 * npar, "BIC": -2 * llk + np.log(n) * npar, "logLik": llk,
         "deviance": -2 * llk, "Chisq": chisq, "Df": df, "Pr(>Chisq)": p},
        index=names,
    )  # fmt: skip
    table["Df"] = table["Df"].astype("Int64")
    table.attrs["refitted"] = do_refit
    table.attrs["models"] = {nm: f.formula for nm, f in zip(names, fits, strict=True)}
    return table
