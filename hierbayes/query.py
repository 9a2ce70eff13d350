"""Row selections written the R way: lme4's ``subset=`` and the specs' ``query``.

A selection is a boolean mask (array, list or Series, one value per row), the
name of a boolean column, or an R-like condition such as ``"Days > 2"``,
``"Subject != '308' & Days >= 1"``, ``"!(Days %in% c(0, 1))"`` or
``"is.na(x) | x < 0"``. R's spellings are translated to pandas' (``&&`` and
``&``, ``||`` and ``|``, ``!`` for not, ``TRUE``/``FALSE``, ``%in%`` with
``c(...)``, ``is.na()``), names with dots or spaces may be quoted with
backticks, and the condition is evaluated by :meth:`pandas.DataFrame.eval`.
As in R, rows where the condition is missing (NA) are not selected. The
data frame is never modified.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"Days": [0, 1, 2, 3], "Subject": ["a", "a", "b", "b"]})
>>> select_rows(df, "Days > 1 & Subject %in% c('b')").tolist()
[False, False, True, True]
>>> select_rows(df, [True, False, True, False]).tolist()
[True, False, True, False]
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import numpy as np
import pandas as pd

from hierbayes.errors import ColumnNotFoundError, DataError

_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`")


def select_rows(data: pd.DataFrame, subset: Any, what: str = "subset") -> np.ndarray:
    """The boolean mask of the rows ``subset`` selects (see the module docstring).

    Parameters
    ----------
    data
        The data frame.
    subset
        A boolean mask, a boolean column's name, or an R-like condition.
    what
        How the selection is called in messages (``"subset"``, ``"query"``).

    Raises
    ------
    DataError
        A mask of the wrong length or type, a column that is not boolean, a
        condition that cannot be evaluated or does not give one truth value
        per row (ColumnNotFoundError for an unknown name, with suggestions).
    """
    n = len(data)
    if isinstance(subset, str):
        if subset in data.columns:
            return _as_mask(data[subset], n, f"{what} column '{subset}'")
        return _as_mask(_evaluate(data, subset, what), n, f"{what} {subset!r}")
    if isinstance(subset, (bool, np.bool_)):
        return np.full(n, bool(subset))
    if isinstance(subset, pd.Series) and len(subset) == n and not subset.index.equals(data.index):
        if subset.index.sort_values().equals(data.index.sort_values()):
            subset = subset.reindex(data.index)  # aligned by label, as pandas would
    if isinstance(subset, (pd.Series, np.ndarray, list, tuple, pd.Index)):
        return _as_mask(subset, n, what)
    raise DataError(
        f"{what} must be a boolean mask (one True/False per row), the name of a boolean column, or a condition "
        f'such as "Days > 2"; got {type(subset).__name__}'
    )


def _as_mask(values: Any, n: int, what: str) -> np.ndarray:
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    boolean = pd.api.types.is_bool_dtype(s.dtype) or (
        s.dtype == object and s.dropna().map(lambda v: isinstance(v, (bool, np.bool_))).all()
    )  # booleans with missing values too (R's NA is not selected)
    if boolean and len(s) != n:
        raise DataError(f"{what} has {len(s)} values for {n} rows")
    if boolean:
        return s.fillna(False).to_numpy(dtype=bool)
    raise DataError(
        f"{what} must give True/False for each row, not values of dtype {s.dtype} "
        '(integer positions are not accepted: R counts from 1, Python from 0; compare instead, e.g. "x > 0")'
    )


def r_to_pandas(condition: str) -> str:
    """Translate R's operators in a condition to pandas' ``eval`` syntax (strings and backticks untouched).

    Examples
    --------
    >>> r_to_pandas("!(a %in% c(1, 2)) && b == TRUE")
    '~(a in [1, 2]) & b == True'
    """
    parts, last = [], 0
    for m in _STRING.finditer(condition):
        parts.append((_translate(condition[last : m.start()]), True))
        parts.append((m.group(0), False))
        last = m.end()
    parts.append((_translate(condition[last:]), True))
    text = "".join(p for p, _ in parts)
    return _brackets(text)


def _translate(code: str) -> str:
    code = code.replace("&&", "&").replace("||", "|")
    code = re.sub(r"\s*%in%\s*", " in ", code)
    code = re.sub(r"!(?!=)", "~", code)
    code = re.sub(r"\bTRUE\b", "True", code)
    code = re.sub(r"\bFALSE\b", "False", code)
    code = re.sub(r"\bis\.na\(", "__isna__(", code)
    code = re.sub(r"(?<![\w.])c\(", "__c__(", code)
    return code


def _brackets(text: str) -> str:
    """``__c__(a, b)`` -> ``[a, b]`` and ``__isna__(x)`` -> ``(x).isna()`` with balanced parentheses."""
    for marker, opening, closing in (("__c__(", "[", "]"), ("__isna__(", "((", ").isna())")):
        while marker in text:
            i = text.index(marker)
            depth, j = 1, i + len(marker)
            while j < len(text) and depth:
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            if depth:
                raise SyntaxError(f"unbalanced parentheses after {marker[:-3].strip('_')}(")
            inner = text[i + len(marker) : j - 1]
            text = text[:i] + opening + inner + closing + text[j:]
    return text


def _evaluate(data: pd.DataFrame, condition: str, what: str) -> Any:
    try:
        expr = _quote_dotted(r_to_pandas(condition), data.columns)
        result = data.eval(expr, engine="python")
    except pd.errors.UndefinedVariableError as exc:
        name = re.search(r"'([^']+)'", str(exc))
        name = name.group(1) if name else str(exc)
        cols = [str(c) for c in data.columns]
        close = difflib.get_close_matches(name, cols, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ColumnNotFoundError(
            f"unknown column '{name}' in the {what} {condition!r}{hint}\n  the data has: "
            + ", ".join(cols[:12])
            + (", ..." if len(cols) > 12 else "")
        ) from None
    except Exception as exc:  # pandas' parser raises many kinds: all mean a condition we cannot use
        visitor = re.search(r"has no attribute 'visit_(\w+)'", str(exc))
        if visitor:  # an operator or construct pandas' evaluator lacks (>>, a lambda, ...): name it, not the visitor
            reason = f"{visitor.group(1)} is not supported in a condition"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise DataError(
            f"the {what} {condition!r} could not be evaluated ({reason}); write a condition "
            'on the data\'s columns such as "Days > 2" or "Subject != \'308\'"'
        ) from None
    if np.ndim(result) == 0:
        return pd.Series(np.full(len(data), result), index=data.index)
    return result


def _quote_dotted(expr: str, columns) -> str:
    """Backtick column names with dots (R's ``my.var``), which pandas would read as attribute access."""
    dotted = sorted((str(c) for c in columns if "." in str(c) and str(c).replace(".", "").replace("_", "").isalnum()),
                    key=len, reverse=True)  # fmt: skip
    if not dotted:
        return expr
    out, last = [], 0
    for m in _STRING.finditer(expr):
        out.append(_backtick(expr[last : m.start()], dotted))
        out.append(m.group(0))
        last = m.end()
    out.append(_backtick(expr[last:], dotted))
    return "".join(out)


def _backtick(code: str, names: list[str]) -> str:
    for name in names:
        code = re.sub(rf"(?<![\w.`]){re.escape(name)}(?![\w.`])", f"`{name}`", code)
    return code
