"""Evaluate translated formula code on a frame of safe columns, with formulaic, and name the results R's way.

Every model matrix (fixed effects, each random-effects bar) is made here, so
training data and new data are encoded the same way: the formulaic
``ModelSpec`` kept on the design replays factor levels, ``scale()`` constants
and ``poly()`` coefficients exactly. A replay works on a copy of the spec's
state, so that a failed prediction leaves the fit exactly as it was
(formulaic writes the state of the data it is given into the spec's own
dictionaries).

Column names come from the spec's term structure: each variable's formulaic
text is replaced by R's (``_r_term(_hb0_)`` by ``x``, or `` `my var` ``), and
each factor's contrast by R's suffix (``factor(x)2``, ``C(f, contr.sum)1``).
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix
from formulaic.errors import FormulaicError
from formulaic.materializers.types import FactorValues
from formulaic.utils.stateful_transforms import stateful_eval

from hierbayes.design.names import unique_names
from hierbayes.design.rfunctions import CONTEXT, FUNCTIONS, NewLevelsError, RFactorEncoder, as_factor
from hierbayes.errors import DataError, HierbayesError

_EVAL_ERRORS = (FormulaicError, TypeError, ValueError, NameError, SyntaxError, ZeroDivisionError, KeyError,
                IndexError, AttributeError, OverflowError)  # fmt: skip
_SAFE_ID = re.compile(r"_hb\d+_")
_R_FUNCTION = {key: name for name, (key, _) in FUNCTIONS.items()}
_FUNCTION_KEY = re.compile(r"\b(_r_\w+|_f_\w+)\(")
_FACTOR_FAILED = re.compile(r"Unable to evaluate factor `(.*?)`\.\s*\[(\w+): (.*)\]", re.S)
_TERM = re.compile(r"_r_term\((.*?), (?:'[^']*'|\"[^\"]*\")\)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m|[\u29da\u29db]")


@dataclass(frozen=True)
class Naming:
    """What the translated code's identifiers stand for in R.

    Attributes
    ----------
    display
        formulaic's text of each variable of a term -> R's text.
    columns
        Safe identifier -> the column's name as R prints it.
    """

    display: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, str] = field(default_factory=dict)

    def humanize(self, text: str) -> str:
        """formulaic text (an expression, a message) with R's names back."""
        for key in sorted(self.display, key=len, reverse=True):
            text = text.replace(key, self.display[key])
        text = _FUNCTION_KEY.sub(lambda m: _R_FUNCTION.get(m.group(1), m.group(1).removeprefix("_r_")) + "(", text)
        text = _TERM.sub(lambda m: m.group(1), text)
        return _SAFE_ID.sub(lambda m: self.columns.get(m.group(0), m.group(0)), text)


def evaluate_matrix(
    code: str, data: pd.DataFrame, what: str, naming: Naming, full_rank: bool = True
) -> tuple[np.ndarray, tuple[str, ...], ModelSpec]:
    """Model matrix of a translated right-hand side, with R's column names.

    Parameters
    ----------
    code
        formulaic formula text from the translator (``"1 + _r_term(_hb0_)"``).
    data
        The safe frame (complete rows only).
    what
        Where the expression comes from, for error messages.
    naming
        R's names for the translated identifiers.
    full_rank
        False codes every factor by all its levels (lmerTest's over-parameterised design).
    """
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            mm = model_matrix(code, data, context=CONTEXT, na_action="ignore", ensure_full_rank=full_rank)
    except _EVAL_ERRORS as exc:
        raise _as_data_error(exc, what, naming, None) from None
    values = np.asarray(mm.to_numpy(dtype=float), dtype=float).reshape(len(data), -1)
    return values, r_names(mm.model_spec, naming), mm.model_spec


def replay_matrix(spec: ModelSpec, data: pd.DataFrame, what: str, naming: Naming) -> np.ndarray:
    """Encode new data with a stored spec (same levels, same scaling), leaving the spec untouched."""
    spec = spec.update(
        encoder_state=copy.deepcopy(spec.encoder_state), transform_state=copy.deepcopy(spec.transform_state)
    )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            mm = spec.get_model_matrix(data, context=CONTEXT, na_action="ignore")
    except _EVAL_ERRORS as exc:
        raise _as_data_error(exc, what, naming, spec) from None
    return np.asarray(mm.to_numpy(dtype=float), dtype=float).reshape(len(data), -1)


