"""Numerical derivatives with Richardson extrapolation (R's numDeriv).

lmerTest takes the Hessian of the deviance and the Jacobian of vcov(beta)
with ``numDeriv::hessian`` and ``numDeriv::jacobian``. These are the same
algorithms with the same defaults: central differences at steps
``h0 = d |x| + eps [|x| < zero_tol]`` halved ``r - 1`` times, combined by
Richardson extrapolation (``d = 1e-4``, ``eps = 1e-4``, ``r = 4``, ``v = 2``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

D_REL = 1e-4
EPS = 1e-4
ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
R_STEPS = 4


def _steps(x: np.ndarray, d: float = D_REL) -> np.ndarray:
    return np.abs(d * x) + EPS * (np.abs(x) < ZERO_TOL)


def _richardson(a: np.ndarray) -> np.ndarray:
    """Extrapolate along axis 0 (successive halvings of the step)."""
    a = np.array(a, dtype=float)
    for m in range(1, R_STEPS):
        a = (a[1:] * 4**m - a[:-1]) / (4**m - 1)
    return a[0]


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, d: float = D_REL) -> np.ndarray:
    """Hessian of a scalar function (``numDeriv::hessian``, Richardson method).

    Examples
    --------
    >>> import numpy as np
    >>> hessian(lambda v: v[0] ** 2 * v[1], np.array([1.0, 2.0])).round(4).tolist()
    [[4.0, 2.0], [2.0, 0.0]]
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    f0 = fun(x)
    h0 = _steps(x, d)
    hdiag = np.empty(n)
    for i in range(n):
        approx = []
        h = h0.copy()
        for _ in range(R_STEPS):
            e = np.zeros(n)
            e[i] = h[i]
            approx.append((fun(x + e) - 2 * f0 + fun(x - e)) / h[i] ** 2)
            h = h / 2
        hdiag[i] = _richardson(approx)
    H = np.diag(hdiag)
    for i in range(n):
        for j in range(i):
            approx = []
            h = h0.copy()
            for _ in range(R_STEPS):
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                num = fun(x + e) - 2 * f0 + fun(x - e) - hdiag[i] * h[i] ** 2 - hdiag[j] * h[j] ** 2
                approx.append(num / (2 * h[i] * h[j]))
                h = h / 2
            H[i, j] = H[j, i] = _richardson(approx)
    return H


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, d: float = D_REL) -> np.ndarray:
    """Jacobian of a vector function, shape (len(f), len(x)) (``numDeriv::jacobian``).

    Examples
    --------
    >>> import numpy as np
    >>> jacobian(lambda v: np.array([v[0] * v[1], v[1] ** 2]), np.array([2.0, 3.0])).round(6).tolist()
    [[3.0, 2.0], [0.0, 6.0]]
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    h = _steps(x, d)
    cols = []
    for i in range(n):
        approx = []
        hi = h[i]
        for _ in range(R_STEPS):
            e = np.zeros(n)
            e[i] = hi
            approx.append((np.asarray(fun(x + e), float) - np.asarray(fun(x - e), float)) / (2 * hi))
            hi = hi / 2
        cols.append(_richardson(np.array(approx)))
    return np.column_stack(cols)
