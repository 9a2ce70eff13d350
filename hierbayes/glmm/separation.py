"""Complete and quasi-complete separation: fixed effects whose maximum-likelihood estimate is infinite.

For binomial data a direction ``d`` of the fixed effects along which the
likelihood never decreases and somewhere increases exists when ``x_i'd >= 0``
on every row with a success, ``x_i'd <= 0`` on every row with a failure, and
``X d != 0`` (Albert and Anderson 1984; the linear program of Konis 2007,
R's ``detectseparation``). For Poisson counts the same holds with ``x_i'd = 0``
on rows with a positive count and ``x_i'd <= 0`` on rows with a zero count
(e.g. a factor level whose counts are all zero). The random effects cannot
absorb such a direction, so the estimates of the fixed effects in its support
grow without bound: lme4 stops where its optimizer stops (a huge estimate
and standard error, e.g. 36 with SE 1e7), and so does hierbayes, with a
:class:`~hierbayes.errors.SeparationWarning` naming them.

The check is one linear program per fixed effect and direction (SciPy's
HiGHS); the engine runs it only when PIRLS does not converge or the fitted
linear predictor reaches +-15, so ordinary fits pay nothing.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from hierbayes.glmm.response import GlmResponse


def separated_effects(X: np.ndarray, response: GlmResponse, names, tol: float = 1e-7) -> list[str]:
    """Names of the fixed effects whose estimates diverge because the data are separated ([] if none).

    Parameters
    ----------
    X
        Fixed-effects model matrix (full column rank).
    response
        The response in lme4's form (:func:`hierbayes.glmm.response.glm_response`).
    names
        Column names of X.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.glmm.response import glm_response
    >>> import numpy as np, pandas as pd
    >>> d = pd.DataFrame({"y": [0, 0, 1, 1, 0, 1, 0, 1], "x": [-2.0, -1, 1, 2, -0.5, 0.5, 0, 0],
    ...                   "g": list("aabbccdd")})  # x = 0 has both outcomes: the intercept stays finite
    >>> m = hb.Model("y ~ x + (1 | g)", d, family="binomial")
    >>> separated_effects(m.design.X, glm_response(m.design, m.family), m.design.x_names)
    ['x']
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    if p == 0 or n == 0:
        return []
    use = response.wt > 0
    y = response.y
    if response.binomial:
        up = use & (y > 0)  # rows with a success: x'd >= 0
        down = use & (y < 1)  # rows with a failure: x'd <= 0
    else:
        up = use & (y > 0)
        down = use  # counts: x'd <= 0 everywhere, = 0 where the count is positive
    # x'd >= 0 on `up` rows and <= 0 on `down` rows (= 0 on rows in both)
    A_ub = np.vstack([-X[up], X[down]])
    b_ub = np.zeros(A_ub.shape[0])
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300)
    bounds = [(-1.0 / s, 1.0 / s) for s in scale]  # |d_j x_ij| <= 1: comparable columns
    out = []
    for j in range(p):
        for sign in (1.0, -1.0):
            c = np.zeros(p)
            c[j] = -sign
            res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
            if res.status == 0 and -res.fun * scale[j] > tol:
                out.append(names[j])
                break
    return out


def saturated(eta: np.ndarray, response: GlmResponse, limit: float = 15.0) -> bool:
    """Whether the linear predictor reaches the range where the likelihood is flat (|eta| > 15 on the logit scale)."""
    eta = np.asarray(eta, dtype=float)
    if response.binomial:
        return bool(np.any(np.abs(eta) > limit))
    return bool(np.any(eta < -limit))
