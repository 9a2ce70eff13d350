"""``hb.pooling``: complete, no and partial pooling estimates per group .

The comparison of Barr's *Learning Statistical Models Through Simulation in R* (ch. 5).

* complete pooling: one least-squares fit of the fixed-effects part of the
  formula, ignoring the groups (``lm(Reaction ~ Days)``);
* no pooling: every level of the grouping factor gets its own coefficients
  for that factor's random-effect terms, estimated from its rows alone
  (``lm(Reaction ~ Days * Subject)``); fixed effects that are not among
  those terms stay common to all levels (``lm(mathach ~ cses + school)``
  for ``mathach ~ cses + (1 | school)``). A level whose rows cannot
  identify its coefficients (fewer distinct rows than terms) gets NaN, and
  a fixed effect that is constant within levels (e.g. ``sector`` with
  ``(1 | school)``) cannot be separated from the levels' intercepts, so its
  no-pooling value is NaN;
* partial pooling: each fit's ``coef`` (REML conditional modes, or
  posterior means, added to the fixed effects).

Complete and no pooling are least squares for gaussian models and GLMs
fitted by IRLS (on the link scale) for the binomial, Bernoulli and Poisson
families; a level whose no-pooling estimate runs off to infinity (a herd
with no cases) gets NaN. For other families (fitted by Bayes only) those
columns are NaN and only the fits' partial-pooling coefficients are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes.design import Design, ReBlock
from hierbayes.errors import ModelError
from hierbayes.glmm.response import glm_response
from hierbayes.tables.fitinfo import check_fits, check_same_data, fit_labels

if TYPE_CHECKING:
    from hierbayes._types import MixedFit  # a Protocol: the fits sit above this layer

COMPLETE, NONE = "complete pooling", "no pooling"
#: relative size below which a least-squares direction counts as not identified
RANK_TOL = 1e-10
#: a GLM no-pooling level whose linear predictor passes this has run off to infinity (separation)
ETA_MAX = 30.0


def partial_label(label: str) -> str:
    return f"partial pooling ({label})"


def pooling(*fits: MixedFit, group: str | None = None, labels: list[str] | None = None) -> pd.DataFrame:
    """Per-level intercepts and slopes under complete, no and partial pooling.

    Parameters
    ----------
    *fits
        One or more fits of the same model and data: a REML fit alone, or a
        REML and a posterior fit (a partial-pooling column group each).
    group
        The grouping factor; default the one with the most levels.
    labels
        Names of the fits in the column labels (default ``REML``, ``Bayes``, ...).

    Returns
    -------
    pandas.DataFrame
        Index: the factor's levels. Columns: a MultiIndex (pooling, term):
        ``("n", "")`` the number of rows of each level, then
        ``"complete pooling"``, ``"no pooling"`` and one
        ``"partial pooling (<label>)"`` group per fit, each with one column
        per coefficient (the fixed effects, plus random-only terms), as
        lme4's ``coef`` names them.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ days_deprived + (days_deprived | Subject)", hb.datasets.load("sleep2"))
    >>> table = hb.pooling(fit)
    >>> table.loc["335", ("no pooling", "days_deprived")].round(3)
    np.float64(-4.209)
    >>> table.loc["335", ("complete pooling", "(Intercept)")].round(3)
    np.float64(267.967)
    """
    fits = check_fits(fits, "pooling")
    check_same_data(fits, "pooling")
    names = fit_labels(fits, labels)
    design = fits[0].design
    block = pooling_block(design, group)
    terms = coefficient_terms(design, block)
    levels = pd.Index(block.levels, name=block.group)
    parts = {("n", ""): pd.Series(block.group_sizes(), index=levels)}
    family = fits[0].model.family
    if family.ml_parameter is not None and family.parameter is None:
        # NB theta or a dispersion: the GLMs below use the value a glmer fit estimated (None without one)
        family = next((f.family for f in fits if getattr(f, "method", None) == "ml"), None)
    if family is not None and (family.is_gaussian or _is_glm(family)):
        cp, nop = complete_pooling(design, family), no_pooling(design, block, family)
    else:
        cp, nop = dict.fromkeys(terms, np.nan), pd.DataFrame(np.nan, index=levels, columns=terms)
    for t in terms:
        parts[(COMPLETE, t)] = pd.Series(cp.get(t, 0.0), index=levels, dtype=float)
    for t in terms:
        parts[(NONE, t)] = pd.Series(nop[t].to_numpy(), index=levels, dtype=float)
    for fit, name in zip(fits, names, strict=True):
        coef = fit.coef[block.group].reindex(levels)
        for t in terms:
            parts[(partial_label(name), t)] = coef[t].astype(float) if t in coef else pd.Series(0.0, index=levels)
    out = pd.DataFrame(parts)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["pooling", "term"])
    return out


def pooling_block(design: Design, group: str | None) -> ReBlock:
    """The block of ``group``, or the one with the most levels."""
    if group is None:
        return design.blocks[0]
    for b in design.blocks:
        if b.group == group:
            return b
    raise ModelError(f"the model has no grouping factor '{group}' (it has {', '.join(b.group for b in design.blocks)})")


def coefficient_terms(design: Design, block: ReBlock) -> list[str]:
    """Fixed-effect names, then the block's terms that are not fixed effects (lme4's ``coef`` columns)."""
    return list(design.x_names) + [t for t in block.terms if t not in design.x_names]


def complete_pooling(design: Design, family=None) -> dict[str, float]:
    """Coefficients of the fixed-effects part alone, ignoring the groups (``lm``, or ``glm`` for GLMM families)."""
    X = design.X
    if not _is_glm(family):
        w, y = _gaussian(design)
        beta, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
        return dict(zip(design.x_names, beta, strict=True))

    def solve(z, sw):
        return np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]

    beta, ok = _irls(design, family, solve, lambda b: X @ b)
    return dict(zip(design.x_names, beta if ok else np.full(len(beta), np.nan), strict=True))


def no_pooling(design: Design, block: ReBlock, family=None) -> pd.DataFrame:
    """Per-level coefficients of the block's terms, other fixed effects shared (levels x coefficients).

    Least squares for gaussian models, IRLS (a GLM with level-specific
    coefficients) for the binomial and Poisson families; levels whose
    coefficients are not identified, or diverge (e.g. a level with no
    successes), get NaN. Solved by eliminating each level's own
    coefficients (block-diagonal), so the work is linear in the number of levels.
    """
    xn = list(design.x_names)
    shared = [j for j, name in enumerate(xn) if name not in block.terms]
    S, Z, codes = design.X[:, shared], block.Z, block.codes
    if not _is_glm(family):
        w, y = _gaussian(design)
        delta, gamma = _block_ls(S, Z, codes, block.nlevels, y, w)
    else:

        def solve(z, sw):
            return _block_ls(S, Z, codes, block.nlevels, z, sw)

        def eta(coefs):
            d, g = coefs
            out = S @ np.nan_to_num(g) + np.einsum("ij,ij->i", Z, np.nan_to_num(d)[codes])
            return out

        (delta, gamma), _ = _irls(design, family, solve, eta, per_level=codes)
    out = pd.DataFrame(index=pd.Index(block.levels, name=block.group))
    for j, name in enumerate(xn):
        out[name] = delta[:, block.terms.index(name)] if name in block.terms else gamma[shared.index(j)]
    for t in block.terms:
        if t not in out:
            out[t] = delta[:, block.terms.index(t)]
    return out


def _is_glm(family) -> bool:
    if family is None or family.is_gaussian:
        return False
    return family.ml


def _gaussian(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """sqrt prior weights and the response minus any offset."""
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - design.offset
    w = np.sqrt(design.weights) if design.weights is not None else np.ones_like(y)
    return w, y


def _block_ls(S, Z, codes, L: int, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of y on [S, Z per level]: (levels x k coefficients, shared coefficients).

    ``w`` are square-root weights. Levels whose rows cannot identify their k
    coefficients get NaN and do not enter the shared ones; a shared column that
    is constant within levels (not identified next to them) gets NaN.
    """
    k = Z.shape[1]
    y, S, Z = y * w, S * w[:, None], Z * w[:, None]
    A = np.zeros((L, k, k))
    np.add.at(A, codes, Z[:, :, None] * Z[:, None, :])
    c = np.zeros((L, k))
    np.add.at(c, codes, Z * y[:, None])
    B = np.zeros((L, k, S.shape[1]))
    np.add.at(B, codes, Z[:, :, None] * S[:, None, :])
    ok = _identified(A)
    Ainv = np.zeros_like(A)
    Ainv[ok] = np.linalg.inv(A[ok])
    gamma = np.full(S.shape[1], np.nan)
    if S.shape[1]:
        rows = ok[codes]
        StS = S[rows].T @ S[rows]
        M = StS - np.einsum("lki,lkm,lmj->ij", B[ok], Ainv[ok], B[ok])
        r = S[rows].T @ y[rows] - np.einsum("lki,lkm,lm->i", B[ok], Ainv[ok], c[ok])
        free = np.diag(M) > RANK_TOL * np.maximum(np.diag(StS), np.finfo(float).tiny)
        if free.any():
            gamma[free] = np.linalg.lstsq(M[np.ix_(free, free)], r[free], rcond=None)[0]
    g0 = np.where(np.isnan(gamma), 0.0, gamma)
    delta = np.einsum("lkm,lm->lk", Ainv, c - np.einsum("lkj,j->lk", B, g0))
    delta[~ok] = np.nan
    return delta, gamma


