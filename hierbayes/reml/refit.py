"""Engine helpers for inference: pieces of the criterion at any theta, and refits.

Everything here reuses the engine's public pieces (``LmmObjective``,
``fit_lmm``, the blocked factor) so inference code never touches the
factorisation itself:

* ``criterion_pieces``: ``log|L_Z|^2``, ``log|R_X|^2``, the penalized RSS and
  ``R_X^{-1}`` at a theta (lmerTest differentiates the deviance and vcov(beta)
  built from these);
* ``with_response``: the same design with a new response (parametric
  bootstrap, simulation studies);
* ``with_fixed_offset``: the design with fixed-effect column ``j`` moved into
  the offset at a given value (lme4's profile of a fixed effect);
* ``refit``: fit a design by REML or ML, quietly, from an optional start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.errors import DataError
from hierbayes.linalg import fixef_precision_factor, lower_inverse, solve
from hierbayes.linalg.crossprod import shifted, with_columns
from hierbayes.reml.fit import LmmEstimates, LmmObjective, fit_lmm

if TYPE_CHECKING:
    from hierbayes.design import Design


@dataclass(frozen=True)
class CriterionPieces:
    """The pieces of the profiled criteria at one theta.

    Attributes
    ----------
    logdet_L
        ``log|L_Z|^2`` (lme4's ``ldL2``).
    logdet_RX
        ``log|R_X|^2`` (twice lme4's ``log det RX``).
    pwrss
        Penalized residual sum of squares at the conditional estimates,
        computed from the residuals (as lme4's ``wrss() + sqrL(1)``) rather than
        from the factor, so that it is accurate to rounding: second
        differences of the deviance at steps of 1e-7 need that.
    beta
        Conditional estimate of the fixed effects at theta.
    RXinv
        Inverse of the fixed-effects factor: ``vcov(beta) = sigma^2 RXinv' RXinv``.
    """

    logdet_L: float
    logdet_RX: float
    pwrss: float
    RXinv: np.ndarray
    beta: np.ndarray

    def unscaled_vcov(self) -> np.ndarray:
        """``vcov(beta) / sigma^2`` at this theta."""
        return self.RXinv.T @ self.RXinv


def criterion_pieces(objective: LmmObjective, theta: np.ndarray) -> CriterionPieces | None:
    """The criterion's pieces at theta (None where the system is not positive definite).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> pieces = criterion_pieces(fit.devfun, fit.estimates.theta)
    >>> bool(abs(pieces.pwrss - fit.estimates.pwrss) < 1e-6)
    True
    """
    f = objective.factor(np.asarray(theta, dtype=float))
    if f is None:
        return None
    design = objective.design
    RXinv = lower_inverse(fixef_precision_factor(f))
    u1, ur, beta = solve(f)
    beta = beta + objective.beta0  # the engine works with y - X beta0
    us = [u1]
    start = 0
    for b in design.blocks[1:]:
        us.append(ur[start : start + b.q].reshape(b.nlevels, b.k))
        start += b.q
    if getattr(design, "streamed", None) is not None or getattr(objective, "whitened", False):
        # rows read in pieces and not kept, or whitened rows of a residual structure: the factor's own pwrss
        return CriterionPieces(logdet_L=f.logdet_L, logdet_RX=f.logdet_RX, pwrss=float(f.r2), RXinv=RXinv, beta=beta)
    y = design.y if design.offset is None else design.y - design.offset
    resid = y - design.X @ beta
    for block, lam, u in zip(design.blocks, f.lambdas, us, strict=True):
        resid -= np.einsum("ij,ij->i", block.Z, (u @ lam.T)[block.codes])
    if objective.weights.sqrtw is not None:
        resid = resid * objective.weights.sqrtw
    pwrss = float(resid @ resid + sum(float(np.sum(u * u)) for u in us))
    return CriterionPieces(logdet_L=f.logdet_L, logdet_RX=f.logdet_RX, pwrss=pwrss, RXinv=RXinv, beta=beta)


def with_response(design: Design, y: np.ndarray) -> Design:
    """The design with a new response vector (same X, Z, offset).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> with_response(fit.design, fit.fitted).y.shape
    (180,)
    """
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.shape[0] != design.n:
        raise DataError(f"the new response has {y.shape[0]} values; the design has {design.n} rows")
    return dataclasses.replace(design, y=y)


def with_fixed_offset(design: Design, column: int, value: float) -> Design:
    """The design with ``X[:, column] * value`` moved into the offset and the column dropped.

    Fitting the result by ML gives the profile of that fixed effect at ``value``.
    """
    streamed = getattr(design, "streamed", None)
    if streamed is not None:  # rows read in pieces: the same move on their cross-products (about y - X beta0)
        keep = [j for j in range(design.p) if j != column]
        e = np.zeros(design.p)
        e[column] = value - streamed.beta0[column]  # y - x_j value - X_keep beta0_keep = (y - X beta0) - x_j e_j
        cp = with_columns(shifted(streamed.crossproducts, e), keep)
        rows = dataclasses.replace(streamed, crossproducts=cp, beta0=streamed.beta0[keep])
        names = tuple(n for j, n in enumerate(design.x_names) if j != column)
        return dataclasses.replace(design, X=np.zeros((0, len(keep))), x_names=names, streamed=rows)
    X = design.X
    offset = X[:, column] * value
    if design.offset is not None:
        offset = offset + design.offset
    keep = [j for j in range(X.shape[1]) if j != column]
    names = tuple(n for j, n in enumerate(design.x_names) if j != column)
    return dataclasses.replace(design, X=X[:, keep], x_names=names, offset=offset)


def refit(design: Design, reml: bool, start: np.ndarray | None = None, control=None) -> LmmEstimates:
    """Fit a design by REML or ML (the engine's ``fit_lmm``), optionally from a start."""
    return fit_lmm(design, reml=reml, start=start, control=control)


def with_rows(design: Design, rows: np.ndarray, codes: list[np.ndarray], nlevels: list[int]) -> Design:
    """The design restricted to (possibly repeated) rows, with new level codes per block.

    For a case bootstrap: ``rows`` indexes the original rows (with repeats),
    ``codes[g]`` gives each new row's level in block g and ``nlevels[g]`` that
    block's number of levels (levels without rows are allowed; they do not
    change the criterion).
    """
    blocks = tuple(
        dataclasses.replace(b, codes=np.asarray(c, dtype=np.int64), Z=b.Z[rows], levels=tuple(str(i) for i in range(m)))
        for b, c, m in zip(design.blocks, codes, nlevels, strict=True)
    )
    offset = None if design.offset is None else design.offset[rows]
    weights = None if design.weights is None else np.asarray(design.weights)[rows]
    return dataclasses.replace(
        design, y=design.y[rows], X=design.X[rows], offset=offset, blocks=blocks, weights=weights
    )
