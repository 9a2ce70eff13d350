"""R-style names for model-matrix columns and factor levels.

formulaic names a treatment contrast ``k[T.b]`` and the intercept
``Intercept``; lme4 users know them as ``kb`` and ``(Intercept)``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import numpy as np
import pandas as pd

_CONTRAST = re.compile(r"\[(?:T\.)?([^\[\]]*)\]")


def r_column_name(name: str) -> str:
    """Translate one formulaic column name into R's spelling.

    Examples
    --------
    >>> r_column_name("Intercept"), r_column_name("k[T.b]:x")
    ('(Intercept)', 'kb:x')
    """
    if name == "Intercept":
        return "(Intercept)"
    if name.startswith("I("):
        name = name.replace(" ** ", "^")
    return _CONTRAST.sub(r"\1", name)


def r_column_names(names: list[str] | tuple[str, ...], logical: Collection[str] = ()) -> tuple[str, ...]:
    """Translate formulaic column names, keeping them unique.

    ``logical`` names boolean columns: formulaic codes them 0/1 under their
    own name, R as the contrast ``bTRUE``.

    Examples
    --------
    >>> r_column_names(["Intercept", "b", "b:x"], logical={"b"})
    ('(Intercept)', 'bTRUE', 'bTRUE:x')
    """
    out: list[str] = []
    for n in names:
        r = r_column_name(n)
        if logical:
            r = ":".join(part + "TRUE" if part in logical else part for part in r.split(":"))
        out.append(r if r not in out else n)
    return tuple(out)


def level_strings(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and level names of a grouping variable, R's ``factor()`` order.

    Categoricals keep their category order (unused categories removed);
    numbers and booleans sort by value, strings by code point (R's order in
    the C locale); a column mixing types sorts by type name, then value.
    Level names are strings (``1.0`` is ``"1"``, as R prints it).

    Examples
    --------
    >>> level_strings(pd.Series([10, 2, 2]))
    (array([1, 0, 0]), ('2', '10'))
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy().astype(np.int64), tuple(_fmt(v) for v in cat.cat.categories)
    arr = values.to_numpy()
    try:  # hash first, then sort only the distinct values (np.unique sorts every row)
        first_codes, distinct = pd.factorize(arr)
        distinct = np.asarray(distinct)
        order = np.argsort(distinct, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        uniques, codes = distinct[order], rank[first_codes]
    except TypeError:  # mixed types in an object column: no natural order
        order = sorted(pd.unique(arr), key=lambda v: (type(v).__name__, str(v)))
        index = {v: i for i, v in enumerate(order)}
        uniques, codes = order, np.array([index[v] for v in arr])
    return np.asarray(codes, dtype=np.int64).reshape(-1), tuple(_fmt(v) for v in uniques)


def _fmt(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.datetime64):
        return str(pd.Timestamp(value))
    return str(value)
