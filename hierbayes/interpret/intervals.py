"""Intervals for predictions of new data: confidence intervals of the mean, prediction intervals of new observations.

``fit.predict(newdata, interval=...)`` of every engine lands here: the fits sit below this package, so
:func:`predict_interval` is registered with them (:func:`hierbayes.fits.base.register_predict_interval`) when
this module is imported, which ``import hierbayes`` does.

Confidence intervals (``interval="confidence"``) are the delta method on the
fixed effects, conditional on the random effects' modes (lme4 #147's
"population" intervals when ``re_form="~0"``), on the link scale and mapped
through the inverse link: the Wald intervals of ``predict(..., se.fit =
TRUE)`` that R users build by hand. A posterior's are credible intervals of
the expected response.

Prediction intervals (``interval="prediction"``) of a linear mixed model are
the quantiles of ``nsim`` simulated new observations

    y* = x' beta* + z' b* + e*,

with every source of uncertainty drawn:

* the variance parameters ``(theta*, sigma*)`` from the normal approximation
  of their sampling distribution (covariance twice the inverse Hessian of
  the deviance in ``(theta, sigma)``, lmerTest's, at the estimates;
  standard deviations reflected at zero);
* the fixed effects ``beta* ~ N(beta_hat, vcov)``;
* an observed level's random effects from their distribution given the data
  and ``beta*``: ``b | beta ~ N(b_hat - Lambda A^-1 Lambda' Z'X (beta* - beta_hat),
  sigma^2 Lambda A^-1 Lambda')`` with ``A = Lambda'Z'Z Lambda + I``
  (Henderson's prediction-error covariance, so the dependence between the
  fixed effects and the modes is kept);
* a new level's effects (``allow_new_levels=True``), and those of terms that
  ``re_form`` leaves out, from ``N(0, Sigma(theta*, sigma*))``: an
  observation in a group not seen;
* the residual ``e* ~ N(0, sigma*^2)``.

A posterior's prediction interval is that of its posterior predictive
draws, new levels drawing their effects from the fitted distribution per
draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.linalg import splu

from hierbayes.design.newdata import as_newdata, encode_rows, included_terms, new_levels_policy
from hierbayes.errors import ArgumentError, ModelError
from hierbayes.fits.base import MixedFit, register_predict_interval
from hierbayes.fits.glmer import GlmerFit
from hierbayes.fits.lmer import LmerFit
from hierbayes.fits.posterior import PosteriorFit
from hierbayes.inference.satterthwaite import varpar_derivatives
from hierbayes.interpret.scale import fit_scale

INTERVALS = ("confidence", "prediction")


def check_interval(interval: str | None, level: float) -> None:
    if interval not in (None, *INTERVALS):
        raise ArgumentError(f"interval must be None, 'confidence' or 'prediction', not {interval!r}")
    try:
        ok = 0 < float(level) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentError(f"level must be a number in (0, 1), not {level!r}")


def _nsim(nsim: Any) -> int:
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ArgumentError(f"nsim must be a whole number >= 2, not {nsim!r}")
    return int(nsim)


# ---------------------------------------------------------------------------------------------------------------------
# simulation of new observations from a linear mixed model
# ---------------------------------------------------------------------------------------------------------------------
def _varpar_draws(fit, nsim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws of theta (nsim x ntheta) and sigma (nsim,) from their approximate sampling distribution."""

    d = varpar_derivatives(fit)
    vp = d.varpar
    C = (d.vcov_varpar + d.vcov_varpar.T) / 2
    w, U = np.linalg.eigh(C)
    root = U * np.sqrt(np.clip(w, 0.0, None))
    draws = vp + rng.standard_normal((nsim, len(vp))) @ root.T
    theta, sigma = draws[:, : len(fit.layout.lower)], np.abs(draws[:, -1])  # (a residual structure's between)
    lower = np.asarray(fit.layout.lower, dtype=float)
    theta[:, lower == 0] = np.abs(theta[:, lower == 0])
    return theta, sigma