def evaluate_values(code: str, data: pd.DataFrame, what: str, naming: Naming, state: dict | None = None) -> object:
    """The value of a translated expression (a factor, a vector); ``state`` for its stateful transforms."""
    env = dict(CONTEXT)
    env.update({c: data[c] for c in data.columns})
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return stateful_eval(code, env, {}, {} if state is None else state, None)
    except HierbayesError as exc:
        raise DataError(f"could not evaluate the {what}: {naming.humanize(str(exc))}") from None
    except _EVAL_ERRORS as exc:
        raise DataError(f"could not evaluate the {what} '{naming.humanize(code)}': {type(exc).__name__}: "
                        f"{naming.humanize(str(exc))}") from None  # fmt: skip


def evaluate_vector(code: str, data: pd.DataFrame, what: str, naming: Naming, state: dict | None = None) -> np.ndarray:
    """One numeric column from a translated expression (a response, an offset, weights)."""
    return _numeric_vector(evaluate_values(code, data, what, naming, state), code, data, what, naming)


def evaluate_binary(code: str, data: pd.DataFrame, what: str, naming: Naming) -> tuple[np.ndarray, tuple[str, ...]]:
    """A binomial response: numbers as they are, a factor as 0 for its first level and 1 for every other.

    This is R's ``binomial()$initialize`` (``y != levels(y)[1]``) on lme4's
    model frame, whose unused levels are dropped: the first level *present*
    is failure. Text and categoricals are factors (R's level order); logical
    values are 0/1.

    Returns
    -------
    y, levels
        The response, and the factor's levels (first: failure), or ``()`` for a numeric response.

    Examples
    --------
    >>> d = pd.DataFrame({"y": pd.Categorical(["N", "Y", "Y"], categories=["Z", "N", "Y"])})
    >>> y, levels = evaluate_binary("y", d, "response", Naming())
    >>> y.tolist(), levels
    ([0.0, 1.0, 1.0], ('N', 'Y'))
    """
    value = evaluate_values(code, data, what, naming)
    if not _is_factor_like(value):
        return _numeric_vector(value, code, data, what, naming), ()
    factor = as_factor(value)
    labels = np.asarray(factor.labels, dtype=object)
    if len(labels) != len(data):
        raise DataError(f"the {what} '{naming.humanize(code)}' gives {len(labels)} values for {len(data)} rows")
    missing = pd.isna(labels)
    if missing.any():
        raise DataError(
            f"the {what} '{naming.humanize(code)}' has {int(missing.sum())} value(s) that are not among its levels "
            f"({', '.join(factor.levels)}), e.g. in row {int(np.flatnonzero(missing)[0])}"
        )
    present = set(labels.tolist())
    levels = tuple(lvl for lvl in factor.levels if lvl in present)
    return (labels != (levels[0] if levels else None)).astype(float), levels