def _irls(design: Design, family, solve, eta_of, per_level=None, max_iter: int = 60):
    """Iteratively reweighted least squares for a GLM; returns (coefficients, converged).

    With ``per_level`` (the level codes), coefficients are (levels x k, shared):
    levels still moving at the end (separation: estimates running off to
    infinity) are set to NaN rather than failing the whole fit.
    """
    resp = glm_response(design, family)
    mu = resp.mustart()
    eta = family.link(mu)
    prev, coefs, change = None, None, np.inf
    for _ in range(max_iter):
        sw, wres = resp.working(eta, resp.linkinv(eta))
        z = eta - resp.offset + wres
        coefs = solve(z, sw)
        new = eta_of(coefs) + resp.offset
        change = np.nanmax(np.abs(new - eta) / (np.abs(new) + 0.1))
        if prev is not None and change < 1e-10:
            break
        prev, eta = coefs, new
    converged = bool(change < 1e-8)
    if per_level is None:
        return coefs, converged
    delta, gamma = coefs
    moving = (np.abs(delta - prev[0]) > 1e-6 * (np.abs(delta) + 1.0)).any(axis=1)
    runaway = np.zeros(len(delta), dtype=bool)
    np.logical_or.at(runaway, per_level, np.abs(eta) > ETA_MAX)  # mean at the clamp: 0, 1 or a zero rate
    delta = np.where((moving | runaway)[:, None], np.nan, delta)
    return (delta, gamma), converged


def _identified(A: np.ndarray) -> np.ndarray:
    """Levels whose k x k cross-product is of full rank."""
    ev = np.linalg.eigvalsh(A)
    top = np.maximum(ev[:, -1], np.finfo(float).tiny)
    return ev[:, 0] > RANK_TOL * top
