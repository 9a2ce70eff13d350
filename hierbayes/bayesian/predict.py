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

from hierbayes.design import Design
from hierbayes.design.random import group_keys
from hierbayes.errors import DataError
from hierbayes.fits.base import NEW_LEVELS, included_groups

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


@dataclass(frozen=True)
class EncodedRows:
    """Rows to predict for: X, offset, and per factor (codes, Z) or None when excluded."""

    X: np.ndarray
    offset: np.ndarray | None
    blocks: list[tuple[np.ndarray, np.ndarray] | None]
    ok: np.ndarray
    sample_new: bool = False

    @property
    def n(self) -> int:
        return self.X.shape[0]


def encode_rows(
    design: Design, newdata: pd.DataFrame | None, re_form: str | None, new_levels: str = "population"
) -> EncodedRows:
    """Encode the fitting data or new data the way the design encoded its own."""
    if new_levels not in NEW_LEVELS:
        raise ValueError(f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {new_levels!r}")
    groups = included_groups(design, re_form)
    if newdata is None:
        blocks = [(b.codes, b.Z) if b.group in groups else None for b in design.blocks]
        return EncodedRows(design.X, design.offset, blocks, np.ones(design.n, dtype=bool))
    newdata = pd.DataFrame(newdata)
    used = list(dict.fromkeys(design.fixed_columns + [v for b in design.blocks for v in b.group_vars]))
    present = [c for c in used if c in newdata.columns]
    ok = ~newdata[present].isna().any(axis=1).to_numpy() if present else np.ones(len(newdata), dtype=bool)
    nd = newdata.loc[ok]
    X = design.fixed_matrix(nd)
    blocks: list[tuple[np.ndarray, np.ndarray] | None] = []
    for b in design.blocks:
        if b.group not in groups:
            blocks.append(None)
            continue
        codes, Z = b.encode(nd)
        unseen = codes < 0
        if unseen.any() and new_levels == "error":
            bad = sorted(set(np.asarray(group_keys(nd, b.group_vars), dtype=object)[unseen]))
            raise DataError(
                f"new data has level(s) of '{b.group}' not seen when fitting: {', '.join(map(str, bad[:10]))}"
                + (" ..." if len(bad) > 10 else "")
                + "; use new_levels='population' (effect zero) or 'sample' (a new effect drawn from the "
                "fitted distribution)"
            )
        if unseen.any() and new_levels == "sample":
            keys = np.asarray(group_keys(nd, b.group_vars), dtype=object)
            _, new_codes = np.unique(keys[unseen], return_inverse=True)
            codes = codes.copy()
            codes[unseen] = -1 - new_codes  # -1, -2, ...: the new levels, each its own effect
        blocks.append((codes, Z))
    return EncodedRows(X, design.offset_vector(nd), blocks, ok, sample_new=new_levels == "sample")


def eta_chunks(
    rows: EncodedRows, draws: PosteriorDraws, rng: np.random.Generator | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (draw slice, eta of shape (chunk, n)) over all draws."""
    S, n = draws.size, rows.n
    step = max(1, CHUNK_ELEMENTS // max(1, n))
    for s in range(0, S, step):
        sl = slice(s, min(S, s + step))
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
        yield sl, eta


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
