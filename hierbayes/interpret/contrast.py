"""Contrasts of estimated marginal means (R's ``emmeans::contrast``).

Within each ``by`` group, the means are combined with a matrix of contrast
coefficients (emmeans' ``.emmc`` functions):

* ``"pairwise"``: every earlier level minus every later one (``a - b``), Tukey-adjusted by default;
* ``"revpairwise"``: every later level minus every earlier one;
* ``"trt.vs.ctrl"``: every level minus the reference (``ref``, the first by
  default), adjusted by emmeans' ``dunnettx`` by default; ``"trt.vs.ctrlk"``
  takes the last level as reference;
* ``"eff"``: each level minus the average of all (false discovery rate adjusted by default);
  ``"del.eff"``: each level minus the average of the others;
* ``"consec"``: each level minus the one before (``b - a``); emmeans' default
  adjustment for it, ``"mvt"`` (multivariate t), is not implemented, so
  ``adjust`` must be given;
* ``"poly"``: orthogonal polynomial contrasts (``linear``, ``quadratic``, ...,
  up to degree 6) with emmeans' integer coefficients, unadjusted;
* a dict ``{label: coefficients}`` of one's own (no adjustment by default).

Labels are emmeans': the levels of several variables joined by a space, a
variable whose levels are numbers written with its name (``Days0 - Days3``,
``period1 - period2``), a level with ``-``, ``+``, ``*`` or ``/`` in
parentheses. On a log or logit scale, contrasts on ``type="response"`` are
ratios (``ratio``) or odds ratios (``odds.ratio``) labelled ``a / b``, with
tests on the log scale; on other scales contrasts stay on the link scale, as
emmeans does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from hierbayes.design.names import r_label
from hierbayes.errors import ArgumentError, DataError
from hierbayes.interpret.adjust import method_name
from hierbayes.interpret.emmeans import EmmeansTable, EmmGrid, _summary_frame, check_type, make_table
from hierbayes.interpret.scale import Scale

METHODS = ("pairwise", "revpairwise", "trt.vs.ctrl", "trt.vs.ctrlk", "eff", "del.eff", "consec", "poly")
_PARENS = re.compile(r"-|\+|/|\*")
_DEFAULT_ADJUST = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "dunnettx", "trt.vs.ctrlk": "dunnettx",
                   "eff": "fdr", "del.eff": "fdr", "consec": "mvt", "poly": "none"}  # fmt: skip
_POLY_NAMES = ("linear", "quadratic", "cubic", "quartic", *(f"degree {d}" for d in range(5, 21)))


def _coefficients(method: Any, levs: list[str], ref: Any) -> tuple[list[str], np.ndarray]:
    """Contrast labels and coefficients (contrasts x levels) of one by group."""
    k = len(levs)
    if isinstance(method, Mapping):
        names, rows = [], []
        for name, coefs in method.items():
            c = np.asarray(coefs, dtype=float).reshape(-1)
            if len(c) != k:
                raise ArgumentError(f"contrast '{name}' has {len(c)} coefficients for {k} means ({', '.join(levs)})")
            names.append(str(name))
            rows.append(c)
        if not rows:
            raise ArgumentError("method: the dict of contrasts is empty")
        return names, np.vstack(rows)
    names, rows = [], []
    if method in ("pairwise", "revpairwise"):
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        if method == "revpairwise":
            pairs = [(i, j) for i in range(1, k) for j in range(i)]
        for i, j in pairs:
            c = np.zeros(k)
            c[i], c[j] = 1.0, -1.0
            names.append(f"{levs[i]} - {levs[j]}")
            rows.append(c)
    elif method in ("trt.vs.ctrl", "trt.vs.ctrlk"):
        r = _ref_index(levs, k if (method == "trt.vs.ctrlk" and ref is None) else ref)
        for i in range(k):
            if i == r:
                continue
            c = np.zeros(k)
            c[i], c[r] = 1.0, -1.0
            names.append(f"{levs[i]} - {levs[r]}")
            rows.append(c)
    elif method in ("eff", "del.eff"):
        for i in range(k):
            c = np.full(k, -1.0 / k)
            c[i] += 1.0
            if method == "del.eff":  # scaled so the level's own coefficient is 1: minus the mean of the others
                c /= c[i]
            names.append(f"{levs[i]} effect")
            rows.append(c)
    elif method == "consec":
        for i in range(k - 1):
            c = np.zeros(k)
            c[i], c[i + 1] = -1.0, 1.0
            names.append(f"{levs[i + 1]} - {levs[i]}")
            rows.append(c)
    elif method == "poly":
        return _poly(k)
    else:
        raise ArgumentError(f"method must be one of {', '.join(METHODS)} or a dict of coefficients, not {method!r}")
    return names, np.vstack(rows)


def _poly(k: int) -> tuple[list[str], np.ndarray]:
    """emmeans' ``poly.emmc``: R's orthogonal polynomials in 1..k, each scaled to the smallest integers."""
    degree = min(6, k - 1)
    x = np.arange(1.0, k + 1)
    Q, R = np.linalg.qr(np.vander(x - x.mean(), degree + 1, increasing=True))
    Q = Q * np.sign(np.diag(R))  # R's poly(): each polynomial's leading coefficient positive
    rows = []
    for j in range(1, degree + 1):
        con = Q[:, j]
        con = con / con[con > 0.01].min()
        z = np.max(np.abs(con - np.round(con)))
        while z > 0.05:
            con = con / z
            z = np.max(np.abs(con - np.round(con)))
        rows.append(np.round(con))
    return list(_POLY_NAMES[:degree]), np.vstack(rows)


def _ref_index(levs: list[str], ref: Any) -> int:
    k = len(levs)
    if ref is None:
        return 0
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if not 1 <= ref <= k:
            raise ArgumentError(f"ref={ref} is out of range: there are {k} levels (ref counts from 1, as in emmeans)")
        return int(ref) - 1
    if str(ref) in levs:
        return levs.index(str(ref))
    raise ArgumentError(f"ref={ref!r} is not one of the levels {', '.join(levs)}")


def _level_labels(grid: EmmGrid, rows: np.ndarray, pri: list[str]) -> list[str]:
    parts = []
    for name in pri:
        col = grid.labels[name].iloc[rows].tolist()
        parts.append([f"{name}{_fmt(x)}" if name in grid.numeric else _fmt(x) for x in col])
    levs = [" ".join(p) for p in zip(*parts, strict=True)] if parts else [""] * len(rows)
    return [f"({lv})" if _PARENS.search(lv) else lv for lv in levs]


def _fmt(x: Any) -> str:

    if isinstance(x, (float, np.floating, int, np.integer)) and not isinstance(x, bool):
        return r_label(float(x)) if isinstance(x, (float, np.floating)) else str(int(x))
    return str(x)


def contrast(
    emm: EmmeansTable,
    method: str | Mapping[str, Any] = "pairwise",
    adjust: str | None = None,
    by: str | list[str] | None = ...,
    ref: int | str | None = None,
    type: str | None = None,
    level: float | None = None,
) -> EmmeansTable:
    """Contrasts of the means of an :func:`hierbayes.emmeans` table, tested as R's ``contrast(emm, method, adjust)``.

    Parameters
    ----------
    emm
        A table from :func:`hierbayes.emmeans` (or :func:`hierbayes.emtrends`).
    method
        ``"pairwise"``, ``"revpairwise"``, ``"trt.vs.ctrl"``, ``"trt.vs.ctrlk"``, ``"eff"``,
        ``"del.eff"``, ``"consec"`` (with ``adjust`` given), ``"poly"``, or a dict of labelled
        coefficient vectors (one coefficient per mean of a ``by`` group).
    adjust
        ``"tukey"``, ``"sidak"``, ``"bonferroni"``, ``"holm"``, ``"hochberg"``, ``"fdr"``, ``"BY"``,
        ``"dunnettx"`` or ``"none"``; None for the method's default (Tukey for
        pairwise comparisons, dunnettx for comparisons with a control). As in
        emmeans, Tukey's method applies to one set of pairwise comparisons only
        and becomes Sidak's otherwise.
    by
        Variables within whose levels to contrast (the table's ``by`` variables by default; None for none).
    ref
        Reference level of ``"trt.vs.ctrl"``: its position (from 1) or its label.
    type
        ``"link"`` or ``"response"`` (the means' type by default).
    level
        Confidence level of ``.confint()``.

    Returns
    -------
    EmmeansTable
        ``contrast``, the ``by`` variables, ``estimate`` (``ratio`` or
        ``odds.ratio`` on a log or logit response scale), ``SE``, ``df``,
        (``null``,) ``t.ratio`` or ``z.ratio``, ``p.value``; ``.confint()``
        gives the intervals. For a posterior: the median and HPD (or ETI) interval.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> con = hb.contrast(hb.emmeans(fit, "period", type="response"), "pairwise")
    >>> con[["contrast", "odds.ratio"]].head(2).round(3).values.tolist()
    [['period1 / period2', 2.698], ['period1 / period3', 3.092]]
    """
    if not isinstance(emm, EmmeansTable) or getattr(emm, "_emm_grid", None) is None:
        raise ArgumentError(
            f"contrast needs a table made by hb.emmeans or hb.emtrends (not a plain {emm.__class__.__name__}: "
            "the table's linear functions are lost when a DataFrame is derived from it)"
        )
    grid: EmmGrid = emm.grid
    if grid.est_type != "prediction":
        raise ArgumentError("contrast: the table is already a table of contrasts; contrast the means instead")
    if type is not None:
        check_type(type)
    by_vars = list(grid.by) if by is ... else ([] if by is None else ([by] if isinstance(by, str) else list(by)))
    unknown = [b for b in by_vars if b not in grid.labels.columns]
    if unknown:
        raise ArgumentError(f"by: {unknown} are not variables of the means ({', '.join(grid.labels.columns)})")
    pri = [c for c in grid.labels.columns if c not in by_vars]
    sub = replace(grid, by=tuple(by_vars))
    groups = sub.by_rows()
    sizes = {len(g) for g in groups}
    if len(sizes) > 1:
        raise DataError("contrast: the by groups have different numbers of means")
    k = sizes.pop()
    if k < 2 and not isinstance(method, Mapping):
        what = f" within each level of {', '.join(by_vars)}" if by_vars else ""
        raise DataError(
            f"contrast: there is a single mean{what} ({', '.join(pri) or 'overall'}), so nothing to compare; "
            "emmeans over a variable with at least two levels (or values given with at=)"
        )
    if isinstance(method, str) and method not in METHODS:
        raise ArgumentError(f"method must be one of {', '.join(METHODS)} or a dict of coefficients, not {method!r}")
    blocks, names, by_labels = [], [], []
    first_names = None
    for rows in groups:
        levs = _level_labels(grid, rows, pri)
        cn, C = _coefficients(method, levs, ref)
        first_names = first_names or cn
        blocks.append((rows, C))
        names += cn
        by_labels += [grid.labels.iloc[rows[0]][by_vars].tolist()] * len(cn)
    order = np.concatenate([rows for rows, _ in blocks])
    C_all = linalg.block_diag(*[C for _, C in blocks])
    L = C_all @ grid.linfct[order]
    L_full = None if grid.linfct_full is None else C_all @ grid.linfct_full[order]
    offset = C_all @ grid.offset[order]
    true_con = all(np.all(np.abs(C.sum(axis=1) / (1e-6 + np.abs(C).max(axis=1))) < 1e-6) for _, C in blocks)
    if isinstance(method, str):
        est_type = "pairs" if method in ("pairwise", "revpairwise") else "contrast"
        default_adjust = _DEFAULT_ADJUST[method]
    else:
        est_type = "contrast" if true_con else "prediction"
        default_adjust = "none"
    if adjust is None and default_adjust == "mvt":
        raise ArgumentError(
            f"contrast(method={method!r}): emmeans adjusts these by default with 'mvt' (multivariate t "
            "probabilities), which hierbayes does not compute; pass adjust= ('sidak' is close to it and "
            "conservative, or 'holm', 'bonferroni', 'none', ...)"
        )
    adjust_name = method_name(default_adjust if adjust is None else adjust)
    scale, log_contrast = grid.scale, False
    messages = list(grid.messages)
    notes = [n for n in grid.notes if not n.startswith("NOTE:")]
    if scale is not None and not scale.is_identity:
        if true_con and scale.ratio_label:
            # differences of logs back-transform to ratios; of logits, through exp, to odds ratios (emmeans)
            log_contrast = True
            scale = Scale("log" if scale.name == "logit" else scale.name, scale.ratio_label, scale.kind)
        else:
            messages.append(f"Note: contrasts are still on the {scale.name} scale")
            scale = None
    labels = pd.DataFrame({"contrast": names})
    for j, b in enumerate(by_vars):
        labels[b] = [x[j] for x in by_labels]
    if log_contrast and (type or grid.type) == "response":
        labels["contrast"] = [n.replace(" - ", " / ") for n in names]
    if adjust_name == "tukey" and est_type != "pairs" and k > 2:
        notes.append(
            'Note: adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate for one set of '
            "pairwise comparisons",
        )
    out = EmmGrid(
        basis=grid.basis, linfct=L, offset=offset, labels=labels, pri=("contrast",), by=tuple(by_vars),
        numeric=(), scale=scale, type=type or grid.type, est_name="estimate", est_type=est_type,
        fam_size=k, adjust=adjust_name, log_contrast=log_contrast,
        level=grid.level if level is None else level, ci_kind=grid.ci_kind, messages=tuple(messages),
        notes=tuple(notes), linfct_full=L_full, nonest=grid.nonest,
    )  # fmt: skip
    return make_table(out, _summary_frame(out, intervals=out.basis.bayes, tests=not out.basis.bayes))
