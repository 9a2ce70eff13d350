"""Multiplicity adjustments of p-values and confidence levels, as R's emmeans 1.8 makes them.

Within a family of tests (the contrasts of one ``by`` group):

* ``"tukey"``: the studentized range, ``P(Q > sqrt(2) |t|)`` with the family's
  number of means (emmeans' ``ptukey(sqrt(2) * abs(t), fam.size, zapsmall(df))``);
  only for one set of pairwise comparisons; for other contrasts emmeans
  changes it to ``"sidak"`` with a note, and so does this module;
* ``"sidak"``: ``1 - (1 - p)^m``; ``"bonferroni"``: ``min(1, m p)``;
* ``"dunnettx"``: emmeans' approximation to Dunnett's distribution, a
  weighted mean of the Tukey and Sidak probabilities (weights ``(m-1)/m``, ``1/m``);
* ``"holm"``, ``"hochberg"``, ``"fdr"``/``"BH"``, ``"BY"``: R's ``p.adjust`` within the family;
* ``"none"``.

One contrast per family needs no adjustment. For intervals, emmeans uses the
Bonferroni level for the step-down and false-discovery methods (``holm``,
``fdr``, ...), which have no simultaneous intervals. The studentized range
comes from :data:`scipy.stats.studentized_range` (its values agree with R's
``ptukey``/``qtukey`` to about 1e-10; R's own ``ptukey`` is accurate only to
about 1e-12 absolute, which matters for p-values below 1e-8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from hierbayes.errors import ArgumentError

#: adjustments with a simultaneous critical value
SINGLE_STEP = ("tukey", "sidak", "bonferroni", "dunnettx", "none")
#: R's p.adjust methods (stepwise: intervals use Bonferroni's level)
P_ADJUST = ("holm", "hochberg", "bonferroni", "BH", "BY", "fdr", "none")
METHODS = ("tukey", "sidak", "bonferroni", "dunnettx", "holm", "hochberg", "fdr", "BH", "BY", "none")


def method_name(adjust: str | None) -> str:
    """The canonical name of an adjustment (case-insensitive; ``"fdr"`` computes as ``"BH"``), or an ArgumentError."""
    if adjust is None:
        return "none"
    key = str(adjust).strip()
    low = key.lower()
    for m in METHODS:
        if m.lower() == low:
            return m
    raise ArgumentError(f"adjust must be one of {', '.join(METHODS)}, not {adjust!r}")


@dataclass(frozen=True)
class Family:
    """The tests adjusted together: ``rows`` of one ``by`` group.

    Attributes
    ----------
    rows
        Positions of the family's rows in the table.
    size
        emmeans' ``famSize``: the number of means compared (Tukey's range).
    """

    rows: np.ndarray
    size: int


def zapsmall(x: np.ndarray, digits: int = 7, keep_inf: bool = False) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest absolute value.

    With ``keep_inf``, an infinite value counts as R counts it: the largest is
    infinite, so every value is rounded to a whole number.
    """
    x = np.asarray(x, dtype=float)
    present = x[~np.isnan(x)] if keep_inf else x[np.isfinite(x)]
    mx = np.max(np.abs(present)) if present.size else 0.0
    if not mx > 0:
        return x
    if np.isinf(mx):
        return np.round(x)
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _ptukey_upper(q: np.ndarray, nmeans: float, df: np.ndarray) -> np.ndarray:
    q, df = np.broadcast_arrays(np.asarray(q, float), np.asarray(df, float))
    out = np.empty(q.shape)
    for i, (qq, d) in enumerate(zip(q.ravel(), df.ravel(), strict=True)):
        out.flat[i] = 1.0 if qq <= 0 else float(stats.studentized_range.sf(qq, nmeans, d))
    return out


def _pdunnx(x: np.ndarray, k: int, df: np.ndarray) -> np.ndarray:
    """emmeans' ``.pdunnx``: P(max |t| < x) for k comparisons with a control, approximately."""
    twt = (k - 1) / k
    tukey = 1.0 - _ptukey_upper(np.sqrt(2) * x, (1 + np.sqrt(1 + 8 * k)) / 2, df)
    x2, df = np.broadcast_arrays(np.asarray(x, float) ** 2, np.asarray(df, float))
    sidak = np.where(np.isinf(df), stats.chi2.cdf(x2, 1), stats.f.cdf(x2, 1, np.where(np.isinf(df), 1.0, df))) ** k
    return twt * tukey + (1 - twt) * sidak


