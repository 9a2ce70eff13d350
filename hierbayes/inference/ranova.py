"""Likelihood-ratio tests of the random-effects terms (lmerTest's ``ranova``).

For each random-effects bar (after lme4's expansion of ``||`` and ``a/b``),
lmerTest's reductions are:

* a bar whose left side has no terms beyond the intercept (``(1 | g)``) is
  removed: row ``"(1 | g)"``;
* otherwise each term of the left side not contained in a higher-order term
  is dropped in turn: row ``"x in (1 + x | g)"``. When it is the only term the
  bar becomes ``(1 | g)`` -- also for ``(0 + x | g)``, as lmerTest does.

Each reduced model is refitted with the same criterion (REML or ML; without
any random effects, the linear model's REML or ML log-likelihood) and
compared with the full model: LRT = 2 (logLik full - logLik reduced).
A residual structure (``correlation=``/``variance=``) stays in every
reduced model, with the full model's groups (without random effects: nlme's
``gls`` with that structure), so each test is of the random-effects term alone.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from formulaic import Formula
from scipy import stats

from hierbayes.errors import DataError, HierbayesWarning
from hierbayes.formula import RandomBar
from hierbayes.optim import run_optimizer
from hierbayes.reml.objective import prior_weights
from hierbayes.reml.structured import STRUCTURED, fit_structured

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

COLUMNS = ["npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)"]


def _deparse(text: str) -> str:
    """R's spacing of a bar: ``Days|Subject`` -> ``Days | Subject``."""
    text = re.sub(r"\s*([+|*\-])\s*", r" \1 ", text.strip())
    return re.sub(r"\s+", " ", text).strip()


def _bar_text(formula_text: str, bar: RandomBar, expanded: bool) -> str:
    if expanded:
        return f"{bar.lhs} | {':'.join(bar.group)}"
    start, depth = bar.position, 0
    for i in range(start, len(formula_text)):
        depth += {"(": 1, ")": -1}.get(formula_text[i], 0)
        if depth == 0:
            return _deparse(formula_text[start + 1 : i])
    return f"{bar.lhs} | {':'.join(bar.group)}"


def _lhs_terms(lhs: str) -> tuple[bool, list[tuple[str, frozenset[str]]]]:
    """Intercept flag and (R label, variables) of each term of a bar's left side."""
    terms = Formula(lhs)
    intercept, out = False, []
    for t in terms:
        label = str(t)
        if label == "1":
            intercept = True
            continue
        out.append((label.replace(" ** ", "^"), frozenset(str(f.expr) for f in t.factors)))
    if re.search(r"(^|[\s+])(0|-\s*1)(\s|$|\+)", lhs.strip()):
        intercept = False
    return intercept, out


def _bar_key(intercept: bool, labels: list[str], group: str) -> tuple:
    return (intercept, frozenset(labels), group)


def _reductions(fit: LmerFit) -> list[tuple[str, list[tuple[bool, list[str], str]]]]:
    """Row names and the reduced list of bars (intercept, term labels, group) of each reduced model."""
    parsed = fit.design.formula
    positions = Counter(b.position for b in parsed.bars)
    bars = []
    for b in parsed.bars:
        intercept, terms = _lhs_terms(b.lhs)
        bars.append((b, intercept, terms, _bar_text(parsed.text, b, positions[b.position] > 1)))
    base = [(i, [lab for lab, _ in t], ":".join(b.group)) for b, i, t, _ in bars]
    out = []
    for k, (_b, _intercept, terms, text) in enumerate(bars):
        scope = [lab for lab, v in terms if not any(v < w for _, w in terms)]
        if not terms or not scope:
            out.append((f"({text})", base[:k] + base[k + 1 :]))
            continue
        for scp in scope:
            rest = [lab for lab, _ in terms if lab != scp]
            new = (True, [], base[k][2]) if not rest else (base[k][0], rest, base[k][2])
            out.append((f"{scp} in ({text})", [*base[:k], new, *base[k + 1 :]]))
    return out


def _formula(fit: LmerFit, bars: list[tuple[bool, list[str], str]]) -> str:
    parsed = fit.design.formula
    seen, parts = set(), []
    for intercept, labels, group in bars:
        key = _bar_key(intercept, labels, group)
        if key in seen:
            continue
        seen.add(key)
        lhs = " + ".join(["1" if intercept else "0", *(lab.replace("^", "**") for lab in labels)])
        parts.append(f"({lhs} | {group})")
    rhs = [parsed.fixed, *(f"offset({o})" for o in parsed.offsets), *parts]
    return f"{parsed.response} ~ " + " + ".join(rhs)


