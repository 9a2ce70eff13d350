"""Posterior draws of the linear predictor, for the fitting data or new data (NumPy).

Used for the pointwise log-likelihood and posterior predictive stored in a
fit, and by ``PosteriorFit.predict``. Draws are handled flattened (chain and
draw stacked, ``S`` of them) and in chunks, so the memory is bounded even
for many rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.bayesian import names
from hierbayes.design.newdata import EncodedRows
from hierbayes.design.newdata import encode_rows as _encode_rows

CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class PosteriorDraws:
    """Flattened posterior draws (S = chains x draws, chain-major).

    Attributes
    ----------
    beta
        (S, p).
    ranef
        Per factor (design order): (S, levels, k).
    chol
        Per factor: (S, k, k) Cholesky factor of its covariance.
    params
        Family parameters (``sigma``, ``nu``, ...): (S,) each.
    """

    beta: np.ndarray
    ranef: list[np.ndarray]
    chol: list[np.ndarray]
    params: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return self.beta.shape[0]


def flat(da) -> np.ndarray:
    """Draws of a variable (chain, draw, ...) as (chain x draw, ...) floats."""
    v = np.asarray(da.values, dtype=float)
    return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])


def chol_draws(post, block, par: str | None = None) -> np.ndarray:
    """(S, k, k) Cholesky factors of a factor's covariance from its sd/corr draws (``par``: an auxiliary's)."""
    sd = flat(post[names.dpar(par, names.sd_var(block.group))])
    if names.has_corr(block):
        R = flat(post[names.dpar(par, names.corr_var(block.group))])
        cov = sd[:, :, None] * R * sd[:, None, :]
        cov += 1e-12 * np.eye(block.k) * np.maximum(sd[:, :, None] ** 2, 1e-300)
        return np.linalg.cholesky(cov)
    return sd[:, :, None] * np.eye(block.k)


def encode_rows(design, newdata: pd.DataFrame | None, re_form: str | None, new_levels: str = "error") -> EncodedRows:
    """The design's row encoding, with a hint about new_levels='sample' in the error for unseen levels."""
    hint = " or 'sample' (a new effect drawn from the fitted distribution)"
    return _encode_rows(design, newdata, re_form, new_levels, sample_hint=hint)


def eta_chunks(
    rows: EncodedRows, draws: PosteriorDraws, rng: np.random.Generator | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (draw slice, eta of shape (chunk, n)) over all draws."""
    S, n = draws.size, rows.n
    step = max(1, CHUNK_ELEMENTS // max(1, n))
    for s in range(0, S, step):
        sl = slice(s, min(S, s + step))
        yield sl, eta_slice(rows, draws, sl, rng)


def eta_slice(
    rows: EncodedRows, draws: PosteriorDraws, sl: slice, rng: np.random.Generator | None = None
) -> np.ndarray:
    """The linear predictor of the encoded rows for draws ``sl``: (chunk, n)."""
    eta = draws.beta[sl] @ rows.X.T
    if rows.offset is not None:
        eta += rows.offset
    for enc, r, L in zip(rows.blocks, draws.ranef, draws.chol, strict=True):
        if enc is None:
            continue
        codes, Z = enc
        seen = codes >= 0
        if seen.all():
            rs = r[sl]
            for j in range(Z.shape[1]):
                eta += rs[:, codes, j] * Z[:, j]
            continue
        eff = r[sl][:, np.where(seen, codes, 0), :]  # (chunk, n, k)
        if not seen.all():
            eff[:, ~seen, :] = 0.0
            if rows.sample_new:
                if rng is None:
                    raise ValueError("new_levels='sample' needs a random generator")
                z = rng.standard_normal((eff.shape[0], int(-codes.min()), L.shape[-1]))
                new = np.einsum("sij,slj->sli", L[sl], z)
                eff[:, ~seen, :] = new[:, -1 - codes[~seen], :]
        eta += np.einsum("snk,nk->sn", eff, Z)
    return eta


def draws_of(
    rows: EncodedRows,
    draws: PosteriorDraws,
    transform: Callable[[np.ndarray, slice], np.ndarray],
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(S, n) array of ``transform(eta, slice)``, NaN for rows with missing values."""
    out = np.full((draws.size, len(rows.ok)), np.nan)
    for sl, eta in eta_chunks(rows, draws, rng):
        out[sl][:, rows.ok] = transform(eta, sl)
    return out


def mean_of(
    rows: EncodedRows,
    draws: PosteriorDraws,
    transform: Callable[[np.ndarray, slice], np.ndarray],
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Posterior mean over draws of ``transform(eta, slice)``, NaN for rows with missing values."""
    total = np.zeros(rows.n)
    for sl, eta in eta_chunks(rows, draws, rng):
        total += transform(eta, sl).sum(axis=0)
    out = np.full(len(rows.ok), np.nan)
    out[rows.ok] = total / draws.size
    return out