def evaluate_categories(
    code: str, data: pd.DataFrame, what: str, naming: Naming, kind: str, family: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A response of categories: codes 0..K-1 (as floats) in level order, and the K levels present.

    ``kind="ordinal"``: an ordered categorical (``pd.Categorical(..., ordered=True)``, or
    ``ordered(x, levels = c(...))`` in the formula), or integers (levels in numeric order);
    ``kind="categorical"``: a factor, categorical or text (levels in R's order; the first is the
    reference). Unused levels are dropped, as in lme4's model frame; fewer than 2 levels is an error.

    Examples
    --------
    >>> d = pd.DataFrame({"y": pd.Categorical(["lo", "hi", "mid"], categories=["lo", "mid", "hi"], ordered=True)})
    >>> y, levels = evaluate_categories("y", d, "response", Naming(), "ordinal", "cumulative")
    >>> y.tolist(), levels
    ([0.0, 2.0, 1.0], ('lo', 'mid', 'hi'))
    """
    value = evaluate_values(code, data, what, naming)
    shown = naming.humanize(code)
    if _is_factor_like(value):
        factor = as_factor(value)
        if kind == "ordinal" and not factor.ordered:
            raise DataError(
                f"the {family} family needs an ordered response; the {what} '{shown}' is an unordered factor or "
                f"text (levels {', '.join(factor.levels[:6])}{', ...' if len(factor.levels) > 6 else ''}), whose "
                "order is not known. Give it as pd.Categorical(..., ordered=True) with the categories in order, "
                "as integers, or write ordered(y, levels = c(...)) in the formula"
            )
        labels = np.asarray(factor.labels, dtype=object)
        levels_all = tuple(factor.levels)
    else:
        if kind == "categorical":
            raise DataError(
                f"the {family} family needs a factor response (a categorical or text column, or factor(y) in the "
                f"formula); the {what} '{shown}' is numeric"
            )
        arr = _numeric_vector(value, code, data, what, naming)
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"the {family} family needs an ordered response: an ordered categorical or integers; the {what} "
                f"'{shown}' has {int(bad.sum())} value(s) that are not integers, e.g. {arr[i]:g} (row {i})"
            )
        ints = arr.astype(np.int64)
        levels_all = tuple(str(v) for v in np.unique(ints))
        labels = np.asarray([str(v) for v in ints], dtype=object)
    if len(labels) != len(data):
        raise DataError(f"the {what} '{shown}' gives {len(labels)} values for {len(data)} rows")
    missing = pd.isna(labels)
    if missing.any():
        raise DataError(
            f"the {what} '{shown}' has {int(missing.sum())} value(s) that are not among its levels "
            f"({', '.join(levels_all)}), e.g. in row {int(np.flatnonzero(missing)[0])}"
        )
    present = set(labels.tolist())
    levels = tuple(lvl for lvl in levels_all if lvl in present)
    if len(levels) < 2:
        raise DataError(
            f"the {family} family needs a response with 2 or more categories; the {what} '{shown}' has "
            f"{len(levels)} ({', '.join(levels) or 'none'})"
        )
    codes = pd.Categorical(labels, categories=list(levels)).codes
    return codes.astype(float), levels


def _is_factor_like(value: object) -> bool:
    """A factor, a categorical, or text: what R's model frame holds as a factor."""
    if isinstance(value, FactorValues):
        if isinstance(value.__formulaic_metadata__.encoder, RFactorEncoder):
            return True
        value = value.__wrapped__
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        dtype = np.asarray(value).dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return False
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(np.asarray(value, dtype=object), skipna=True)
        return inferred not in ("boolean", "integer", "floating", "mixed-integer-float", "decimal", "empty")
    return False


def _numeric_vector(value: object, code: str, data: pd.DataFrame, what: str, naming: Naming) -> np.ndarray:
    shown = naming.humanize(code)
    hint = (
        " (a factor or text response is a binary outcome for family='binomial' or 'bernoulli': its first level is "
        "failure)"
        if what == "response"
        else ""
    )
    if isinstance(value, FactorValues):
        if isinstance(value.__formulaic_metadata__.encoder, RFactorEncoder):
            raise DataError(f"the {what} '{shown}' must be numeric; it is a factor{hint}")
        value = value.__wrapped__
    if isinstance(value, (pd.Series, pd.Categorical)) and not _numeric_dtype(value.dtype):
        kind = f"it has dtype {value.dtype}"
        if isinstance(value.dtype, pd.CategoricalDtype):
            kind = "it is a factor (categorical)"
        elif _is_factor_like(value):
            kind = "it is text"
        raise DataError(f"the {what} '{shown}' must be numeric; {kind}{hint}")
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in "USM":
        kind = "it is text" if _is_factor_like(arr) else f"it has dtype {arr.dtype}"
        raise DataError(f"the {what} '{shown}' must be numeric; {kind}{hint}")
    if arr.ndim == 0:
        arr = np.full(len(data), float(arr))
    if arr.ndim > 1 and arr.shape[1:] != (1,):
        raise DataError(f"the {what} '{shown}' must give one numeric column, it gives {arr.shape[1]}")
    arr = arr.astype(float).reshape(-1)
    if len(arr) != len(data):
        raise DataError(f"the {what} '{shown}' gives {len(arr)} values for {len(data)} rows")
    return arr


def _numeric_dtype(dtype) -> bool:
    return pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    )