def _level_effects_given_beta(fit, levels: list[np.ndarray]):
    """The observed levels' effects given beta: ``b = b_hat - B (beta - beta_hat) + R z``, ``z ~ N(0, I)``.

    ``levels`` gives per block the level codes wanted. Returns the positions of
    the wanted effects in b (level-major within each block), b_hat there, B
    and R (None when nothing is wanted). With ``A = Lambda'Z'WZ Lambda + I``:
    ``B = Lambda A^-1 Lambda'Z'WX`` and ``R R' = sigma^2 Lambda A^-1 Lambda'`` at the wanted rows.
    """
    design = fit.design
    offsets = np.cumsum([0] + [b.q for b in design.blocks])
    wanted = [offsets[bi] + level * b.k + np.arange(b.k)
              for bi, (b, lv) in enumerate(zip(design.blocks, levels, strict=True)) for level in lv]  # fmt: skip
    if not wanted:
        return np.zeros(0, dtype=np.intp), None, None, None
    wanted = np.concatenate(wanted).astype(np.intp)
    lams = fit.layout.lambdas(fit.theta.to_numpy())
    Lam = sp.block_diag([sp.kron(sp.eye(b.nlevels), lam) for b, lam in zip(design.blocks, lams, strict=True)],
                        format="csc")  # fmt: skip
    Z = design.z_sparse()
    w = design.weights
    ZW = Z if w is None else sp.diags(np.asarray(w, float)) @ Z
    A = (Lam.T @ (ZW.T @ Z) @ Lam + sp.eye(Lam.shape[0])).tocsc()
    lu = splu(A)
    Lam_w = Lam[wanted]
    AiX = lu.solve(np.asarray(Lam.T @ (ZW.T @ design.X), dtype=float))
    B = np.asarray(Lam_w @ AiX)
    Cb = fit.sigma**2 * np.asarray(Lam_w @ lu.solve(np.asarray(Lam_w.T.toarray(), dtype=float)))
    wv, U = np.linalg.eigh((Cb + Cb.T) / 2)
    R = U * np.sqrt(np.clip(wv, 0.0, None))
    b_hat = np.concatenate([r.to_numpy().ravel() for r in _ranef_blocks(fit)])[wanted]
    return wanted, b_hat, B, R


def _ranef_blocks(fit) -> list[pd.DataFrame]:
    re = fit.ranef
    return [re[b.group].loc[list(b.levels), list(b.terms)] for b in fit.design.blocks]


