"""``Comparison``: the DataFrame of :func:`hierbayes.tables`, printed like a paper's table."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

DASH = "—"


class Comparison:
    """Parameters of several fits side by side.

    Attributes
    ----------
    frame
        The DataFrame: index (effect, group, term); columns (fit label, statistic).
    labels
        The fits' labels, in column order.
    prob
        Probability of the intervals.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> print(hb.compare(fit).to_markdown().splitlines()[0])
    | Parameter | REML estimate | REML 95% interval |
    """

    def __init__(self, frame: pd.DataFrame, labels: list[str], prob: float, engines: list[str]):
        self.frame = frame
        self.labels = list(labels)
        self.prob = prob
        self.engines = list(engines)

    # --- the cells, shared by every rendering -----------------------------------------------------
    def _header(self) -> list[tuple[str, list[str]]]:
        pct = f"{100 * self.prob:g}%"
        out = []
        for label, eng in zip(self.labels, self.engines, strict=True):
            if eng == "bayes":
                out.append((label, ["mean", "median", f"{pct} CrI"]))
            else:
                out.append((label, ["estimate", f"{pct} interval"]))
        return out

    def _rows(self) -> list[tuple[str, str, list[str]]]:
        """(section, parameter label, cells) per row."""
        rows = []
        for key in self.frame.index:
            effect, group, term = key
            r = self.frame.loc[key]
            vals = [r[(lab, s)] for lab in self.labels for s in ("estimate", "conf.low", "conf.high")]
            dec = _decimals([v for v in vals if isinstance(v, float | np.floating)])
            cells = []
            for lab, eng in zip(self.labels, self.engines, strict=True):
                est = _num(r[(lab, "estimate")], dec)
                ci = _interval(r[(lab, "conf.low")], r[(lab, "conf.high")], dec)
                cells += [est, _num(r[(lab, "median")], dec), ci] if eng == "bayes" else [est, ci]
            section = "Fixed effects" if effect == "fixed" else group
            rows.append((section, _param_label(effect, group, term), cells))
        return rows

    def notes(self) -> list[str]:
        """How each fit's intervals were made (e.g. 'REML: fixed effects Wald; SDs and correlations none')."""
        out = []
        for lab, eng in zip(self.labels, self.engines, strict=True):
            if eng == "bayes":
                out.append(f"{lab}: posterior mean and median, equal-tailed credible intervals (CrI)")
                continue
            how = self.frame[(lab, "interval")]
            effect = self.frame.index.get_level_values("effect")
            fixed = sorted(set(how[effect == "fixed"]) - {"absent"})
            ranp = sorted(set(how[effect != "fixed"]) - {"absent"})
            text = (
                f"{lab}: fixed effects {'/'.join(fixed) or DASH}; SDs, correlations and sigma {'/'.join(ranp) or DASH}"
            )
            if ranp == ["none"]:
                text += " (use intervals='profile' or 'boot' for them)"
            out.append(text)
        return out

    # --- renderings ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        header, rows = self._header(), self._rows()
        ncell = sum(len(c) for _, c in header)
        widths = [0] * ncell
        for _, _, cells in rows:
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
        i = 0
        for _, cols in header:
            for c in cols:
                widths[i] = max(widths[i], len(c))
                i += 1
        first = max([len(label) + 2 for _, label, _ in rows] + [len(s) for s, _, _ in rows] + [9])
        top, sub, i = " " * first, " " * first, 0
        for label, cols in header:
            span = sum(widths[i : i + len(cols)]) + 2 * len(cols)
            top += "  " + label.center(span - 2)
            sub += "".join("  " + c.rjust(widths[i + j]) for j, c in enumerate(cols))
            i += len(cols)
        lines = [top.rstrip(), sub, "-" * len(sub)]
        section = None
        for sec, label, cells in rows:
            if sec != section:
                lines.append(sec)
                section = sec
            lines.append(("  " + label).ljust(first) + "".join("  " + c.rjust(w) for c, w in zip(cells, widths)))
        lines.append("-" * len(sub))
        lines += self.notes()
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_markdown(self) -> str:
        """A Markdown table (for reports)."""
        cols = ["Parameter"] + [f"{lab} {c}" for lab, cs in self._header() for c in cs]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
        for sec, label, cells in self._rows():
            name = f"{sec} {label}" if sec != "Fixed effects" else label
            lines.append("| " + " | ".join([name.replace("|", "\\|"), *cells]) + " |")
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in self.notes()) + "\n"

    def _repr_html_(self) -> str:
        header = self._header()
        top = "<th></th>" + "".join(f'<th colspan="{len(c)}">{html.escape(lab)}</th>' for lab, c in header)
        sub = "<th>Parameter</th>" + "".join(f"<th>{html.escape(c)}</th>" for _, cs in header for c in cs)
        body, section = [], None
        ncol = 1 + sum(len(c) for _, c in header)
        for sec, label, cells in self._rows():
            if sec != section:
                body.append(f'<tr><th colspan="{ncol}" style="text-align:left">{html.escape(sec)}</th></tr>')
                section = sec
            tds = "".join(f'<td style="text-align:right">{html.escape(c)}</td>' for c in cells)
            body.append(f"<tr><td>{html.escape(label)}</td>{tds}</tr>")
        notes = "<br>".join(html.escape(n) for n in self.notes())
        return (
            f"<table><thead><tr>{top}</tr><tr>{sub}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p><small>{notes}</small></p>"
        )


def _param_label(effect: str, group: str, term: str) -> str:
    if effect == "fixed":
        return term
    if term == "sd__Observation":
        return "SD"
    kind, _, rest = term.partition("__")
    if kind == "cor":
        return "Cor " + rest.replace(").", "), ", 1) if rest.startswith("(") else "Cor " + rest.replace(".", ", ", 1)
    return "SD " + rest


def _decimals(values: list[float]) -> int:
    """Decimals giving about four significant digits to the row's largest value (0 to 3)."""
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return int(min(3, max(0, 3 - math.floor(math.log10(max(finite))))))


def _num(v, dec: int) -> str:
    if v is None or not isinstance(v, float | int | np.floating) or not np.isfinite(v):
        return DASH
    return f"{v:.{dec}f}"


def _interval(lo, hi, dec: int) -> str:
    if not (isinstance(lo, float | np.floating) and np.isfinite(lo) and np.isfinite(hi)):
        return DASH
    return f"[{lo:.{dec}f}, {hi:.{dec}f}]"
