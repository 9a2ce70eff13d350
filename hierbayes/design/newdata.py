"""Rows to predict for: the fitting data or new data, encoded the way the design encoded its own.

Shared by every engine's ``predict`` (``LmerFit``, ``GlmerFit``,
``PosteriorFit``): fixed-effects matrix and offset, and for each grouping
factor the level codes and Z columns (or None when ``re_form`` leaves the
factor out).

* New data is coerced to the column types seen when fitting
  (:mod:`hierbayes.design.columns`), so int and str codes of one factor, a
  categorical and an object column, int and float, give the same levels; a
  value that matches no level is a new level, never another level.
* Levels of a grouping factor not seen when fitting raise lme4's error
  (``"error"``, the default, as ``allow.new.levels = FALSE``), get code -1 and
  the population-level prediction (``"population"``, ``allow_new_levels=True``),
  or codes -1, -2, ..., one per distinct new level (``"sample"``, for engines
  that can draw new effects).
* ``re_form``: None conditions on every random effect; ``"NA"``, ``np.nan``,
  ``"~0"`` on none; a formula of bars (``"~(1 | Subject)"``) on those terms only,
  as lme4 (the intercept of ``(Days | Subject)`` alone, say).
* Rows with a missing value in a used column are not encoded (their
  prediction is NaN); ``ok`` marks the rows that are. Zero rows give an empty
  encoding. Nothing here changes the design.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.design.columns import ColumnTable, safe_frame
from hierbayes.design.design import Design, missing_columns_error
from hierbayes.design.encode import Naming, evaluate_matrix
from hierbayes.design.frame import unusable
from hierbayes.design.translate import Translator
from hierbayes.errors import DataError, FormulaError
from hierbayes.formula import parse_formula

NEW_LEVELS = ("population", "error", "sample")
_NO_RANDOM = {"~0", "NA", "~1", "0", "", "~-1", "~NA"}


@dataclass(frozen=True)
class EncodedRows:
    """X, offset, and per factor (codes, Z) or None when excluded; ``ok`` marks the encoded rows."""

    X: np.ndarray
    offset: np.ndarray | None
    blocks: list[tuple[np.ndarray, np.ndarray] | None]
    ok: np.ndarray
    sample_new: bool = False

    @property
    def n(self) -> int:
        return self.X.shape[0]


def new_levels_policy(allow_new_levels: bool | None = None, new_levels: str | None = None) -> str:
    """The policy for unseen levels from lme4's ``allow_new_levels`` or hierbayes' ``new_levels``.

    ``new_levels`` wins when given; otherwise ``allow_new_levels=True`` is
    ``"population"`` and the default (lme4's) is ``"error"``.
    """
    if new_levels is not None:
        if new_levels not in NEW_LEVELS:
            raise DataError(f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {new_levels!r}")
        return new_levels
    if allow_new_levels is None:
        return "error"
    if not isinstance(allow_new_levels, (bool, np.bool_)):
        raise DataError(f"allow_new_levels must be True or False, not {allow_new_levels!r}")
    return "population" if allow_new_levels else "error"


def as_newdata(newdata: object) -> pd.DataFrame | None:
    """``newdata`` as a DataFrame: a DataFrame, a dict of columns, a Series (one row), or None.

    Raises
    ------
    DataError
        For anything else (a string, a list, an array, a number).
    """
    if newdata is None or isinstance(newdata, pd.DataFrame):
        return newdata
    if isinstance(newdata, pd.Series):
        return newdata.to_frame().T.infer_objects()
    if isinstance(newdata, dict):
        try:
            if newdata and all(np.ndim(v) == 0 for v in newdata.values()):
                return pd.DataFrame(newdata, index=[0])
            return pd.DataFrame(newdata)
        except (TypeError, ValueError) as exc:
            raise DataError(f"newdata: the dict's columns do not make a data frame ({exc})") from None
    if hasattr(newdata, "to_pandas") and not isinstance(newdata, (str, bytes)):
        return as_newdata(newdata.to_pandas())
    raise DataError(
        f"newdata must be a pandas DataFrame (or a dict of columns) with the model's columns, not "
        f"{type(newdata).__name__}" + (f" {newdata!r}" if isinstance(newdata, (str, int, float)) else "")
    )


def included_terms(design: Design, re_form: object) -> dict[str, tuple[int, ...]]:
    """Per grouping factor, the columns of its block that ``re_form`` conditions on.

    None: all; ``"NA"``, ``np.nan``, ``"~0"``: none; ``"~(1 | g)"``: the
    terms of the bars given. Raises lme4's errors for a factor or a term the
    model does not have.
    """
    every = {b.group: tuple(range(b.k)) for b in design.blocks}
    if re_form is None:
        return every
    if _is_na(re_form):
        return {}
    if not isinstance(re_form, str):
        raise DataError(
            f"re_form must be None (all random effects), 'NA' or '~0' (none), or a formula of random-effects "
            f"terms such as '~(1 | g)'; not {re_form!r}"
        )
    text = re_form.strip()
    if text.replace(" ", "") in _NO_RANDOM:
        return {}
    if text.replace(" ", "") in ("NULL", "~."):
        return every
    parsed = parse_formula(text if "~" in text else "~" + text)
    out: dict[str, list[int]] = {}
    unknown = [b.group_name for b in parsed.bars if b.group_name not in every]
    if unknown:
        raise FormulaError(
            f"grouping factors specified in re_form that were not present in original model: {', '.join(unknown)} "
            f"(the model has {', '.join(every)})",
            text,
        )
    for bar in parsed.bars:
        block = design.block(bar.group_name)
        names = bar_term_names(design, bar.lhs)
        missing = [n for n in names if n not in block.terms]
        if missing:
            raise FormulaError(
                f"random effects specified in re_form that were not present in original model: {', '.join(missing)} "
                f"(the model has {', '.join(block.terms)} for {block.group})",
                text,
            )
        cols = out.setdefault(block.group, [])
        cols += [block.terms.index(n) for n in names if block.terms.index(n) not in cols]
    return {g: tuple(sorted(c)) for g, c in out.items()}


def bar_term_names(design: Design, lhs: str) -> tuple[str, ...]:
    """R's names of a bar's columns (``("(Intercept)", "Days")``), evaluated on the fitting data."""
    for b in design.blocks:
        if lhs in b.bar_lhs:  # a diag() bar is one bar per column, each with the bar's lhs
            cols = [c for bl, bc in zip(b.bar_lhs, b.bars, strict=True) if bl == lhs for c in bc]
            return tuple(b.terms[c] for c in cols)
    known = {c.label: c.safe for c in design.columns}
    tr = Translator(ColumnTable(design.frame.data.columns), known=known)
    code = tr.rhs(lhs, "re_form")
    cols = tuple(c for c in design.columns if c.label in tr.used)
    naming = Naming({**design.naming.display, **tr.display}, design.naming.columns)
    return evaluate_matrix(code, safe_frame(design.frame.data, cols), "re_form", naming)[1]


def encode_rows(
    design: Design,
    newdata: object,
    re_form: object = None,
    new_levels: str = "error",
    sample_hint: str = "",
) -> EncodedRows:
    """Encode the fitting data (``newdata=None``) or new data for prediction."""
    if new_levels not in NEW_LEVELS:
        raise DataError(f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {new_levels!r}")
    streamed = getattr(design, "streamed", None)
    if newdata is None and streamed is not None:
        raise DataError(
            f"this needs the fitting rows, which a fit from the {streamed.source} does not keep (it holds their "
            "cross-products only); read a piece of the data (e.g. pd.read_parquet(path, columns=...) or one "
            "record batch) and pass it as newdata=piece"
        )
    terms = included_terms(design, re_form)
    newdata = as_newdata(newdata)
    if newdata is None:
        blocks = [_masked(b, terms, b.codes, b.Z) for b in design.blocks]
        return EncodedRows(design.X, design.offset, blocks, np.ones(design.n, dtype=bool))
    needed: list[Hashable] = list(design.fixed_labels)
    for b in design.blocks:
        if b.group in terms:
            needed += [c for c in b.columns if c not in needed]
    missing = [c for c in design.fixed_labels if c not in newdata.columns]
    if missing:
        raise missing_columns_error(missing, "fixed effects")
    for b in design.blocks:
        absent = [c for c in b.columns if b.group in terms and c not in newdata.columns]
        if absent:
            raise DataError(
                f"new data has no column '{absent[0]}' (random effects of grouping factor {b.group}); "
                "re_form='~0' predicts without the random effects"
            )
    if len(newdata) == 0:
        return _empty(design, terms)
    ok = np.ones(len(newdata), dtype=bool)
    for c in needed:  # missing, infinite or blank values: not predicted, as such rows were not fitted
        ok &= ~unusable(newdata[c])
    nd = newdata.loc[ok]
    if len(nd) == 0:
        empty = _empty(design, terms)
        return EncodedRows(empty.X, empty.offset, empty.blocks, ok)
    by_label = {c.label: c for c in design.columns}
    safe = safe_frame(nd, tuple(by_label[c] for c in needed), new=True)
    X = design.fixed_matrix_of(safe)
    blocks: list[tuple[np.ndarray, np.ndarray] | None] = []
    for b in design.blocks:
        if b.group not in terms:
            blocks.append(None)
            continue
        codes, Z = b.encode(safe)
        unseen = codes < 0
        if unseen.any() and new_levels == "error":
            bad = list(dict.fromkeys(np.asarray(b.keys(safe), dtype=object)[unseen]))
            raise DataError(
                f"new levels detected in newdata: new data has level(s) of '{b.group}' not seen when fitting: "
                f"{', '.join(map(str, bad[:10]))}{' ...' if len(bad) > 10 else ''}; pass allow_new_levels=True to "
                "predict them at the population level (random effect zero), as lme4's allow.new.levels = TRUE"
                + sample_hint
            )
        if unseen.any() and new_levels == "sample":
            keys = np.asarray(b.keys(safe), dtype=object)
            _, new_codes = np.unique(keys[unseen], return_inverse=True)
            codes = codes.copy()
            codes[unseen] = -1 - new_codes  # -1, -2, ...: the new levels, each its own effect
        blocks.append(_masked(b, terms, codes, Z))
    return EncodedRows(X, design.offset_of(safe), blocks, ok, sample_new=new_levels == "sample")


def _masked(block, terms: dict[str, tuple[int, ...]], codes: np.ndarray, Z: np.ndarray):
    """(codes, Z) with the columns ``re_form`` leaves out set to zero; None when it leaves the factor out."""
    if block.group not in terms:
        return None
    keep = terms[block.group]
    if len(keep) == block.k:
        return codes, Z
    Z = Z.copy()
    Z[:, [j for j in range(block.k) if j not in keep]] = 0.0
    return codes, Z


def _empty(design: Design, terms: dict[str, tuple[int, ...]]) -> EncodedRows:
    blocks = [(np.zeros(0, dtype=np.int64), np.zeros((0, b.k))) if b.group in terms else None for b in design.blocks]
    offset = np.zeros(0) if design.offset_code else None
    return EncodedRows(np.zeros((0, design.p)), offset, blocks, np.zeros(0, dtype=bool))


def _is_na(value: object) -> bool:
    if value is pd.NA:
        return True
    try:
        return isinstance(value, (float, np.floating)) and bool(np.isnan(value))
    except TypeError:
        return False
