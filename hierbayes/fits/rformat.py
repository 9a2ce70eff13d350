"""Number formatting as R prints it, so summaries read like lme4's.

* ``format_column``: R's ``format(x, digits = d)`` on a vector -- a common
  number of decimals, the fewest that show every element to ``d``
  significant digits;
* ``coefmat``: R's ``printCoefmat`` for a coefficient table;
* ``format_pval``: R's ``format.pval``;
* ``abbreviate``: R's ``abbreviate`` (drop lower-case vowels, then
  lower-case letters, from the right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _decimals_needed(value: float, digits: int) -> int:
    if value == 0 or not math.isfinite(value):
        return 0
    mag = math.floor(math.log10(abs(value)))
    sig = float(f"{value:.{digits - 1}e}")
    for d in range(0, 16):
        if abs(round(sig, d) - sig) <= 1e-12 * max(1.0, abs(sig)):
            return d
    return max(0, digits - 1 - mag)


def format_column(values: Sequence[float], digits: int = 4, width: int | None = None) -> list[str]:
    """Format numbers with one common number of decimals, right-aligned (R's ``format``)."""
    vals = [float(v) if v is not None else math.nan for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    dec = max((_decimals_needed(v, digits) for v in finite), default=0)
    out = [f"{v:.{dec}f}" if math.isfinite(v) else ("NaN" if v != v else ("Inf" if v > 0 else "-Inf")) for v in vals]
    w = max([len(s) for s in out] + [width or 0])
    return [s.rjust(w) for s in out]


def format_pval(p: float, digits: int = 3, eps: float = 2.220446e-16) -> str:
    """R's ``format.pval``: ``<2e-16`` below machine epsilon."""
    if not math.isfinite(p):
        return "NA"
    if p < eps:
        return "<2e-16"
    return f"{p:.{digits}g}" if p >= 1e-4 else f"{p:.{max(digits - 1, 1)}e}".replace("e-0", "e-0")


def signif_stars(p: float) -> str:
    if not math.isfinite(p):
        return ""
    for cut, star in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return star
    return " "


def abbreviate(name: str, minlength: int) -> str:
    """R's ``abbreviate(name, minlength)`` ("left.kept" method)."""
    chars = list(name)
    if len(chars) <= minlength:
        return name
    chars = [c for i, c in enumerate(chars) if not (c == " " and i > 0)]
    for test in (lambda c: c in "aeiou", lambda c: c.islower(), lambda c: c.isupper()):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if test(chars[i]):
                del chars[i]
            i -= 1
    return "".join(chars[: max(minlength, 1)]) if len(chars) > minlength else "".join(chars)


def coefmat(table: pd.DataFrame, digits: int = 4, stars: bool = True) -> str:
    """Render a coefficient table as R's ``printCoefmat``.

    Estimate and SE (and a df column) share one number of decimals: R rounds
    them to ``max(1, digits - (1 + floor(log10(min |value|))))``. Test
    statistics are rounded to 3 decimals and formatted to ``digits``; p-values
    with ``format.pval``.
    """
    cols = list(table.columns)
    est_cols = [c for c in cols if c in ("Estimate", "Std. Error", "df")]
    test_cols = [c for c in cols if c in ("t value", "z value", "F value")]
    p_cols = [c for c in cols if c.startswith("Pr(")]
    body: dict[str, list[str]] = {}
    cs = [c for c in est_cols if c != "df"]
    acs = np.abs(table[cs].to_numpy(dtype=float)).ravel()
    acs = acs[np.isfinite(acs) & (acs > 0)]
    dec = max(1, digits - (1 + math.floor(math.log10(acs.min())))) if acs.size else 1
    for c in est_cols:
        body[c] = [f"{v:.{dec}f}" if math.isfinite(v) else "NA" for v in table[c].to_numpy(dtype=float)]
    for c in test_cols:
        body[c] = format_column(np.round(table[c].to_numpy(dtype=float), 3), digits)
    for c in p_cols:
        body[c] = [format_pval(float(p)) for p in table[c]]
    for c in cols:
        if c not in body:
            body[c] = format_column(table[c].to_numpy(dtype=float), digits)
    names = [str(i) for i in table.index]
    nw = max(len(n) for n in names)
    widths = {c: max(len(c), *(len(s) for s in body[c])) for c in cols}
    lines = [" " * nw + "".join(" " + c.rjust(widths[c]) for c in cols)]
    show_stars = stars and p_cols
    for r, n in enumerate(names):
        line = n.ljust(nw) + "".join(" " + body[c][r].rjust(widths[c]) for c in cols)
        if show_stars:
            line += " " + signif_stars(float(table[p_cols[0]].iloc[r]))
        lines.append(line.rstrip() if not show_stars else line)
    if show_stars:
        lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    return "\n".join(lines)


def text_table(rows: list[list[str]], header: list[str], left: Sequence[int] = (), indent: str = " ") -> str:
    """Plain aligned text table; columns in ``left`` are left-aligned."""
    widths = [max(len(h), *(len(r[j]) for r in rows)) if rows else len(h) for j, h in enumerate(header)]

    def fmt(cells: list[str]) -> str:
        return indent + " ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt(header).rstrip()] + [fmt(r).rstrip() for r in rows])
