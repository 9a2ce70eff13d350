"""nlme's containment ("between/within") denominator degrees of freedom of the fixed effects.

nlme's ``lme`` gives each fixed-effect column the df of the innermost
grouping level within whose groups it varies (``getFixDF``): with levels
1..Q (outermost first) of n_1 <= ... <= n_Q groups and N rows, the strata
have ``n_1, n_2 - n_1, ..., N - n_Q`` df; each column that is not constant
is assigned to the stratum after the innermost level it varies within (a
column that varies within the groups of no level belongs to the first) and
uses up one df there; an intercept uses one df of the first stratum and
takes the largest df. Only nested groupings have strata.
"""

from __future__ import annotations

import itertools

import numpy as np

from hierbayes.errors import ModelError


def _varies_within(x: np.ndarray, codes: np.ndarray, nlevels: int, tol: float) -> bool:
    lo = np.full(nlevels, np.inf)
    hi = np.full(nlevels, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    return bool(np.any(hi - lo > tol))


def containment_df(design) -> np.ndarray:
    """The df of each fixed-effect column (nlme's ``fit$fixDF$X``).

    Raises
    ------
    ModelError
        Groupings that are not nested (crossed random effects have no strata).

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> d = build_design("distance ~ age + (1 | Subject)", hb.datasets.load("sleepstudy").rename(
    ...     columns={"Reaction": "distance", "Days": "age"}))
    >>> containment_df(d).tolist()
    [161.0, 161.0]
    """
    levels: dict[str, tuple[np.ndarray, int]] = {}
    for b in design.blocks:
        levels.setdefault(b.group, (b.codes, b.nlevels))
    order = sorted(levels.values(), key=lambda cl: cl[1])
    for (outer, _), (inner, ni) in itertools.pairwise(order):
        parent = np.full(ni, -1)
        parent[inner] = outer
        if np.any(parent[inner] != outer):
            raise ModelError(
                "containment df need nested groupings; the random-effects groupings of this model are crossed"
            )
    X = np.asarray(design.X, float)
    N, p = X.shape
    ng = [nl for _, nl in order]
    dfX = np.array([ng[0], *np.diff(ng), N - ng[-1]], dtype=float) if ng else np.array([float(N)])
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300)
    const = np.array([np.ptp(X[:, j]) <= 1e-8 * scale[j] for j in range(p)], dtype=bool)
    strat = np.zeros(p, dtype=int)
    for j in np.flatnonzero(~const):
        s = 0
        for lev, (codes, nl) in enumerate(order, start=1):
            if _varies_within(X[:, j], codes, nl, 1e-8 * scale[j]):
                s = lev
        strat[j] = s
    for j in np.flatnonzero(~const):
        dfX[strat[j]] -= 1
    if const.any():
        dfX[0] -= 1
    else:
        dfX[1:] += 1
    out = dfX[strat].astype(float)
    out[const] = dfX.max()
    return out
