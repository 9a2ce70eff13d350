"""Checks on a design, after lme4's (``chkRank.drop.cols``, ``checkScaleX``,
the level-count checks of ``checkNlevels`` and ``checkZdims``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hierbayes._warnings import warn
from hierbayes.errors import DataError, DesignWarning, ScalingWarning


def drop_aliased(X: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns to keep: each kept column is not (numerically) in the span of earlier ones.

    Mirrors R's ``qr(X, tol = 1e-7)`` with LINPACK's limited pivoting, which
    lme4 uses: a column whose residual norm after projection on the kept
    columns is below ``tol`` times its own norm is aliased and dropped, so
    later columns are dropped before earlier ones.
    """
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        norm = np.linalg.norm(x)
        if norm == 0:
            continue
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)  # re-orthogonalise once for accuracy
        rn = np.linalg.norm(r)
        if rn > tol * norm:
            keep.append(j)
            Q = np.column_stack([Q, r / rn])
    return keep


def drop_aliased_gram(G: np.ndarray, tol: float = 1e-7) -> list[int]:
    """:func:`drop_aliased` from the cross-product ``G = X'X`` of X (data read in pieces: no X in memory).

    A column's residual norm after projection on the kept columns is
    ``sqrt(G_jj - g' G_kk^-1 g)``; the same rule keeps or drops it (the
    squared form resolves residuals down to about 1e-8 of the norm, ten
    times finer than the tolerance).
    """
    keep: list[int] = []
    for j in range(G.shape[0]):
        norm2 = float(G[j, j])
        if norm2 <= 0:
            continue
        if keep:
            g = G[keep, j]
            proj = float(g @ np.linalg.solve(G[np.ix_(keep, keep)], g))
            r2 = norm2 - proj
        else:
            r2 = norm2
        if r2 > 0 and np.sqrt(r2) > tol * np.sqrt(norm2):
            keep.append(j)
    return keep


def check_finite(values: np.ndarray, names: Sequence[str], what: str, rows: Sequence) -> None:
    """Raise when a transform made a value infinite or NaN (``log(0)``, ``sqrt(-1)``, ``1 / 0``).

    Missing and infinite values in the data itself were already dropped with
    the incomplete rows; what is left here was made by the formula.

    Parameters
    ----------
    values
        An (n,) or (n, k) array evaluated from the formula.
    names
        The k column names (one name for a vector).
    what
        Where the values come from (``"fixed-effects"``, ``"response"``).
    rows
        The data's index labels of the n rows, to name them in the message.
    """
    values = np.asarray(values, dtype=float).reshape(len(rows), -1)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    j = int(np.flatnonzero(bad.any(axis=0))[0])
    idx = np.flatnonzero(bad[:, j])
    shown = ", ".join(f"{values[i, j]:g} in row {rows[i]}" for i in idx[:3])
    raise DataError(
        f"the {what} column '{names[j]}' is not finite in {len(idx)} row(s) ({shown}{', ...' if len(idx) > 3 else ''}) "
        "after the formula's transforms were applied (log or sqrt of zero or a negative value?); "
        "drop those rows or change the transform"
    )


def check_scaling(X: np.ndarray, names: Sequence[str], tol: float = 1e3) -> None:
    """Warn when continuous predictors are on very different scales or far from zero.

    lme4's ``checkScaleX`` warns when a continuous column's SD, or the ratio
    of two SDs, is beyond ``tol``. We also warn for a covariate whose values
    sit in the hundreds far from zero (e.g. a height in metres above sea
    level), which makes the intercept and slope nearly collinear.
    """
    binary = np.array([np.all(np.isin(X[:, j], (0.0, 1.0))) for j in range(X.shape[1])], dtype=bool)
    n = X.shape[0]
    means = X.mean(axis=0) if n else np.zeros(X.shape[1])
    sds = X.std(axis=0, ddof=1) if n >= 2 else np.zeros(X.shape[1])
    check_scaling_stats(means, sds, binary, n, names, tol)


