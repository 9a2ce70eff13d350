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
    cont = [j for j in range(X.shape[1]) if not np.all(np.isin(X[:, j], (0.0, 1.0)))]
    if not cont or X.shape[0] < 2:
        return
    sds = X[:, cont].std(axis=0, ddof=1)
    means = X[:, cont].mean(axis=0)
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
        for j, term in enumerate(b.terms):
            col = b.Z[:, j]
            if np.all(col == 1.0):
                continue
            sums = np.bincount(b.codes, weights=col, minlength=b.nlevels)
            sq = np.bincount(b.codes, weights=col * col, minlength=b.nlevels)
            n = np.maximum(b.group_sizes(), 1)
            within = sq / n - (sums / n) ** 2
            if np.all(within <= 1e-12 * np.maximum(1.0, sq / n)):
                warn(
                    f"the random slope '{term}' does not vary within any level of '{b.group}'; its variance "
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
