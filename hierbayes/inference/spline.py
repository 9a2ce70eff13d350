"""R's interpolating splines for profiles: ``interpSpline``, ``backSpline``, ``predict``.

lme4 turns each profile into a natural cubic interpolating spline of zeta in
the parameter and inverts it with ``splines::backSpline``: a piecewise cubic
in zeta that matches the parameter values and the inverse slopes at the
knots (quadratic on the end intervals). Confidence limits are that inverse
evaluated at normal quantiles; outside the profiled range it is NaN (R's NA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline


@dataclass(frozen=True)
class PolySpline:
    """A piecewise polynomial in R's ``polySpline`` form.

    Attributes
    ----------
    knots
        Increasing knots.
    coef
        Row i: coefficients of ``(x - knots[i])^0..3`` on ``(knots[i], knots[i + 1]]``.
    """

    knots: np.ndarray
    coef: np.ndarray

    def __call__(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        k = self.knots
        i = np.searchsorted(k, x, side="left") - 1  # R's cut(): intervals (k_i, k_{i+1}]
        i = np.where(x == k[0], 0, i)
        ok = (i >= 0) & (i < len(k) - 1) & np.isfinite(x)
        out = np.full(x.shape, np.nan)
        ii = i[ok]
        dx = x[ok] - k[ii]
        c = self.coef[ii]
        out[ok] = c[:, 0] + dx * (c[:, 1] + dx * (c[:, 2] + dx * c[:, 3]))
        return out


def interp_spline(x: np.ndarray, y: np.ndarray) -> PolySpline:
    """Natural cubic interpolating spline of y in x (``splines::interpSpline``)."""
    order = np.argsort(x)
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    if len(x) < 4:
        raise ValueError("must have at least 'ord'=4 points")
    if np.any(np.diff(x) <= 0):
        raise ValueError("values of 'x' must be distinct")
    cs = CubicSpline(x, y, bc_type="natural")
    coef = np.column_stack([y, cs(x, 1), cs(x, 2) / 2, np.r_[cs.c[0], 0.0]])
    coef[0, 2] = coef[-1, 2] = 0.0
    return PolySpline(x, coef)


def back_spline(sp: PolySpline) -> PolySpline:
    """The inverse of a monotone interpolating spline (``splines::backSpline``)."""
    knots, coeff = sp.knots, sp.coef
    nk = len(knots)
    kdiff = np.diff(knots)
    bknots = coeff[:, 0]
    adiff = np.diff(bknots)
    if np.all(adiff < 0):
        rev = True
    elif np.all(adiff > 0):
        rev = False
    else:
        raise ValueError("spline must be monotone")
    b = np.zeros_like(coeff)
    b[:, 0] = knots
    b[:, 1] = 1 / coeff[:, 1]
    for i in range(nk - 1):
        a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
        rhs = np.array([kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
        b[i, 2:4] = np.linalg.solve(a, rhs)
    b[-1, 1:] = np.nan
    if nk > 2:
        m = nk - 2
        b[0, 3] = b[m, 3] = 0.0
        a = np.array([[adiff[0], adiff[0] ** 2], [1.0, 2 * adiff[0]]])
        b[0, 1:3] = np.linalg.solve(a, [kdiff[0], 1 / coeff[1, 1]])
        b[m, 2] = (kdiff[m] - adiff[m] * b[m, 1]) / adiff[m] ** 2
    m = nk - 2
    if b[0, 2] > 0:
        b[0, 2] = 0.0
        b[0, 1] = kdiff[0] / adiff[0]
    if b[m, 2] < 0:
        b[m, 2] = 0.0
        b[m, 1] = kdiff[m] / adiff[m]
    if rev:
        return PolySpline(bknots[::-1].copy(), b[::-1].copy())
    return PolySpline(bknots.copy(), b)
