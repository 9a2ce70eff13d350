"""The Bayesian pieces of the per-category families (:mod:`hierbayes.families`' ``cumulative``, ``sratio``).

An ordinal model has a location predictor ``eta`` without intercept and K-1
thresholds, the posterior variable ``threshold`` (dim ``threshold_dim``,
coords 0..K-2, as bambi names them; summary labels ``threshold[0]``, ...).
Their priors are one entry per threshold in the model's ``PriorSet``
(``threshold[j]``; the shortcut ``"threshold"`` sets all); the cumulative
family's thresholds are ordered (PyMC's ``ordered`` transform), the
stopping-ratio family's are not.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.bayesian import names
from hierbayes.errors import ModelError

if TYPE_CHECKING:
    from hierbayes.bayesian.priors import PriorSet
    from hierbayes.design import Design
    from hierbayes.families import Family


def n_thresholds(design: Design) -> int:
    """K-1 for a response with K categories."""
    return len(design.response_levels) - 1


def threshold_names(design: Design) -> list[str]:
    """R's (``ordinal::clm``) names of the thresholds: ``1|2``, ``2|3``, ..."""
    lv = design.response_levels
    return [f"{a}|{b}" for a, b in itertools.pairwise(lv)]


def category_counts(design: Design) -> np.ndarray:
    """Rows per category, in level order."""
    return np.bincount(np.asarray(design.y, dtype=np.int64), minlength=len(design.response_levels)).astype(float)


def threshold_rv(design: Design, family: Family, pset: PriorSet):
    """The ``threshold`` vector variable (call inside the model context), ordered when the family asks."""
    import pymc as pm  # PyMC only when a model is built: import hierbayes stays light

    k = n_thresholds(design)
    priors = [pset[names.threshold_label(j)] for j in range(k)]
    dists = {(p.dist, tuple(p.kwargs)) for p in priors}
    if len(dists) > 1:
        raise ModelError(
            "the thresholds' priors must share one distribution (they may have different parameters); got "
            + ", ".join(str(p) for p in priors)
        )
    dist, keys = dists.pop()
    params = {key: np.array([p.kwargs[key] for p in priors], dtype=float) for key in keys}
    model = pm.modelcontext(None)
    model.add_coord(names.THRESHOLD_DIM, list(range(k)))
    kw = {}
    if family.ordered_thresholds:
        means = params.get("mu", np.zeros(k))
        start = np.sort(means) + np.arange(k) * 1e-3  # strictly increasing: the ordered transform's start
        kw = {"transform": pm.distributions.transforms.ordered, "initval": start}
    return getattr(pm, dist)(names.THRESHOLD, **params, dims=names.THRESHOLD_DIM, **kw)