def check_scaling_stats(
    means: np.ndarray, sds: np.ndarray, binary: np.ndarray, n: int, names: Sequence[str], tol: float = 1e3
) -> None:
    """:func:`check_scaling` from each column's mean, SD (n - 1) and whether it holds only 0 and 1."""
    cont = [j for j in range(len(means)) if not binary[j]]
    if not cont or n < 2:
        return
    sds = np.asarray(sds, dtype=float)[cont]
    means = np.asarray(means, dtype=float)[cont]
    problems = []
    pos = sds[sds > 0]
    if pos.size and (np.any(np.abs(np.log(pos)) > np.log(tol)) or np.log(pos.max() / pos.min()) > np.log(tol)):
        problems.append("some predictors are on very different scales (SDs " + _list(names, cont, sds) + ")")
    far = [j for j, m, s in zip(cont, means, sds, strict=True) if s > 0 and abs(m) >= 100 and abs(m) > 10 * s]
    if far:
        problems.append(
            "predictor(s) " + ", ".join(f"'{names[j]}'" for j in far) + " take values far from zero relative to "
            "their spread (mean " + ", ".join(f"{means[cont.index(j)]:.4g}" for j in far) + ")"
        )
    if problems:
        warn(
            "; ".join(problems) + ". Consider centering and scaling them, e.g. scale(x) in the formula.", ScalingWarning
        )


def check_slopes_vary(blocks: Sequence) -> None:
    """Warn for a random slope whose variable is constant within every level."""
    for b in blocks:
        ones = [bool(np.all(b.Z[:, j] == 1.0)) for j in range(b.k)]
        sums = np.column_stack([np.bincount(b.codes, weights=b.Z[:, j], minlength=b.nlevels) for j in range(b.k)])
        sq = np.column_stack([np.bincount(b.codes, weights=b.Z[:, j] ** 2, minlength=b.nlevels) for j in range(b.k)])
        check_slopes_vary_stats(b, ones, sums, sq, b.group_sizes())


def check_slopes_vary_stats(block, ones: Sequence[bool], sums: np.ndarray, sq: np.ndarray, counts: np.ndarray) -> None:
    """:func:`check_slopes_vary` for one block from per-level sums (levels x k) and sums of squares of Z."""
    n = np.maximum(np.asarray(counts), 1)
    for j, term in enumerate(block.terms):
        if ones[j]:
            continue
        within = sq[:, j] / n - (sums[:, j] / n) ** 2
        if np.all(within <= 1e-12 * np.maximum(1.0, sq[:, j] / n)):
            warn(
                f"the random slope '{term}' does not vary within any level of '{block.group}'; its variance "
                f"cannot be told apart from the random intercept's (did you mean a fixed effect, or "
                f"a grouping factor nested in another?)",
                DesignWarning,
            )


def check_lmm_levels(design) -> None:
    """lme4's level-count checks for linear mixed models (errors, as ``lmer`` gives).

    * every grouping factor has at least 2 levels;
    * fewer levels than observations (else the random intercept and the
      residual cannot be told apart);
    * fewer random effects than observations, per term.
    """
    n = design.n
    for b in design.blocks:
        if b.nlevels < 2:
            raise DataError(
                f"grouping factor '{b.group}' has only {b.nlevels} level ({', '.join(b.levels)}); "
                "a random effect needs at least two groups"
            )
        if b.nlevels >= n:
            raise DataError(
                f"grouping factor '{b.group}' has as many levels ({b.nlevels}) as observations ({n}); "
                "the random effect and the residual variance are not identifiable "
                "(number of levels of each grouping factor must be < number of observations)"
            )
        for cols in b.bars:
            q = b.nlevels * len(cols)
            if q >= n:
                raise DataError(
                    f"number of observations ({n}) <= number of random effects ({q}) for the term "
                    f"({' + '.join(b.terms[c] for c in cols)} | {b.group}); the random-effects parameters "
                    "and the residual variance are probably unidentifiable"
                )


def _list(names: Sequence[str], cols: list[int], values: np.ndarray) -> str:
    return ", ".join(f"{names[j]}: {v:.3g}" for j, v in zip(cols, values, strict=True))