def simulate_new(
    fit: MixedFit,
    newdata: Any,
    re_form: Any = None,
    new_levels: str = "error",
    nsim: int = 1000,
    random_seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Draws of new observations at the rows of ``newdata`` from a linear mixed model, shape (nsim, rows).

    See the module's description for what is drawn. Rows with a missing value give NaN.
    """

    if not isinstance(fit, LmerFit):
        raise ModelError("prediction intervals by simulation are for linear mixed models (LmerFit)")
    nsim = _nsim(nsim)
    rng = random_seed if isinstance(random_seed, np.random.Generator) else np.random.default_rng(random_seed)
    design = fit.design
    newdata = as_newdata(newdata)
    terms = included_terms(design, re_form)
    encode_rows(design, newdata, re_form, "sample" if new_levels in ("population", "sample") else new_levels)
    rows = encode_rows(design, _with_placeholders(design, newdata, terms), None, "sample")
    n = rows.n
    theta_s, sigma_s = _varpar_draws(fit, nsim, rng)
    beta_hat = fit.fixef.to_numpy()
    V = fit.vcov.to_numpy()
    wv, U = np.linalg.eigh((V + V.T) / 2)
    delta = rng.standard_normal((nsim, len(beta_hat))) @ (U * np.sqrt(np.clip(wv, 0.0, None))).T
    y = (beta_hat + delta) @ rows.X.T
    if rows.offset is not None:
        y = y + rows.offset
    lams_s = [fit.layout.lambdas(t) for t in theta_s]
    # observed levels of the blocks re_form keeps
    used: list[np.ndarray] = []
    for b, enc in zip(design.blocks, rows.blocks, strict=True):
        if enc is None or b.group not in terms:
            used.append(np.zeros(0, dtype=np.intp))
        else:
            used.append(np.unique(enc[0][enc[0] >= 0]))
    wanted, b_hat, B, R = _level_effects_given_beta(fit, used)
    if len(wanted):
        bw = b_hat - delta @ B.T + rng.standard_normal((nsim, R.shape[1])) @ R.T
    pos = 0
    for bi, (b, enc) in enumerate(zip(design.blocks, rows.blocks, strict=True)):
        keep = terms.get(b.group)
        if enc is None:
            continue
        codes, Zr = enc
        k = b.k
        if keep is not None:
            Zk = Zr.copy()
            Zk[:, [j for j in range(k) if j not in keep]] = 0.0  # terms re_form leaves out of a kept factor
            lv = used[bi]
            index = {int(level): pos + i * k for i, level in enumerate(lv)}
            seen = codes >= 0
            if seen.any():
                starts = np.array([index[int(c)] for c in codes[seen]])
                eff = bw[:, starts[:, None] + np.arange(k)[None, :]]  # (nsim, nseen, k)
                y[:, seen] += np.einsum("snk,nk->sn", eff, Zk[seen])
            pos += len(lv) * k
            new = ~seen
            if new.any():  # new levels: one effect per distinct level and draw
                nnew = int(-codes[new].min())
                z = rng.standard_normal((nsim, nnew, k))
                lam = np.stack([ls[bi] for ls in lams_s]) * sigma_s[:, None, None]  # (nsim, k, k)
                effects = np.einsum("sij,slj->sli", lam, z)
                y[:, new] += np.einsum("snk,nk->sn", effects[:, -1 - codes[new], :], Zk[new])
        else:  # a term re_form leaves out: each row's effect as in a new group
            z = rng.standard_normal((nsim, n, k))
            lam = np.stack([ls[bi] for ls in lams_s]) * sigma_s[:, None, None]
            y += np.einsum("snk,nk->sn", np.einsum("sij,snj->sni", lam, z), Zr)
    y += sigma_s[:, None] * rng.standard_normal((nsim, n))
    out = np.full((nsim, len(rows.ok)), np.nan)
    out[:, rows.ok] = y
    return out


def _with_placeholders(design, newdata: pd.DataFrame | None, terms: dict) -> pd.DataFrame | None:
    """New data with a never-seen level in the missing grouping columns of terms ``re_form`` leaves out.

    Those terms' effects are drawn as for a new group, which needs their Z
    columns (their slopes' values), not their levels.
    """
    if newdata is None:
        return None
    grouping_only = {c.label for c in design.columns if not c.numeric_use}
    fill = {}
    for b in design.blocks:
        if b.group in terms:
            continue
        for c in b.columns:
            if c not in newdata.columns and c in grouping_only:
                fill[c] = "(new level)"
    if not fill:
        return newdata
    out = newdata.copy()
    for c, v in fill.items():
        out[c] = v
    return out


# ---------------------------------------------------------------------------------------------------------------------
# the predict hook
# ---------------------------------------------------------------------------------------------------------------------
def predict_interval(
    fit: MixedFit,
    newdata: Any = None,
    re_form: Any = None,
    new_levels: str | None = None,
    allow_new_levels: bool | None = None,
    interval: str = "prediction",
    level: float = 0.95,
    nsim: int = 1000,
    random_seed: int | None = None,
    type: str = "response",
) -> pd.DataFrame:
    """``fit.predict(newdata, interval=..., level=..., nsim=...)``: a DataFrame of ``estimate``, ``lower``, ``upper``.

    Confidence intervals also give ``std_error`` (the delta method's, on the
    scale of the estimate) for REML/ML and GLMM fits. Rows are those of
    ``newdata`` (of the fitting data when None), with its index.
    """

    check_interval(interval, level)
    level = float(level)
    policy = new_levels_policy(allow_new_levels, new_levels)
    nd = as_newdata(newdata)
    index = fit.design.frame.row_index if nd is None else nd.index
    q = ((1 - level) / 2, (1 + level) / 2)
    if isinstance(fit, PosteriorFit):
        pol = "sample" if (interval == "prediction" and allow_new_levels and new_levels is None) else policy
        kind = "predictive" if interval == "prediction" else "draws"
        data, form = nd, re_form
        if kind == "predictive":
            data, form, pol = posterior_new_groups(fit, nd, re_form, pol)
        draws = fit.predict(data, re_form=form, new_levels=pol, kind=kind, scale=type if kind == "draws" else
                            "response", random_seed=random_seed)  # fmt: skip
        arr = np.asarray(draws.values, dtype=float).reshape(-1, draws.shape[-1])
        lo, hi = _quantiles(arr, q)
        est = fit.predict(nd, re_form=re_form, new_levels=pol if pol != "sample" else "population",
                          scale=type) if interval == "confidence" else _column_means(arr)  # fmt: skip
        return pd.DataFrame({"estimate": est, "lower": lo, "upper": hi}, index=index)
    if interval == "prediction":
        if not isinstance(fit, LmerFit):
            raise ModelError(
                "interval='prediction' is available for linear mixed models (LmerFit) and posterior fits; for a GLMM "
                "fit the model with method='bayes' and use its posterior predictive interval"
            )
        sims = simulate_new(fit, nd, re_form, policy, nsim, random_seed)
        est = fit.predict(nd, re_form=re_form, new_levels="population" if policy != "error" else "error")
        lo, hi = _quantiles(sims, q)
        return pd.DataFrame({"estimate": est, "lower": lo, "upper": hi}, index=index)
    eta, X = linear_rows(fit, nd, re_form, policy)
    V = fit.vcov.to_numpy()
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, V, X))
    z = stats.norm.ppf(q[1])
    lo, hi = eta - z * se, eta + z * se

    scale = fit_scale(fit)
    if type == "response" and scale.kind == "link" and not scale.is_identity:
        d = np.abs(scale.mu_eta(eta))
        est, se = scale.inverse(eta), se * d
        lo, hi = scale.inverse(lo), scale.inverse(hi)
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    else:
        est = eta
    return pd.DataFrame({"estimate": est, "std_error": se, "lower": lo, "upper": hi}, index=index)


register_predict_interval(predict_interval)


def posterior_new_groups(fit, newdata: pd.DataFrame | None, re_form: Any, policy: str):
    """New data, re_form and policy for posterior predictive draws in which the random-effects terms that
    ``re_form`` leaves out vary as for a new group (as :func:`simulate_new` does for REML fits).

    Each row gets its own never-seen level in the grouping-only columns of a left-out term (those that no
    kept term and no fixed effect reads), drawn from the fitted distribution (``new_levels="sample"``).
    """
    design = fit.design
    terms = included_terms(design, re_form)
    left_out = [b for b in design.blocks if b.group not in terms]
    if not left_out:
        return newdata, re_form, policy
    n = len(fit.design.frame.data) if newdata is None else len(newdata)
    base = fit.design.frame.data if newdata is None else newdata
    kept_cols = {c for b in design.blocks if b.group in terms for c in b.columns} | set(design.fixed_labels)
    grouping_only = {c.label for c in design.columns if not c.numeric_use}
    out = base.copy()
    for b in left_out:
        for c in b.columns:
            if c in grouping_only and c not in kept_cols:
                out[c] = [f"(new {b.group} {i})" for i in range(n)]
    if policy == "error":  # the kept terms' unseen levels still follow the user's policy
        encode_rows(design, base, re_form, "error")
    return out, None, "sample"


def _quantiles(draws: np.ndarray, q: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Column quantiles of (draws, rows); NaN for rows not predicted (a missing value)."""
    lo, hi = np.full(draws.shape[1], np.nan), np.full(draws.shape[1], np.nan)
    ok = ~np.isnan(draws).any(axis=0)
    if ok.any():
        lo[ok], hi[ok] = np.quantile(draws[:, ok], q, axis=0)
    return lo, hi


def _column_means(draws: np.ndarray) -> np.ndarray:
    out = np.full(draws.shape[1], np.nan)
    ok = ~np.isnan(draws).any(axis=0)
    out[ok] = draws[:, ok].mean(axis=0)
    return out


def linear_rows(fit, newdata: pd.DataFrame | None, re_form: Any, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """Link-scale predictions (random effects as ``re_form`` says) and the fixed-effects matrix of the rows.

    Rows with a missing value give NaN predictions and zero rows of the matrix.
    """

    design = fit.design
    if isinstance(fit, GlmerFit):
        eta = fit.predict(newdata, re_form=re_form, new_levels=policy, type="link")
    else:
        eta = fit.predict(newdata, re_form=re_form, new_levels=policy)
    rows = encode_rows(design, newdata, "~0", "population")
    X = np.zeros((len(rows.ok), design.p))
    X[rows.ok] = rows.X
    return np.asarray(eta, dtype=float), X
