"""nlme's one-sided forms of correlation and variance structures: ``"~ 1 | Mare"``, ``"~ Time | Rat"``, ``"~ age"``.

A form has a covariate part (``1``, a column, or ``fitted(.)``) and an
optional grouping after ``|`` (columns joined by ``/`` or ``*``: nested
groups, whose combinations are the groups).

Examples
--------
>>> parse_form("~ Time | Mare")
Form(covariate='Time', groups=('Mare',), text='~ Time | Mare')
>>> parse_form("~ 1 | Dog/Side").groups
('Dog', 'Side')
>>> parse_form("~ fitted(.)").covariate
'fitted(.)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, ColumnNotFoundError, DataError

FITTED = "fitted(.)"


@dataclass(frozen=True)
class Form:
    """A parsed one-sided form.

    Attributes
    ----------
    covariate
        None for ``1``, a column name, or ``"fitted(.)"``.
    groups
        Grouping columns (empty without ``|``).
    text
        The form as given.
    """

    covariate: str | None
    groups: tuple[str, ...]
    text: str


def parse_form(form: str, where: str = "the structure") -> Form:
    """Parse an nlme one-sided form (see the module docstring); an ArgumentError names what is wrong."""
    if not isinstance(form, str):
        raise ArgumentError(f"the form of {where} must be a one-sided formula string such as '~ 1 | g', not {form!r}")
    text = form.strip()
    if not text.startswith("~"):
        raise ArgumentError(f"the form of {where} must be one-sided and start with '~' (e.g. '~ 1 | g'), not {form!r}")
    body = text[1:]
    if body.count("|") > 1:
        raise ArgumentError(f"the form {form!r} of {where} has more than one '|'")
    cov, _, grp = body.partition("|")
    cov = cov.strip()
    if not cov:
        raise ArgumentError(f"the form {form!r} of {where} has nothing before '|' (use '1' for the row order)")
    if re.fullmatch(r"fitted\(\s*\.?\s*\)", cov):
        covariate = FITTED
    elif cov == "1":
        covariate = None
    elif re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*|`[^`]+`", cov):
        covariate = cov.strip("`")
    else:
        raise ArgumentError(
            f"the covariate {cov!r} of the form {form!r} of {where} must be 1, a column name or fitted(.)"
        )
    groups: tuple[str, ...] = ()
    if _:
        parts = [p.strip().strip("`") for p in re.split(r"[/*:]", grp)]
        if not all(parts):
            raise ArgumentError(f"the grouping {grp.strip()!r} of the form {form!r} of {where} names an empty column")
        groups = tuple(parts)
    return Form(covariate, groups, text)


def column(data: pd.DataFrame, name: str, form: Form, where: str) -> pd.Series:
    """A column the form names; a ColumnNotFoundError naming it and the structure when it is missing."""
    if name not in data.columns:
        raise ColumnNotFoundError(
            f"the form {form.text!r} of {where} names the column {name!r}, which is not in the data"
        )
    return data[name]


def group_codes(data: pd.DataFrame, form: Form, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (0..G-1, in sorted order of the combined labels) of the form's groups, and their labels."""
    n = len(data)
    if not form.groups:
        return np.zeros(n, dtype=np.int64), ["1"]
    cols = [column(data, g, form, where) for g in form.groups]
    for g, c in zip(form.groups, cols, strict=True):
        if c.isna().any():
            raise DataError(f"the grouping column {g!r} of {where} ({form.text!r}) has missing values")
    frame = pd.DataFrame({i: c.to_numpy() for i, c in enumerate(cols)})
    codes, labels = [], []
    for i in range(len(cols)):
        c, u = pd.factorize(frame[i], sort=True)
        codes.append(c)
        labels.append(u)
    key = np.zeros(n, dtype=np.int64)
    for c, u in zip(codes, labels, strict=True):
        key = key * len(u) + c
    combined, uniq = pd.factorize(key, sort=True)
    names = []
    for k in uniq:
        parts, rest = [], int(k)
        for u in reversed(labels):
            parts.append(str(u[rest % len(u)]))
            rest //= len(u)
        names.append("/".join(reversed(parts)))
    return combined.astype(np.int64), names


def numeric_covariate(data: pd.DataFrame, form: Form, where: str) -> np.ndarray:
    """The form's covariate as floats; a DataError naming the column when it is not numeric or has missing values."""
    c = column(data, form.covariate, form, where)
    if not (pd.api.types.is_numeric_dtype(c) and not pd.api.types.is_bool_dtype(c)):
        raise DataError(f"the covariate {form.covariate!r} of {where} ({form.text!r}) must be numeric, not {c.dtype}")
    v = c.to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        raise DataError(f"the covariate {form.covariate!r} of {where} ({form.text!r}) has missing or infinite values")
    return v