def p_adjust(p: np.ndarray, method: str, n: int | None = None) -> np.ndarray:
    """R's ``p.adjust(p, method, n)`` (``holm``, ``hochberg``, ``bonferroni``, ``BH``/``fdr``, ``BY``, ``none``).

    Missing p-values stay missing; ``n`` (the family size, at least the number
    of p-values present) defaults to that number, as in R.

    Examples
    --------
    >>> p_adjust(np.array([0.01, 0.04, 0.03]), "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    lp = len(q)
    n = lp if n is None else int(n)
    if n < lp:
        raise ArgumentError(f"p_adjust: n = {n} is smaller than the number of p-values ({lp})")
    if n <= 1 or method == "none" or lp == 0:
        out[ok] = q
        return out
    if method == "bonferroni":
        adj = np.minimum(1.0, n * q)
    elif method == "holm":
        i = np.arange(1, lp + 1)
        o = np.argsort(q, kind="stable")
        adj = np.empty(lp)
        adj[o] = np.minimum(1.0, np.maximum.accumulate((n + 1 - i) * q[o]))
    elif method in ("hochberg", "BH", "fdr", "BY"):
        i = np.arange(lp, 0, -1)
        o = np.argsort(-q, kind="stable")
        if method == "hochberg":
            scaled = (n + 1 - i) * q[o]
        else:
            c = np.sum(1.0 / np.arange(1, n + 1)) if method == "BY" else 1.0
            scaled = c * n / i * q[o]
        adj = np.empty(lp)
        adj[o] = np.minimum(1.0, np.minimum.accumulate(scaled))
    else:
        raise ArgumentError(f"unknown p-value adjustment {method!r}")
    out[ok] = adj
    return out


def effective_method(adjust: str, pairs: bool, n_tests: int) -> tuple[str, str | None]:
    """The method emmeans applies, and its note when it changes the one asked for."""
    if n_tests <= 1:
        return "none", None
    if adjust == "tukey" and not pairs:
        return "sidak", (
            'Note: adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate for one set of '
            "pairwise comparisons"
        )
    return adjust, None


def adjusted_p(t: np.ndarray, df: np.ndarray, adjust: str, families: list[Family], pairs: bool) -> np.ndarray:
    """Two-sided p-values of t (or z, df = inf) ratios, adjusted within each family."""
    t = np.asarray(t, dtype=float)
    df = np.where(np.isnan(df), np.inf, np.asarray(df, dtype=float))  # emmeans: DF[is.na(DF)] = Inf
    raw = 2 * stats.t.sf(np.abs(t), df)
    out = raw.copy()
    # emmeans zaps the df of every row together, an infinite one (a non-estimable row) included: then
    # R's zapsmall rounds them all to whole numbers
    zapped = zapsmall(df, keep_inf=True)
    for fam in families:
        rows = fam.rows
        m = len(rows)
        method, _ = effective_method(adjust, pairs, m)
        if method == "none":
            continue
        if method in P_ADJUST:
            out[rows] = p_adjust(raw[rows], method, n=m)
        elif method == "sidak":
            out[rows] = 1 - (1 - raw[rows]) ** m
        elif method == "tukey":
            out[rows] = _ptukey_upper(np.sqrt(2) * np.abs(t[rows]), fam.size, zapped[rows])
        elif method == "dunnettx":
            out[rows] = 1 - _pdunnx(np.abs(t[rows]), m, df[rows])
    return out


def critical_values(level: float, df: np.ndarray, adjust: str, families: list[Family], pairs: bool) -> np.ndarray:
    """Two-sided critical values of simultaneous intervals at ``level`` (emmeans' ``.adj.critval``)."""
    df = np.where(np.isnan(df), np.inf, np.asarray(df, dtype=float))
    out = np.empty(len(df))
    cache: dict = {}
    for fam in families:
        rows = fam.rows
        m = len(rows)
        method, _ = effective_method(adjust, pairs, m)
        if method not in SINGLE_STEP:
            method = "bonferroni"
        for r in rows:
            key = (method, m, fam.size, float(df[r]))
            if key not in cache:
                cache[key] = _critval(level, df[r], method, m, fam.size)
            out[r] = cache[key]
    return out


def _critval(level: float, df: float, method: str, m: int, size: int) -> float:
    if method == "none":
        return float(stats.t.ppf(1 - (1 - level) / 2, df))
    if method == "sidak":
        return float(stats.t.ppf(1 - (1 - level ** (1 / m)) / 2, df))
    if method == "bonferroni":
        return float(stats.t.ppf(1 - (1 - level) / m / 2, df))
    if method == "tukey":
        return float(stats.studentized_range.ppf(level, size, df) / np.sqrt(2))
    # dunnettx: emmeans' .qdunnx, the root of .pdunnx(x) = level between the Tukey and Sidak values
    xtuk = float(stats.studentized_range.ppf(level, (1 + np.sqrt(1 + 8 * m)) / 2, df) / np.sqrt(2))
    p = level ** (1 / m)
    xsid = float(np.sqrt(stats.chi2.ppf(p, 1) if np.isinf(df) else stats.f.ppf(p, 1, df)))
    if abs(xtuk - xsid) < 5e-4:
        return xtuk
    lo, hi = min(xtuk, xsid), max(xtuk, xsid)
    return float(optimize.brentq(lambda x: _pdunnx(np.array([x]), m, np.array([df]))[0] - level, lo, hi,
                                 xtol=1e-10))  # fmt: skip


def adjustment_message(adjust: str, families: list[Family], pairs: bool, what: str = "P value") -> str | None:
    """emmeans' line about the adjustment ("P value adjustment: tukey method for comparing a family of 4 estimates")."""
    if not families:
        return None
    m = max(len(f.rows) for f in families)
    size = families[0].size
    method, _ = effective_method(adjust, pairs, m)
    if what != "P value" and method not in SINGLE_STEP:
        method = "bonferroni"
    if method == "none" or (size < 3 and method in ("tukey",)):
        return None
    noun = "tests" if what == "P value" else "estimates"
    extra = f"for comparing a family of {size} estimates" if method == "tukey" else f"for {m} {noun}"
    label = "P value adjustment" if what == "P value" else "Conf-level adjustment"
    return f"{label}: {method} method {extra}"
