"""Rows to predict for: the fitting data or new data, encoded the way the design encoded its own.

Shared by every engine's ``predict``: fixed-effects matrix and offset, and
for each grouping factor the level codes and Z columns (or None when
``re_form`` leaves the factor out). Levels not seen when fitting get code -1
(``new_levels="population"``), raise (``"error"``), or get codes -1, -2, ...,
one per distinct new level (``"sample"``, for engines that can draw new
effects). Rows with a missing value in a used column are not encoded; ``ok``
marks the rows that are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.design.design import Design
from hierbayes.design.random import group_keys
from hierbayes.errors import DataError, FormulaError
from hierbayes.formula import parse_formula

NEW_LEVELS = ("population", "error", "sample")


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


def included_groups(design: Design, re_form: str | None) -> set[str]:
    """Grouping factors a ``re_form`` conditions on: None all, ``"~0"``/``"NA"`` none, ``"~(1|g)"`` those named."""
    all_groups = {b.group for b in design.blocks}
    if re_form is None:
        return all_groups
    if isinstance(re_form, float) and np.isnan(re_form):
        return set()
    text = str(re_form).strip()
    if text.replace(" ", "") in ("~0", "NA", "~1", "0", ""):
        return set()
    parsed = parse_formula(text if "~" in text else "~" + text)
    groups = {b.group_name for b in parsed.bars}
    unknown = groups - all_groups
    if unknown:
        raise FormulaError(
            f"re_form names grouping factor(s) {', '.join(sorted(unknown))} that the model does not have "
            f"(it has {', '.join(sorted(all_groups))})",
            text,
        )
    return groups


def encode_rows(
    design: Design,
    newdata: pd.DataFrame | None,
    re_form: str | None = None,
    new_levels: str = "population",
    sample_hint: str = "",
) -> EncodedRows:
    """Encode the fitting data (``newdata=None``) or new data for prediction."""
    if new_levels not in NEW_LEVELS:
        raise DataError(f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {new_levels!r}")
    groups = included_groups(design, re_form)
    if newdata is None:
        blocks = [(b.codes, b.Z) if b.group in groups else None for b in design.blocks]
        return EncodedRows(design.X, design.offset, blocks, np.ones(design.n, dtype=bool))
    newdata = pd.DataFrame(newdata)
    used = list(dict.fromkeys(design.fixed_columns + [v for b in design.blocks for v in b.group_vars]))
    present = [c for c in used if c in newdata.columns]
    ok = ~newdata[present].isna().any(axis=1).to_numpy() if present else np.ones(len(newdata), dtype=bool)
    nd = newdata.loc[ok]
    X = design.fixed_matrix(nd)
    blocks: list[tuple[np.ndarray, np.ndarray] | None] = []
    for b in design.blocks:
        if b.group not in groups:
            blocks.append(None)
            continue
        codes, Z = b.encode(nd)
        unseen = codes < 0
        if unseen.any() and new_levels == "error":
            bad = sorted(set(np.asarray(group_keys(nd, b.group_vars), dtype=object)[unseen]))
            raise DataError(
                f"new data has level(s) of '{b.group}' not seen when fitting: {', '.join(map(str, bad[:10]))}"
                + (" ..." if len(bad) > 10 else "")
                + "; use new_levels='population' to predict them at the population level (effect zero)"
                + sample_hint
            )
        if unseen.any() and new_levels == "sample":
            keys = np.asarray(group_keys(nd, b.group_vars), dtype=object)
            _, new_codes = np.unique(keys[unseen], return_inverse=True)
            codes = codes.copy()
            codes[unseen] = -1 - new_codes  # -1, -2, ...: the new levels, each its own effect
        blocks.append((codes, Z))
    return EncodedRows(X, design.offset_vector(nd), blocks, ok, sample_new=new_levels == "sample")
