"""The profiled deviance and REML criterion as functions of theta.

For a given theta the penalized least-squares system

    [L'Z'ZL + I   L'Z'X   L'Z'y]
    [X'ZL         X'X     X'y  ]   = L L'   (L lower triangular)
    [y'ZL         y'X     y'y  ]

is factored blockwise by the numerical core (:mod:`hierbayes.linalg.cholesky`:
the first random-effects block block diagonal, one small Cholesky per level;
the rest of the system -- remaining blocks, X and y -- dense). From the factor:

* ``log|L_Z|^2``   twice the log-diagonal of the Z part,
* ``log|R_X|^2``   twice the log-diagonal of the X part,
* ``r^2``          the penalized residual sum of squares (last diagonal
  element squared),

and the profiled criteria are

    ML:   log|L_Z|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L_Z|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p))).

With prior weights w (lme4's ``weights=``: the residual variance of row i is
``sigma^2 / w_i``) the rows of Z, X and y are multiplied by ``sqrt(w)``, n
counts the rows with a positive weight, and ``sum(log w)`` over those rows is
subtracted from both criteria (lme4's ``ldW``), so that scaling every weight
by a constant changes only sigma. A row of weight zero contributes nothing:
the fit is that of the data without it (lme4 1.1-31 returns an infinite
criterion instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hierbayes.linalg import BlockedFactor, CrossProducts, ThetaLayout
from hierbayes.linalg import factorize as _factorize

_LOG2PI = np.log(2 * np.pi)


def factorize(cp: CrossProducts, layout: ThetaLayout, theta: np.ndarray) -> BlockedFactor | None:
    """The blocked Cholesky factor of [Z X y] at theta (:func:`hierbayes.linalg.factorize`), or None."""
    return _factorize(cp, layout.lambdas(theta))


@dataclass(frozen=True)
class PriorWeights:
    """Prior weights as the criteria use them.

    Attributes
    ----------
    sqrtw
        Square roots of the weights, one per row (None without weights).
    n
        Rows with a positive weight (all rows without weights).
    ldw
        ``sum(log w)`` over those rows (lme4's ``ldW``; 0 without weights).
    """

    sqrtw: np.ndarray | None
    n: int
    ldw: float


def prior_weights(design) -> PriorWeights:
    """The prior weights of a design (lme4's ``weights=``), as the REML/ML criteria use them.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"), weights=[2.0] * 29 + [0.0])
    >>> w = prior_weights(d)
    >>> w.n, round(w.ldw, 4)
    (29, 20.1013)
    """
    w = getattr(design, "weights", None)
    streamed = getattr(design, "streamed", None)
    if streamed is not None:  # rows read in pieces (hierbayes.sources): no prior weights
        return PriorWeights(None, streamed.n, 0.0)
    if w is None:
        return PriorWeights(None, len(design.y), 0.0)
    w = np.asarray(w, dtype=float)
    pos = w > 0
    return PriorWeights(np.sqrt(w), int(pos.sum()), float(np.log(w[pos]).sum()))


def profiled_criterion(
    logdet_L: float, logdet_RX: float, r2: float, n: int, p: int, reml: bool, ldw: float = 0.0
) -> float:
    """The REML criterion or ML deviance from its pieces (n: rows with positive weight)."""
    if not r2 > 0 or not np.isfinite(r2):
        return np.inf
    if reml:
        nu = n - p
        return float(logdet_L + logdet_RX - ldw + nu * (1.0 + _LOG2PI + np.log(r2 / nu)))
    return float(logdet_L - ldw + n * (1.0 + _LOG2PI + np.log(r2 / n)))


def criterion(f: BlockedFactor | None, n: int, p: int, reml: bool, ldw: float = 0.0) -> float:
    """-2 log-likelihood (ML) or the REML criterion, profiled over beta and sigma."""
    if f is None:
        return np.inf
    return profiled_criterion(f.logdet_L, f.logdet_RX, f.r2, n, p, reml, ldw)
