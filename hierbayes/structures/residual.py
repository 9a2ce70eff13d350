"""A residual structure bound to a design's rows: correlation within groups times a variance function.

The residual covariance is ``sigma^2 G C G`` (G the diagonal of the variance
function's SD multipliers, C the block-diagonal correlation), as in nlme.
:meth:`ResidualStructure.whiten` returns ``W M`` with ``W'W = (G C G)^{-1}``
and ``log|G C G|``, row-wise (no n x n matrix): the REML/ML criterion forms
its cross-products from the whitened [Z X y].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import hierbayes.structures.correlation as _correlation_classes
import hierbayes.structures.variance as _variance_classes
from hierbayes.errors import ArgumentError, ModelError
from hierbayes.structures.correlation import BoundCorrelation, Correlation, cholesky_whiten, correlate
from hierbayes.structures.variance import BoundVariance, Variance


@dataclass(frozen=True)
class ResidualStructure:
    """A correlation structure and/or variance function on the model's rows.

    Attributes
    ----------
    correlation, variance
        The bound parts (None when absent).
    order
        Row permutation the whitening works in (rows sorted by correlation group and position).
    """

    correlation: BoundCorrelation | None
    variance: BoundVariance | None
    order: np.ndarray

    @property
    def npar(self) -> int:
        return (self.correlation.npar if self.correlation else 0) + (self.variance.npar if self.variance else 0)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.correlation.names if self.correlation else ()) + (self.variance.names if self.variance else ())

    @property
    def start(self) -> np.ndarray:
        parts = [p.start for p in (self.correlation, self.variance) if p is not None]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def uses_fitted(self) -> bool:
        return self.variance is not None and self.variance.uses_fitted

    def split(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.correlation.npar if self.correlation else 0
        return np.asarray(u[:k], float), np.asarray(u[k:], float)

    def natural(self, u: np.ndarray) -> dict[str, float]:
        """nlme's printed parameters (``coef(modelStruct, unconstrained = FALSE)``) by name."""
        uc, uv = self.split(u)
        out: dict[str, float] = {}
        if self.correlation:
            out.update(zip(self.correlation.names, map(float, self.correlation.natural(uc)), strict=True))
        if self.variance:
            out.update(zip(self.variance.names, map(float, self.variance.natural(uv)), strict=True))
        return out

    def unconstrained(self, values: np.ndarray) -> np.ndarray:
        """The unconstrained parameters from nlme's natural ones (the inverse of :meth:`natural`, as an array)."""
        values = np.asarray(values, float)
        k = self.correlation.npar if self.correlation else 0
        parts = []
        if self.correlation:
            with np.errstate(divide="ignore", invalid="ignore"):
                parts.append(self.correlation.unconstrained(values[:k] if k > 1 else np.float64(values[0])))
        if self.variance:
            parts.append(self.variance.unconstrained(values[k:]))
        return np.concatenate(parts) if parts else np.zeros(0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the natural parameters (open: the criterion is not finite on them)."""
        parts = [p.bounds() for p in (self.correlation, self.variance) if p is not None]
        if not parts:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([b[0] for b in parts]), np.concatenate([b[1] for b in parts])

    def log_sd(self, u: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        """log of the variance function's SD multipliers per sorted row (zeros without one)."""
        if self.variance is None:
            return np.zeros(len(self.order))
        return self.variance.log_sd(self.split(u)[1], fitted)

    def whiten(self, M: np.ndarray, u: np.ndarray, fitted: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """``W M`` for rows in sorted order, and ``log|G C G|``."""
        uc, uv = self.split(u)
        logdet = 0.0
        if self.variance is not None:
            lg = self.variance.log_sd(uv, fitted)
            if not np.all(np.isfinite(lg)):
                return M * np.nan, np.inf
            M = M * np.exp(-lg)[:, None]
            logdet += 2.0 * float(lg.sum())
        if self.correlation is not None:
            M, ld = self.correlation.whiten(M, uc)
            logdet += ld
        return M, logdet

    def residuals(self, Z: np.ndarray, u: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        """Residuals with covariance ``G C G`` (sigma excluded) from independent standard normal columns ``Z``.

        Rows in sorted order (:attr:`order`); the inverse of :meth:`whiten`'s transform.
        """
        uc, uv = self.split(u)
        E = np.asarray(Z, float)
        if self.correlation is not None:
            E = correlate(self.correlation, E, uc)
        if self.variance is not None:
            E = E * np.exp(self.variance.log_sd(uv, fitted))[:, None]
        return E

    def normalize(self, M: np.ndarray, u: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        """nlme's normalized residuals' transform of sorted rows: divide by G, then each group's ``L_g^{-1}``."""
        uc, uv = self.split(u)
        if self.variance is not None:
            M = M * np.exp(-self.variance.log_sd(uv, fitted))[:, None]
        if self.correlation is not None:
            M = cholesky_whiten(self.correlation, M, uc)
        return M


def bind_structure(
    correlation: Correlation | None,
    variance: Variance | None,
    data: pd.DataFrame,
    blocks,
) -> ResidualStructure | None:
    """Bind the user's structures to the model's rows ``data`` (in design order) and random-effects ``blocks``.

    The correlation groups must be nested in every random-effects grouping
    (as nlme requires), so that whitening, which combines rows of one group,
    keeps each row's random-effects levels.

    Raises
    ------
    ArgumentError
        A structure of the wrong type.
    ModelError
        Correlation groups that cut across a random-effects grouping.
    """
    if correlation is None and variance is None:
        return None
    if correlation is not None and not isinstance(correlation, Correlation):
        raise ArgumentError(
            "correlation must be hb.corAR1, hb.corCAR1, hb.corARMA or hb.corCompSymm (e.g. hb.corAR1('~ 1 | g')), "
            f"not {correlation!r}"
        )
    if variance is not None and not isinstance(variance, Variance):
        raise ArgumentError(
            f"variance must be hb.varIdent, hb.varPower, hb.varExp or hb.varComb (e.g. hb.varIdent('~ 1 | g')), "
            f"not {variance!r}"
        )
    data = data.reset_index(drop=True)
    n = len(data)
    # the innermost grouping (most levels) is nlme's default group for '~ 1' and its sort order
    inner = max(blocks, key=lambda b: b.nlevels) if blocks else None
    bc = None
    if correlation is not None:
        bc = correlation.bind(data, None if inner is None else inner.codes, None if inner is None else inner.group)
        for b in blocks:
            codes = b.codes[bc.order]
            same = bc.prev
            if np.any(codes[1:][same[1:]] != codes[:-1][same[1:]]):
                raise ModelError(
                    f"the groups of {correlation!r} are not nested in the random-effects grouping {b.group!r}: "
                    f"rows of one correlation group belong to different levels of {b.group!r}; give the "
                    f"correlation a grouping within {b.group!r} (e.g. '~ 1 | {b.group}')"
                )
        order = bc.order
    else:
        order = np.arange(n)
    ref_order = np.lexsort([b.codes for b in reversed(blocks)]) if blocks else np.arange(n)
    bv = None if variance is None else variance.bind(data, order, ref_order)
    return ResidualStructure(bc, bv, order)


def spec_record(spec: Correlation | Variance | None) -> dict | None:
    """The user's structure as plain data (class, form, starting value; varComb's parts): what a saved fit keeps."""
    if spec is None:
        return None
    parts = getattr(spec, "parts", None)
    if parts is not None:
        return {"class": type(spec).__name__, "parts": [spec_record(p) for p in parts]}
    if isinstance(spec, _correlation_classes.corARMA):
        value = None if spec.value is None else [float(v) for v in spec.value]
        return {"class": "corARMA", "form": spec.form.text, "p": spec.p, "q": spec.q, "value": value}
    return {"class": type(spec).__name__, "form": spec.form.text, "value": spec.value}


def spec_from_record(record: dict | None) -> Correlation | Variance | None:
    """The structure :func:`spec_record` described (an ArgumentError for an unknown class)."""
    if record is None:
        return None
    cls = getattr(_correlation_classes, record["class"], None) or getattr(_variance_classes, record["class"], None)
    if not isinstance(cls, type) or not issubclass(cls, Correlation | Variance):
        raise ArgumentError(f"unknown residual structure {record['class']!r}")
    if "p" in record:
        return cls(record["form"], p=record["p"], q=record["q"], value=record["value"])
    if "parts" in record:
        return cls(*[spec_from_record(p) for p in record["parts"]])
    return cls(record["form"], record["value"])
