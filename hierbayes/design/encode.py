"""Evaluate formula expressions on a data frame with formulaic.

Every model matrix (fixed effects, each random-effects bar, the response)
is made here, so training data and new data are encoded the same way: the
formulaic ``ModelSpec`` kept on the design replays scaling constants and
factor levels exactly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix
from formulaic.errors import FactorEvaluationError, FormulaicError

from hierbayes.design.names import r_column_names
from hierbayes.errors import DataError

#: Names available to formula expressions besides formulaic's transforms.
CONTEXT = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp,
    "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "np": np, "numpy": np,
}  # fmt: skip

_IDENT = re.compile(r"`[^`]*`|(?<![\w.])[A-Za-z_.][\w.]*")


def quote_columns(expr: str, columns: Iterable[str]) -> str:
    """Backtick column names formulaic would misread (``mean.ses``, names with spaces)."""
    special = {c for c in map(str, columns) if not c.isidentifier()}
    if not special:
        return expr
    return _IDENT.sub(lambda m: f"`{m.group(0)}`" if m.group(0) in special else m.group(0), expr)


def evaluate_matrix(rhs: str, data: pd.DataFrame, what: str) -> tuple[np.ndarray, tuple[str, ...], ModelSpec]:
    """Model matrix of a right-hand side, with R-style column names.

    Parameters
    ----------
    rhs
        A formulaic right-hand side (``"1 + Days"``).
    data
        Complete rows only (the model frame).
    what
        Where the expression comes from, for error messages.
    """
    text = quote_columns(rhs, data.columns)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", FutureWarning)
            mm = model_matrix(text, data, context=CONTEXT, na_action="ignore")
    except (FactorEvaluationError, FormulaicError, TypeError, ValueError, NameError, SyntaxError) as exc:
        raise DataError(f"could not evaluate the {what} '{rhs}': {_reason(exc)}") from exc
    values = np.asarray(mm.to_numpy(dtype=float), dtype=float).reshape(len(data), -1)
    logical = {str(c) for c in data.columns if pd.api.types.is_bool_dtype(data[c].dtype)}
    return values, r_column_names(list(mm.columns), logical), mm.model_spec


def replay_matrix(spec: ModelSpec, data: pd.DataFrame, what: str) -> np.ndarray:
    """Encode new data with a stored spec (same levels, same scaling)."""
    _check_levels(spec, data, what)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", FutureWarning)
            mm = spec.get_model_matrix(data, context=CONTEXT, na_action="ignore")
    except (FactorEvaluationError, FormulaicError, TypeError, ValueError, NameError, SyntaxError) as exc:
        raise DataError(f"could not evaluate the {what} on new data: {_reason(exc)}") from exc
    return np.asarray(mm.to_numpy(dtype=float), dtype=float).reshape(len(data), -1)


def evaluate_vector(expr: str, data: pd.DataFrame, what: str) -> np.ndarray:
    """One numeric column from an expression (a response, an offset)."""
    name = expr.strip().strip("`")
    if name in data.columns:
        col = data[name]
        if pd.api.types.is_bool_dtype(col.dtype):
            return col.to_numpy(dtype=float)
        if not pd.api.types.is_numeric_dtype(col.dtype):
            raise DataError(f"the {what} '{name}' must be numeric; it has dtype {col.dtype}")
        return col.to_numpy(dtype=float)
    values, _names, _ = evaluate_matrix(f"0 + I({quote_columns(expr, data.columns)})", data, what)
    if values.shape[1] != 1:
        raise DataError(f"the {what} '{expr}' must give one numeric column, it gives {values.shape[1]}")
    return values[:, 0]


_FACTOR_FAILED = re.compile(r"Unable to evaluate factor `(.*?)`\.\s*\[(\w+): (.*)\]", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*m|[\u29da\u29db]")


def _reason(exc: Exception) -> str:
    """formulaic's complaint in plain words: which expression failed and Python's reason."""
    text = _ANSI.sub("", str(exc)).split("\n\n")[0].strip()
    m = _FACTOR_FAILED.search(text)
    if m:
        expr, kind, why = m.groups()
        why = why.replace("is not present in the dataset or evaluation context", "is not a column or a known function")
        return f"'{expr}' failed ({kind}: {why.strip()})"
    return text


def _check_levels(spec: ModelSpec, data: pd.DataFrame, what: str) -> None:
    """Unseen categorical levels in new data are an error, not silent zeros."""
    for var, (kind, state) in (spec.encoder_state or {}).items():
        if getattr(kind, "value", kind) != "categorical" or var not in data.columns:
            continue
        seen = {str(c) for c in state.get("categories", [])}
        new = sorted({str(v) for v in pd.unique(data[var].dropna())} - seen)
        if new:
            raise DataError(
                f"column '{var}' in new data has level(s) {', '.join(new)} not seen when fitting ({what}); "
                f"known levels: {', '.join(sorted(seen))}"
            )