def _lm_loglik(fit: LmerFit, reml: bool) -> tuple[int, float]:
    """Number of parameters and log-likelihood of the linear model with the same fixed effects (R's ``logLik.lm``)."""
    d = fit.design
    X, y = d.X, d.y if d.offset is None else d.y - d.offset
    w = prior_weights(d)
    if w.sqrtw is not None:  # weighted least squares (R's lm with weights): rows scaled by sqrt(w)
        X, y = X * w.sqrtw[:, None], y * w.sqrtw
    n, p = w.n, X.shape[1]
    Q, R = np.linalg.qr(X)
    rss = float(np.sum((y - Q @ (Q.T @ y)) ** 2))
    m = n - p if reml else n
    ll = -0.5 * m * (np.log(2 * np.pi * rss / m) + 1) + 0.5 * w.ldw
    if reml:
        ll -= float(np.sum(np.log(np.abs(np.diag(R)))))
    return p + 1, ll


def _gls_loglik(fit: LmerFit, reml: bool) -> tuple[int, float]:
    """Without random effects but with the fit's residual structure: nlme's ``gls`` log-likelihood (REML or ML).

    The structure keeps the full model's groups (nlme's ``gls`` needs them
    spelled out, e.g. ``corAR1(form = ~ 1 | Mare)``); its parameters are
    estimated by maximising the linear model's likelihood on the whitened
    ``[X y]`` plus ``-log|R| / 2``.
    """
    d, st = fit.design, fit.structure
    y = d.y if d.offset is None else d.y - d.offset
    log_pw = np.zeros(d.n) if d.weights is None else 0.5 * np.log(np.asarray(d.weights, float))
    M = np.column_stack([d.X, y])[st.order] * np.exp(log_pw[st.order])[:, None]
    fitted = fit.estimates.fitted_sorted
    n, p = d.n, d.p
    m = n - p if reml else n

    def minus2ll(u: np.ndarray) -> float:
        Mw, logdet = st.whiten(M, u, fitted)
        if not np.isfinite(logdet) or not np.all(np.isfinite(Mw)):
            return np.inf
        Q, R = np.linalg.qr(Mw[:, :p])
        yw = Mw[:, p]
        rss = float(np.sum((yw - Q @ (Q.T @ yw)) ** 2))
        out = m * (np.log(2 * np.pi * rss / m) + 1) + logdet - 2.0 * float(log_pw.sum())
        if reml:
            out += 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
        return out

    opt = run_optimizer(minus2ll, np.asarray(fit.estimates.phi, float), np.full(st.npar, -np.inf), STRUCTURED)
    return p + 1 + st.npar, -0.5 * opt.fmin


def ranova(fit: LmerFit) -> pd.DataFrame:
    """Single-term deletions of random effects with likelihood-ratio tests (lmerTest's ``ranova``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> tab = ranova(fit)
    >>> list(tab.index), round(float(tab["LRT"].iloc[1]), 2)
    (['<none>', 'Days in (Days | Subject)'], 42.84)
    """
    rows = {"<none>": (fit.npar, fit.loglik)}
    formulas = {}
    for name, bars in _reductions(fit):
        structure = getattr(fit, "structure", None)
        if not bars:
            rows[name] = _lm_loglik(fit, fit.reml) if structure is None else _gls_loglik(fit, fit.reml)
            formulas[name] = None
            continue
        formula = _formula(fit, bars)
        formulas[name] = formula
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HierbayesWarning)
            if structure is None:
                reduced = fit.model.update(formula).fit(fit.method, control=fit.estimates.control)
            else:  # the same structure, bound to the same rows and groups as in the full model
                model = fit.model.update(formula)
                reduced = type(fit)(model, fit_structured(model.design, structure, fit.reml), warn=False)
        if reduced.nobs != fit.nobs:
            raise DataError(
                f"the reduced model for '{name}' uses {reduced.nobs} rows, the full model {fit.nobs}: "
                "remove rows with missing values before fitting"
            )
        rows[name] = (reduced.npar, reduced.loglik)
    npar = np.array([r[0] for r in rows.values()], dtype=float)
    ll = np.array([r[1] for r in rows.values()], dtype=float)
    lrt = np.r_[np.nan, 2 * (ll[0] - ll[1:])]
    df = np.r_[np.nan, npar[0] - npar[1:]]
    with np.errstate(invalid="ignore"):
        p = stats.chi2.sf(lrt, np.where(df > 0, df, np.nan))
    table = pd.DataFrame(
        {"npar": npar.astype(int), "logLik": ll, "AIC": -2 * ll + 2 * npar, "LRT": lrt, "Df": df, "Pr(>Chisq)": p},
        index=list(rows),
    )
    table["Df"] = table["Df"].astype("Int64")
    table.attrs["formulas"] = formulas
    return table
