"""What kind of fit an object is, and the label it gets in tables and legends.

Tables and plots take fits from any engine (``LmerFit``, ``GlmerFit``,
``PosteriorFit``) without the caller converting anything; this module is
the one place that tells them apart, by behaviour rather than by class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hierbayes.errors import ModelError

if TYPE_CHECKING:
    from hierbayes._types import MixedFit  # a Protocol: the fits sit above this layer

ENGINE_LABELS = {"reml": "REML", "ml": "ML", "bayes": "Bayes"}


def is_bayes(fit: MixedFit) -> bool:
    """Whether a fit is a posterior (has draws in ``fit.idata``)."""
    return getattr(fit, "method", "") == "bayes" and hasattr(fit, "idata")


def engine(fit: MixedFit) -> str:
    """``"reml"``, ``"ml"`` or ``"bayes"``."""
    if getattr(fit, "method", None) not in ENGINE_LABELS or not hasattr(fit, "fixef"):
        raise TypeError(f"expected a fitted model (LmerFit, GlmerFit or PosteriorFit), got {type(fit).__name__}")
    return fit.method


def fit_labels(fits: Sequence[MixedFit], labels: Sequence[str] | None = None) -> list[str]:
    """Labels of fits: the user's, or the engine's name (``REML``, ``ML``, ``Bayes``), numbered when repeated.

    Examples
    --------
    >>> fit_labels([], None)
    []
    """
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != len(fits):
            raise ModelError(f"got {len(labels)} labels for {len(fits)} fits")
        if len(set(labels)) != len(labels):
            raise ModelError(f"labels must be distinct, got {labels}")
        return labels
    base = [ENGINE_LABELS.get(engine(f), engine(f)) for f in fits]
    out, seen = [], {}
    for b in base:
        seen[b] = seen.get(b, 0) + 1
        out.append(b if base.count(b) == 1 else f"{b} {seen[b]}")
    return out


def check_fits(fits: Sequence[MixedFit], what: str) -> list[MixedFit]:
    """At least one fit, each a MixedFit; returns them as a list."""
    fits = list(fits)
    if not fits:
        raise ModelError(f"{what} needs at least one fitted model")
    for f in fits:
        engine(f)
    return fits


def check_same_data(fits: Sequence[MixedFit], what: str) -> None:
    """Fits compared group by group must share the response, the rows and the grouping factors."""
    first = fits[0]
    for f in fits[1:]:
        if f.nobs != first.nobs or f.design.response_name != first.design.response_name:
            raise ModelError(
                f"{what}: fits must be of the same response and data; '{first.formula}' (n={first.nobs}) vs "
                f"'{f.formula}' (n={f.nobs})"
            )