# --- names --------------------------------------------------------------------------------------------------------


def r_names(spec: ModelSpec, naming: Naming) -> tuple[str, ...]:
    """R's names of a spec's columns, in order (``(Intercept)``, ``x``, ``kb``, ``poly(x, 2)1:kb``)."""
    out: list[str] = []
    for st in spec.structure:
        exprs = sorted({str(f.expr) for f in st.term.factors}, key=len, reverse=True)
        out.extend(_r_name(col, exprs, naming) for col in st.columns)
    return unique_names(out)


def _r_name(col: str, exprs: list[str], naming: Naming) -> str:
    if col == "Intercept":
        return "(Intercept)"
    parts, pos = [], 0
    while pos < len(col):
        expr = next((e for e in exprs if col.startswith(e, pos)), None)
        if expr is None:
            return naming.humanize(col)
        pos += len(expr)
        name = naming.display.get(expr) or naming.humanize(expr)
        if col.startswith("\x1e", pos):
            end = col.index("\x1f", pos)
            name += col[pos + 1 : end]
            pos = end + 1
        elif col.startswith("[", pos):
            end = _bracket_end(col, pos, exprs)
            field = col[pos + 1 : end]
            name += field[2:] if field.startswith("T.") else field
            pos = end + 1
        parts.append(name)
        if pos < len(col):
            if col[pos] != ":":
                return naming.humanize(col)
            pos += 1
    return ":".join(parts)


def _bracket_end(col: str, pos: int, exprs: list[str]) -> int:
    """The ']' closing a formulaic field that starts at ``pos``: followed by the end or ':' and a variable."""
    end = col.find("]", pos)
    while end >= 0:
        rest = col[end + 1 :]
        if not rest or (rest.startswith(":") and any(rest.startswith(e, 1) for e in exprs)):
            return end
        end = col.find("]", end + 1)
    return len(col) - 1


# --- errors -------------------------------------------------------------------------------------------------------


def _as_data_error(exc: Exception, what: str, naming: Naming, spec: ModelSpec | None) -> DataError:
    """formulaic's or Python's complaint as a DataError in R's names; hierbayes errors pass through, renamed."""
    on_new = " on new data" if spec is not None else ""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, NewLevelsError):
            return _new_levels(cause, what, naming, spec)
        if isinstance(cause, HierbayesError):
            return DataError(f"could not evaluate the {what}{on_new}: {naming.humanize(str(cause))}")
        cause = cause.__cause__ or cause.__context__
    text = _ANSI.sub("", str(exc)).split("\n\n")[0].strip()
    m = _FACTOR_FAILED.search(text)
    if m:
        expr, kind, why = m.groups()
        why = why.replace("is not present in the dataset or evaluation context", "is not a column or a known function")
        reason = f"'{naming.humanize(expr)}' failed ({kind}: {naming.humanize(why.strip())})"
    else:
        reason = naming.humanize(text)
    return DataError(f"could not evaluate the {what}{on_new}: {reason}")


def _new_levels(exc: NewLevelsError, what: str, naming: Naming, spec: ModelSpec | None) -> DataError:
    """A level of a fixed-effects factor not seen when fitting: named, with the factor and the known levels."""
    who = f"column '{exc.expr}'" if exc.expr in set(naming.columns.values()) else f"'{exc.expr}'"
    return NewLevelsError(
        exc.expr, exc.new, exc.known,
        message=f"{who} in new data has level(s) {', '.join(exc.new)} not seen when fitting ({what}); "
        f"known levels: {', '.join(exc.known)}. A new level of a factor in the fixed part cannot be predicted "
        "(R: factor has new levels)",
    )  # fmt: skip
