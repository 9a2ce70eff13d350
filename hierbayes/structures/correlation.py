"""Residual correlation structures within groups (nlme's ``corAR1``, ``corCAR1``, ``corCompSymm``).

A structure is given by the user (``hb.corAR1("~ 1 | Mare")``) and bound to
the rows of a design (:meth:`bind`). The bound structure sorts the rows by
group (and position) once; the likelihood then needs, at each value of the
parameter, the *whitened* columns ``W M`` with ``W' W = C^{-1}`` (C the
block-diagonal correlation matrix) and ``log|C|``. Both are computed row-wise
in O(n), never with an n x n matrix:

* AR(1) and continuous-time AR(1) are Markov: row t is whitened as
  ``(m_t - a_t m_{t-1}) / sqrt(1 - a_t^2)`` with ``a_t = Phi^(d_t)``, d_t the
  distance to the previous row of the group (1 for consecutive positions);
  the first row of a group is left as it is (Prais-Winsten).
* Compound symmetry ``C_g = (1 - Rho) I + Rho J`` has the closed-form
  whitening ``(m - a_g mean_g(m)) / sqrt(1 - Rho)`` with
  ``a_g = 1 - sqrt((1 - Rho) / (1 - Rho + m_g Rho))``.

Parameters are optimised on nlme's unconstrained scales (AR(1):
``log((1 + Phi) / (1 - Phi))``; CAR(1): ``logit(Phi)``; compound symmetry:
``log((Rho + 1/(M - 1)) / (1 - Rho))``, M the largest group) and reported on
the natural scale with nlme's names (``Phi``, ``Phi1``, ``Rho``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, DataError
from hierbayes.structures.forms import Form, group_codes, numeric_covariate, parse_form


class Correlation:
    """Base class of the residual correlation structures (see the module docstring)."""

    nlme_class = ""
    label = ""

    def __init__(self, form: str = "~ 1", value: float | None = None):
        self.form: Form = parse_form(form, f"{type(self).__name__}")
        if value is not None and not isinstance(value, (int, float)):
            raise ArgumentError(f"value of {type(self).__name__} must be a number, not {value!r}")
        self.value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.form.text!r})"

    def bind(self, data: pd.DataFrame, default_groups: np.ndarray | None, default_name: str | None) -> BoundCorrelation:
        """The structure on the rows of ``data`` (the model's rows); ``default_groups``: codes for ``~ 1``."""
        raise NotImplementedError  # pragma: no cover - every subclass binds

    def _groups(self, data, default_groups, default_name) -> tuple[np.ndarray, str]:
        if self.form.groups:
            codes, _ = group_codes(data, self.form, repr(self))
            return codes, "/".join(self.form.groups)
        if default_groups is None:
            return np.zeros(len(data), dtype=np.int64), "1"
        return np.asarray(default_groups, dtype=np.int64), str(default_name)


@dataclass(frozen=True)
class BoundCorrelation:
    """A correlation structure on given rows: the sort order and what whitening needs.

    Attributes
    ----------
    spec
        The user's structure.
    order
        Row permutation that sorts the rows by group, then position.
    gcodes
        Group code of each sorted row.
    prev
        For each sorted row, whether the previous sorted row is in the same group.
    lag
        Distance to the previous row of the group (1 without a covariate).
    names
        nlme's names of the parameters.
    """

    spec: Correlation
    order: np.ndarray
    gcodes: np.ndarray
    prev: np.ndarray
    lag: np.ndarray
    names: tuple[str, ...]
    start: np.ndarray
    kind: str
    group_name: str

    @property
    def npar(self) -> int:
        return len(self.names)

    @property
    def positions(self) -> np.ndarray:
        """Position of each sorted row within its group, counted from 0 (the lags summed)."""
        steps = np.where(self.prev, self.lag, 0.0)
        csum = np.cumsum(steps)
        starts = np.flatnonzero(~self.prev)
        base = np.repeat(csum[starts], np.diff(np.r_[starts, len(steps)]))
        return csum - base

    @cached_property
    def patterns(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Distinct within-group position patterns and, for each, the (groups x m) sorted rows that have it."""
        pos = self.positions.astype(np.int64)
        starts = np.flatnonzero(~self.prev)
        found: dict[bytes, tuple[np.ndarray, list[np.ndarray]]] = {}
        for a, b in zip(starts, [*starts[1:], len(pos)], strict=True):
            key = pos[a:b].tobytes()
            found.setdefault(key, (pos[a:b], []))[1].append(np.arange(a, b))
        return [(pattern, np.array(rows)) for pattern, rows in found.values()]

    @property
    def arma_order(self) -> tuple[int, int]:
        """``(p, q)`` of an ARMA structure (its names ``Phi1..Phip``, ``Theta1..Thetaq``)."""
        p = sum(n.startswith("Phi") for n in self.names)
        return p, len(self.names) - p

    def natural(self, u: np.ndarray) -> np.ndarray:
        """Parameters on nlme's natural scale from the unconstrained ones."""
        u = np.asarray(u, float)
        if self.kind == "arma":
            p, _ = self.arma_order
            return np.r_[_pacf_to_coef(np.tanh(u[:p] / 2)), -_pacf_to_coef(np.tanh(u[p:] / 2))]
        if self.kind == "ar1":
            return np.tanh(u / 2)
        if self.kind == "car1":
            return 1.0 / (1.0 + np.exp(-u))
        a = self._cs_a()
        e = np.exp(u)
        return (e - a) / (e + 1.0)

    def unconstrained(self, value) -> np.ndarray:
        if self.kind == "arma":
            p, _ = self.arma_order
            value = np.asarray(value, float)
            r = np.r_[_coef_to_pacf(value[:p]), _coef_to_pacf(-value[p:])]
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(np.abs(r) < 1, np.log((1 + r) / (1 - r)), np.nan)
        if self.kind == "ar1":
            return np.array([np.log((1 + value) / (1 - value))])
        if self.kind == "car1":
            return np.array([np.log(value / (1 - value))])
        a = self._cs_a()
        return np.array([np.log((value + a) / (1 - value))])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Open bounds of the natural parameters (AR(1) (-1, 1), CAR(1) (0, 1), compound symmetry (-1/(m-1), 1))."""
        if self.kind == "arma":  # ARMA(1, q)/(p, 1): the first coefficient's range; higher orders: not a box
            p, q = self.arma_order
            lo = np.r_[np.full(p, -1.0 if p == 1 else -np.inf), np.full(q, -1.0 if q == 1 else -np.inf)]
            return lo, -lo
        lo = {"ar1": -1.0, "car1": 0.0}.get(self.kind)
        return np.array([-self._cs_a() if lo is None else lo]), np.array([1.0])

    def _cs_a(self) -> float:
        m = np.bincount(self.gcodes).max()
        return 1.0 / (m - 1) if m > 1 else 1.0

    def whiten(self, M: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
        """``W M`` (rows in sorted order) and ``log|C|`` at the unconstrained parameters ``u``."""
        if self.kind == "arma":
            return _arma_apply(self, M, u, "whiten")
        phi = float(self.natural(u)[0])
        if self.kind in ("ar1", "car1"):
            if self.kind == "car1" or np.any(self.lag != 1):
                a = np.where(self.prev, np.sign(phi) ** self.lag * np.abs(phi) ** self.lag, 0.0)
            else:
                a = np.where(self.prev, phi, 0.0)
            s2 = 1.0 - a * a
            if np.any(s2 <= 0):
                return M * np.nan, np.inf
            s = np.sqrt(s2)
            out = M.copy()
            out[1:] -= a[1:, None] * M[:-1]
            out /= s[:, None]
            return out, float(np.log(s2).sum())
        # compound symmetry
        m = np.bincount(self.gcodes).astype(float)
        if not (1 - phi > 0 and np.all(1 + (m - 1) * phi > 0)):
            return M * np.nan, np.inf
        ag = 1.0 - np.sqrt((1 - phi) / (1 - phi + m * phi))
        means = np.zeros((len(m), M.shape[1]))
        np.add.at(means, self.gcodes, M)
        means /= m[:, None]
        out = (M - ag[self.gcodes, None] * means[self.gcodes]) / np.sqrt(1 - phi)
        logdet = float(((m - 1) * np.log(1 - phi) + np.log(1 + (m - 1) * phi)).sum())
        return out, logdet


def correlate(bound: BoundCorrelation, Z: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``W^{-1} Z`` for the whitening ``W`` of :meth:`BoundCorrelation.whiten` (sorted rows).

    For independent standard normal columns ``Z`` the result has the
    correlation ``C`` within each group (``cov(W^{-1} z) = (W'W)^{-1}``): how
    simulate draws correlated residuals. AR(1)/CAR(1) run the recursion
    ``e_i = s_i z_i + a_i e_{i-1}`` over the positions of all groups at once;
    compound symmetry inverts the group-mean shrinkage. O(n), no n x n matrix.
    """
    Z = np.asarray(Z, float)
    if bound.kind == "arma":
        return _arma_apply(bound, Z, u, "correlate")[0]
    phi = float(bound.natural(u)[0])
    if bound.kind in ("ar1", "car1"):
        a = np.where(bound.prev, np.sign(phi) ** bound.lag * np.abs(phi) ** bound.lag, 0.0)
        s = np.sqrt(1.0 - a * a)
        starts = np.flatnonzero(~bound.prev)
        pos = np.arange(len(Z)) - np.repeat(starts, np.diff(np.r_[starts, len(Z)]))
        out = np.empty_like(Z)
        for k in range(int(pos.max()) + 1 if len(pos) else 0):
            rows = np.flatnonzero(pos == k)
            out[rows] = s[rows, None] * Z[rows] if k == 0 else s[rows, None] * Z[rows] + a[rows, None] * out[rows - 1]
        return out
    m = np.bincount(bound.gcodes).astype(float)
    ag = 1.0 - np.sqrt((1 - phi) / (1 - phi + m * phi))
    means = np.zeros((len(m), Z.shape[1]))
    np.add.at(means, bound.gcodes, Z)
    means /= m[:, None]
    return np.sqrt(1 - phi) * (Z + (ag / (1 - ag))[bound.gcodes, None] * means[bound.gcodes])


def cholesky_whiten(bound: BoundCorrelation, M: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The whitening nlme's normalized residuals use (its ``corFactor``).

    AR(1) and CAR(1): the whitening of :meth:`BoundCorrelation.whiten`
    (the inverse Cholesky factor). Compound symmetry: nlme's Helmert basis,
    row 0 the group sum over ``sqrt(m (1 + (m - 1) Rho))``, row i the
    contrast of element i with the earlier ones over ``sqrt((1 - Rho) i (i + 1))``.
    """
    if bound.kind != "cs":
        return bound.whiten(M, u)[0]
    rho = float(bound.natural(u)[0])
    out = np.empty_like(M)
    starts = np.flatnonzero(~bound.prev)
    for a, b in zip(starts, [*starts[1:], len(M)], strict=True):
        m = b - a
        H = np.zeros((m, m))
        H[0] = 1.0 / np.sqrt(m * (1 + (m - 1) * rho))
        for i in range(1, m):
            c = -1.0 / np.sqrt((1 - rho) * i * (i + 1))
            H[i, :i] = c
            H[i, i] = -i * c
        out[a:b] = H @ M[a:b]
    return out


def _pacf_to_coef(r: np.ndarray) -> np.ndarray:
    """AR coefficients from partial autocorrelations in (-1, 1) (Durbin-Levinson): a stationary AR polynomial."""
    phi = np.zeros(0)
    for k, rk in enumerate(np.asarray(r, float)):
        phi = np.r_[phi - rk * phi[::-1], rk] if k else np.array([rk])
    return phi


def _coef_to_pacf(phi: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_pacf_to_coef` (NaN where the polynomial is not stationary)."""
    phi = np.asarray(phi, float).copy()
    r = np.zeros(len(phi))
    for k in range(len(phi) - 1, -1, -1):
        rk = phi[k]
        r[k] = rk
        if abs(rk) >= 1:
            return np.full(len(r), np.nan)
        phi = (phi[:k] + rk * phi[:k][::-1]) / (1 - rk * rk)
    return r


def arma_acf(phi: np.ndarray, theta: np.ndarray, lag_max: int) -> np.ndarray:
    """Autocorrelations 0..lag_max of ``x_t = sum phi_i x_{t-i} + a_t + sum theta_j a_{t-j}`` (R's ``ARMAacf``).

    The autocovariances ``g_0..g_p`` solve ``g_k - sum_i phi_i g_|k-i| = c_k``
    (``c_k = sum_{j>=k} theta_j psi_{j-k}``, psi the MA(infinity) weights);
    later lags follow the recursion.

    Examples
    --------
    >>> np.round(arma_acf(np.array([0.5]), np.array([]), 3), 4).tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    phi, theta = np.asarray(phi, float), np.asarray(theta, float)
    p, q = len(phi), len(theta)
    th = np.r_[1.0, theta]
    psi = np.zeros(q + 1)
    for j in range(q + 1):
        psi[j] = th[j] + sum(phi[i - 1] * psi[j - i] for i in range(1, min(j, p) + 1))
    c = np.array([sum(th[j] * psi[j - k] for j in range(k, q + 1)) for k in range(max(p, q) + 1)])
    n = max(lag_max, p, q) + 1
    g = np.zeros(n)
    if p:
        A = np.eye(p + 1)
        for k in range(p + 1):
            for i in range(1, p + 1):
                A[k, abs(k - i)] -= phi[i - 1]
        g[: p + 1] = np.linalg.solve(A, c[: p + 1])
    else:
        g[0] = c[0]
    for k in range(p + 1, n):
        g[k] = sum(phi[i - 1] * g[k - i] for i in range(1, p + 1)) + (c[k] if k < len(c) else 0.0)
    return g[: lag_max + 1] / g[0]


def _arma_apply(bound: BoundCorrelation, M: np.ndarray, u: np.ndarray, how: str) -> tuple[np.ndarray, float]:
    """ARMA's whitening (``L_g^{-1} M_g``) or correlation (``L_g Z_g``) per group, and ``log|C|``.

    ``C_g`` is the Toeplitz matrix of the ARMA autocorrelations at the group's
    positions. Groups with the same positions (equal-length groups without
    gaps) share one factor and are transformed together, so the cost is
    O(sum over distinct patterns of m^3) plus O(n m) for the products: no n x n matrix.
    """
    p, _ = bound.arma_order
    coef = bound.natural(u)
    if not np.all(np.isfinite(coef)):
        return M * np.nan, np.inf
    pos = bound.positions
    acf = arma_acf(coef[:p], coef[p:], int(pos.max()) if len(pos) else 0)
    out = np.empty(M.shape, dtype=float)
    logdet = 0.0
    for pattern, rows in bound.patterns:
        C = acf[np.abs(pattern[:, None] - pattern[None, :])]
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return M * np.nan, np.inf
        T = np.linalg.inv(L) if how == "whiten" else L  # (m x m); numpy's LAPACK, small
        logdet += rows.shape[0] * float(2 * np.log(np.diag(L)).sum())
        X = M[rows]  # (groups, m, k): one product for all groups with this pattern
        g, m, k = X.shape
        out[rows] = (T @ X.transpose(1, 0, 2).reshape(m, g * k)).reshape(m, g, k).transpose(1, 0, 2)
    return out, logdet


def _sorted(gcodes: np.ndarray, position: np.ndarray) -> np.ndarray:
    return np.lexsort((position, gcodes))


def _prev(gs: np.ndarray) -> np.ndarray:
    prev = np.zeros(len(gs), dtype=bool)
    prev[1:] = gs[1:] == gs[:-1]
    return prev


def _ordered_positions(
    corr: Correlation, data, default_groups, default_name, what: str, integer: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The rows in order of group and position (the form's covariate, else the row order), the group code of
    each ordered row, its lag to the row before it in its group (1 for a group's first row) and the group's name.

    ``what`` names the covariate in errors ("position", "time"); ``integer`` requires integer positions.
    """
    where = repr(corr)
    g, gname = corr._groups(data, default_groups, default_name)
    if corr.form.covariate is None:
        order = _sorted(g, np.arange(len(data), dtype=float))
        return order, g[order], np.ones(len(data)), gname
    pos = numeric_covariate(data, corr.form, where)
    if integer and np.any(pos != np.round(pos)):
        raise DataError(
            f"the positions {corr.form.covariate!r} of {where} must be integers (use corCAR1 for continuous time)"
        )
    order = _sorted(g, pos)
    ps, gs = pos[order], g[order]
    d = np.diff(ps, prepend=np.nan)
    dup = _prev(gs) & (d == 0)
    if dup.any():
        i = order[np.flatnonzero(dup)[0]]
        raise DataError(
            f"the {what} {corr.form.covariate!r} of {where} is duplicated within a group: "
            f"value {pos[i]:g} occurs twice in group {gname} (row {i + 1} of the model's rows)"
        )
    return order, gs, np.where(_prev(gs), d, 1.0), gname


class corAR1(Correlation):
    """nlme's ``corAR1``: AR(1) correlation ``Phi^|i - j|`` within groups.

    ``"~ 1 | g"``: positions are the order of the rows within each group.
    ``"~ t | g"``: integer positions t (unique within a group); with gaps
    between them the correlation is ``Phi^|t_i - t_j|`` and, as nlme (which
    then stores the structure as ``corARMA(p = 1)``), the parameter is named
    ``Phi1``. Without ``| g`` the groups are those of the innermost
    random-effects term.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.corAR1("~ 1 | Mare")
    corAR1('~ 1 | Mare')
    """

    nlme_class = "corAR1"
    label = "AR(1)"

    def bind(self, data, default_groups=None, default_name=None) -> BoundCorrelation:
        order, gs, lag, gname = _ordered_positions(self, data, default_groups, default_name, "position", True)
        names = ("Phi1",) if np.any(lag[_prev(gs)] != 1) else ("Phi",)  # gaps: nlme's corARMA(p = 1) name
        _check_value(self, -1.0, 1.0)
        start = np.array([np.log((1 + (self.value or 0.0)) / (1 - (self.value or 0.0)))])
        return BoundCorrelation(self, order, gs, _prev(gs), lag, names, start, "ar1", gname)


class corARMA(Correlation):
    """nlme's ``corARMA(p=, q=)``: ARMA(p, q) correlation within groups, at integer positions.

    ``x_t = Phi1 x_{t-1} + ... + Phip x_{t-p} + a_t + Theta1 a_{t-1} + ... + Thetaq a_{t-q}``;
    the correlation of rows at positions s and t of a group is the ARMA
    autocorrelation at lag ``|s - t|`` (R's ``ARMAacf``). Forms as
    :class:`corAR1`: ``"~ 1 | g"`` (row order within groups) or ``"~ t | g"``
    (integer positions, gaps allowed). The parameters are estimated on
    the partial-autocorrelation scale (stationary AR and invertible MA
    parts, as nlme); ``residual_params`` gives ``Phi1..``, ``Theta1..`` as nlme prints them.
    Each group's correlation matrix is m x m (m its rows), factored once
    per distinct pattern of positions.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.corARMA("~ 1 | Mare", p=1, q=1)
    corARMA('~ 1 | Mare', p=1, q=1)
    """

    nlme_class = "corARMA"

    def __init__(self, form: str = "~ 1", p: int = 0, q: int = 0, value=None):
        for name, v in (("p", p), ("q", q)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ArgumentError(f"{name} of corARMA must be a whole number >= 0, not {v!r}")
        if p + q == 0:
            raise ArgumentError("corARMA needs p > 0 or q > 0 (p=0, q=0 is no correlation: leave correlation= out)")
        if value is not None:
            value = np.atleast_1d(np.asarray(value, float))
            if len(value) != p + q:
                raise ArgumentError(f"value of corARMA must have p + q = {p + q} numbers, not {len(value)}")
        self.form = parse_form(form, "corARMA")
        self.p, self.q, self.value = int(p), int(q), value

    @property
    def label(self) -> str:
        return f"ARMA({self.p},{self.q})"

    def __repr__(self) -> str:
        return f"corARMA({self.form.text!r}, p={self.p}, q={self.q})"

    def bind(self, data, default_groups=None, default_name=None) -> BoundCorrelation:
        order, gs, lag, gname = _ordered_positions(self, data, default_groups, default_name, "position", True)
        names = tuple(f"Phi{i + 1}" for i in range(self.p)) + tuple(f"Theta{j + 1}" for j in range(self.q))
        bound = BoundCorrelation(self, order, gs, _prev(gs), lag, names, np.zeros(self.p + self.q), "arma", gname)
        if self.value is not None:
            start = bound.unconstrained(self.value)
            if not np.all(np.isfinite(start)):
                raise ArgumentError(f"value of {self!r} is not a stationary, invertible ARMA: {self.value.tolist()}")
            bound = dataclasses.replace(bound, start=start)
        return bound


class corCAR1(Correlation):
    """nlme's ``corCAR1``: continuous-time AR(1), correlation ``Phi^|t_i - t_j|`` within groups (0 < Phi < 1).

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.corCAR1("~ Time | Rat")
    corCAR1('~ Time | Rat')
    """

    nlme_class = "corCAR1"
    label = "Continuous AR(1)"

    def bind(self, data, default_groups=None, default_name=None) -> BoundCorrelation:
        order, gs, lag, gname = _ordered_positions(self, data, default_groups, default_name, "time", False)
        v = 0.2 if self.value is None else self.value
        _check_value(self, 0.0, 1.0)
        return BoundCorrelation(
            self, order, gs, _prev(gs), lag, ("Phi",), np.array([np.log(v / (1 - v))]), "car1", gname
        )


class corCompSymm(Correlation):
    """nlme's ``corCompSymm``: equal correlation Rho between any two rows of a group.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hb.corCompSymm("~ 1 | Dog/Side")
    corCompSymm('~ 1 | Dog/Side')
    """

    nlme_class = "corCompSymm"
    label = "Compound symmetry"

    def bind(self, data, default_groups=None, default_name=None) -> BoundCorrelation:
        if self.form.covariate is not None:
            raise ArgumentError(f"the form of {self!r} takes no covariate: use '~ 1 | group'")
        g, gname = self._groups(data, default_groups, default_name)
        order = np.argsort(g, kind="stable")
        gs = g[order]
        bound = BoundCorrelation(self, order, gs, _prev(gs), np.ones(len(g)), ("Rho",), np.zeros(1), "cs", gname)
        if np.bincount(gs).max() < 2:
            raise DataError(f"every group of {self!r} has a single row: there is no correlation to estimate")
        _check_value(self, -bound._cs_a(), 1.0)
        v = 0.0 if self.value is None else self.value
        return BoundCorrelation(
            self, order, gs, _prev(gs), np.ones(len(g)), ("Rho",), bound.unconstrained(v), "cs", gname
        )


def _check_value(spec: Correlation, lo: float, hi: float) -> None:
    if spec.value is not None and not lo < spec.value < hi:
        raise ArgumentError(f"value of {spec!r} must lie in ({lo:g}, {hi:g}), not {spec.value!r}")
