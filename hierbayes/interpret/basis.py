"""What each engine knows about the fixed effects, in the one form the interpret functions use.

A :class:`Basis` is a vector of coefficients with either a covariance
matrix and a rule for the degrees of freedom of any linear function of it
(REML/ML and GLMM fits), or posterior draws (Bayesian fits). R's emmeans
calls this ``emm_basis``:

* ``LmerFit``: ``vcov(fit)``, with Kenward-Roger's adjusted covariance and
  df by default (emmeans' default for lmer fits, through pbkrtest), or
  Satterthwaite's df (``df="satterthwaite"``, lmerTest's, with the
  unadjusted covariance), or ``df="asymptotic"`` (z tests). An ML fit is
  refitted by REML for Kenward-Roger's method, as pbkrtest does; a fit with
  prior weights, which Kenward-Roger's formulas do not cover, gets
  Satterthwaite's df by default;
* ``GlmerFit``: ``vcov(fit)`` and asymptotic (infinite) df;
* ``PosteriorFit``: the posterior draws of the fixed effects.

The df rules come from :mod:`hierbayes.inference.kenward_roger` and
:mod:`hierbayes.inference.satterthwaite`; nothing here recomputes them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from hierbayes.errors import ArgumentError, ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.fits.glmer import GlmerFit
from hierbayes.fits.lmer import LmerFit
from hierbayes.fits.posterior import PosteriorFit
from hierbayes.inference import kenward_roger as kr
from hierbayes.inference import satterthwaite as satt
from hierbayes.interpret.scale import Scale, fit_scale

DF_METHODS = ("kenward-roger", "satterthwaite", "asymptotic")
_DF_SPELLINGS = {
    "kenward-roger": "kenward-roger", "kenward.roger": "kenward-roger", "kenwardroger": "kenward-roger",
    "kr": "kenward-roger", "satterthwaite": "satterthwaite", "satterth": "satterthwaite", "satt": "satterthwaite",
    "asymptotic": "asymptotic", "asymp": "asymptotic", "wald": "asymptotic", "z": "asymptotic", "inf": "asymptotic",
}  # fmt: skip


@dataclass(frozen=True)
class Basis:
    """Coefficients and their uncertainty.

    Attributes
    ----------
    coef
        The coefficients (the fixed effects, or cell means after a regrid).
    vcov
        Their covariance (Kenward-Roger's adjusted one when that is the df method); None for draws.
    draws
        Posterior draws, shape (S, len(coef)); None for REML/ML/GLMM fits.
    df_method
        emmeans' words for it: ``"kenward-roger"``, ``"satterthwaite"``, ``"asymptotic"``,
        ``"inherited from kenward-roger when re-gridding"``; ``"posterior"`` for draws; None where
        emmeans names none (GLMMs, whose df are always infinite).
    df_rows
        Function of a matrix L (one linear function per row) giving each row's df.
    scale
        The scale the coefficients' linear functions are on (None once re-gridded to the response).
    names
        Names of the coefficients.
    label
        Column name of the estimates: ``"emmean"``, or after a regrid the response's
        (``"prob"``, ``"rate"``, ``"response"``).
    messages
        Notes about how the basis was made (a fallback df method, a REML refit).
    """

    coef: np.ndarray
    vcov: np.ndarray | None
    draws: np.ndarray | None
    df_method: str | None
    df_rows: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    scale: Scale | None
    names: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    label: str = "emmean"

    @property
    def bayes(self) -> bool:
        return self.draws is not None

    def estimate(self, L: np.ndarray) -> np.ndarray:
        return np.asarray(L, float) @ self.coef

    def se(self, L: np.ndarray) -> np.ndarray:
        L = np.asarray(L, float)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", L, self.vcov, L), 0.0))

    def df(self, L: np.ndarray) -> np.ndarray:
        L = np.atleast_2d(np.asarray(L, float))
        return np.asarray(self.df_rows(L), dtype=float).reshape(-1) if len(L) else np.zeros(0)


def _inf_df(L: np.ndarray) -> np.ndarray:
    return np.full(len(L), np.inf)


def df_method_name(df: str | None) -> str | None:
    """The canonical df method (``"kenward-roger"``, ``"satterthwaite"``, ``"asymptotic"``) or None."""
    if df is None:
        return None
    key = str(df).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in _DF_SPELLINGS:
        raise ArgumentError(f"df must be one of {', '.join(DF_METHODS)} (or None for the default), not {df!r}")
    return _DF_SPELLINGS[key]


def check_fit(fit: object, what: str) -> None:
    """An ArgumentError unless ``fit`` is a fitted model (LmerFit, GlmerFit or PosteriorFit)."""
    if not isinstance(fit, MixedFit):
        raise ArgumentError(
            f"{what} takes a fitted model (from hb.lmer, hb.glmer or hb.bayes), not {fit.__class__.__name__}"
        )


def fit_basis(fit: MixedFit, df: str | None = None) -> Basis:
    """The basis of a fit, with the df method asked for (None: emmeans' default for the engine).

    Kept in the fit's ``cache`` (``"emmeans_basis"``, by df method), so that the Kenward-Roger adjustment or
    Satterthwaite's derivatives are computed once for all the means and contrasts of one fit.
    """
    key = df_method_name(df)
    cache = fit.cache.setdefault("emmeans_basis", {})
    if key not in cache:
        cache[key] = _fit_basis(fit, df)
    return cache[key]


def _fit_basis(fit: MixedFit, df: str | None) -> Basis:

    method = df_method_name(df)
    scale = fit_scale(fit)
    names = tuple(fit.design.x_names)
    if isinstance(fit, PosteriorFit):
        if method is not None:
            raise ArgumentError(f"df={df!r}: a posterior fit summarises its draws; degrees of freedom do not apply")
        beta = np.asarray(fit.fixef_draws().values, dtype=float)
        draws = beta.reshape(-1, beta.shape[-1])
        return Basis(draws.mean(axis=0), None, draws, "posterior", _inf_df, scale, names)
    if isinstance(fit, GlmerFit):
        if method not in (None, "asymptotic"):
            raise ArgumentError(
                f"df={df!r}: a GLMM fitted by maximum likelihood has asymptotic (z) inference only, as in emmeans; "
                "use df=None or 'asymptotic'"
            )
        return Basis(fit.fixef.to_numpy(), fit.vcov.to_numpy(), None, None, _inf_df, scale, names)
    if not isinstance(fit, LmerFit):
        raise ModelError(f"expected an LmerFit, GlmerFit or PosteriorFit, not {type(fit).__name__}")
    beta, V = fit.fixef.to_numpy(), fit.vcov.to_numpy()
    messages: list[str] = []
    if method is None:
        method = "kenward-roger"
        if fit.design.weights is not None:
            method = "satterthwaite"
            messages.append("Kenward-Roger's method does not cover prior weights: Satterthwaite's df are used")
    if method == "asymptotic":
        return Basis(beta, V, None, "asymptotic", _inf_df, scale, names, tuple(messages))
    if method == "satterthwaite":
        derivs = satt.varpar_derivatives(fit)
        satt.warn_messages(derivs)

        def satt_rows(L: np.ndarray) -> np.ndarray:
            return np.array([_guarded(lambda row: satt.contrast_df(row, V, derivs), row, V) for row in L])

        return Basis(beta, V, None, "satterthwaite", satt_rows, scale, names, tuple(messages))

    if fit.reml:
        adj = kr.vcov_adjusted(fit)
    else:
        # pbkrtest refits an ML fit by REML for the adjusted covariance and its P, W; emmeans' df
        # (pbkrtest's Lb_ddf) then use the ML fit's own vcov as the unadjusted one
        adj = replace(kr.vcov_adjusted(_reml_refit(fit)), vcov=V)
        messages.append("Kenward-Roger's method uses the REML refit of this ML fit (as pbkrtest does)")

    def kr_rows(L: np.ndarray) -> np.ndarray:
        return np.array([_guarded(lambda row: kr.kr_ddf(row[None, :], adj)[0], row, adj.vcov) for row in L])

    return Basis(beta, adj.vcov_adjusted, None, "kenward-roger", kr_rows, scale, names, tuple(messages))


def _guarded(fn: Callable[[np.ndarray], float], row: np.ndarray, V: np.ndarray) -> float:
    """A row's df, NaN for a zero function (no variance, no df)."""
    if not np.any(np.abs(row) > 0) or float(row @ V @ row) <= 1e-14 * max(1.0, float(np.abs(np.diag(V)).max())):
        return np.nan
    return float(fn(row))


def _reml_refit(fit) -> MixedFit:

    with warnings.catch_warnings():  # the ML fit already warned about anything the refit would
        warnings.simplefilter("ignore")
        return fit.model.fit("reml")


def regridded(basis: Basis, L: np.ndarray, offset: np.ndarray | None = None) -> Basis:
    """emmeans' ``regrid(transform = "response")``: the rows of L back-transformed, as a new basis of cell means.

    The covariance is carried by the delta method (``D V D`` with ``D`` the
    inverse link's derivative); draws are transformed one by one. The df of
    a linear function of the cells is the cells' common df when they agree
    (within 0.01), otherwise the smallest df of the cells it involves
    (emmeans' "inherited" df).
    """
    scale = basis.scale
    L = np.asarray(L, float)
    off = np.zeros(len(L)) if offset is None else np.asarray(offset, float)
    if scale is None or scale.is_identity:
        inv, deriv, label = (lambda x: x), np.ones_like, basis.label
    else:
        inv, deriv, label = scale.inverse, scale.mu_eta, scale.response_label
    eta = L @ basis.coef + off
    if basis.bayes:
        draws = inv(basis.draws @ L.T + off)
        return Basis(draws.mean(axis=0), None, draws, "posterior", _inf_df, None, label=label)
    D = deriv(eta)
    V = (L @ basis.vcov @ L.T) * np.outer(D, D)
    cell_df = basis.df(L)
    finite = cell_df[np.isfinite(cell_df)]
    if not finite.size or np.all(np.isnan(cell_df / cell_df)) or np.ptp(finite) < 0.01:
        common = float(np.nanmean(cell_df)) if np.isfinite(cell_df).any() else np.inf

        def df_rows(M: np.ndarray) -> np.ndarray:
            return np.full(len(M), common)
    else:

        def df_rows(M: np.ndarray) -> np.ndarray:
            out = []
            for row in M:
                used = np.abs(row) > 1e-7 * max(np.abs(row).max(), 1e-300)
                out.append(np.nanmin(cell_df[used]) if used.any() else np.nan)
            return np.array(out)

    method = basis.df_method
    if method is not None and not method.startswith("inherited"):
        method = f"inherited from {method} when re-gridding"
    return Basis(inv(eta), V, None, method, df_rows, None, label=label)
