"""R-style names for factor levels and model-matrix columns.

A level is the text R prints for a value (``as.character``): ``"2"`` for 2 and
for 2.0, ``"0.5"``, ``"1e+05"``, ``"TRUE"``. Levels sort as R's ``factor()``
sorts them: numbers by value, text by code point (R's order in the C locale).
Values that print the same but differ in type (2 and ``"2"`` in one object
column) cannot be told apart by R and are an error here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierbayes.errors import DataError
from hierbayes.formula.rexpr import format_double


def r_label(value: object) -> str | None:
    """The level label of one value as R prints it; None for a missing value.

    Examples
    --------
    >>> [r_label(v) for v in (2, 2.0, 0.5, 1e5, True, "b", None)]
    ['2', '2', '0.5', '1e+05', 'TRUE', 'b', None]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else format_double(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, np.datetime64):
        return str(pd.Timestamp(value))
    return str(value)


def r_labels(values) -> list[str | None]:
    """``r_label`` of every value, computed once per distinct value."""
    arr = np.asarray(values, dtype=object).reshape(-1)
    if arr.size == 0:
        return []
    return _label_array(arr).tolist()


def _label_array(arr: np.ndarray) -> np.ndarray:
    """Labels as an object array (None for missing), one ``r_label`` call per distinct value."""
    if arr.dtype.kind in "iu":
        return arr.astype(str).astype(object)
    try:
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    except TypeError:
        return np.array([r_label(v) for v in arr], dtype=object)
    labels = np.array([r_label(v) for v in uniques] + [None], dtype=object)
    return labels[codes]


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def sort_levels(values, name: str | None = None, labels: list[str | None] | None = None) -> tuple[str, ...]:
    """Distinct labels of ``values`` (missing values left out) in R's ``factor()`` order.

    ``labels`` may give the labels of ``values`` when these are already distinct.

    Raises
    ------
    DataError
        When two distinct values print the same (``2`` and ``"2"``).
    """
    arr = np.asarray(values, dtype=object).reshape(-1)
    if labels is None:
        try:
            distinct = list(pd.unique(arr))
        except TypeError:  # unhashable values
            distinct = list(dict.fromkeys(map(str, arr)))
        labels = [r_label(v) for v in distinct]
    else:
        distinct = list(arr)
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    distinct, labels = [distinct[i] for i in keep], [labels[i] for i in keep]
    if len(set(labels)) < len(labels):
        _raise_same_label(distinct, labels, name)
    if distinct and all(_is_number(v) for v in distinct):
        order = np.argsort(np.asarray(distinct, dtype=float), kind="stable")
        return tuple(labels[i] for i in order)
    if distinct and all(isinstance(v, (bool, np.bool_)) for v in distinct):
        return tuple(sorted(labels))  # FALSE < TRUE
    return tuple(sorted(labels))


def _raise_same_label(distinct: list, labels: list[str | None], name: str | None) -> None:
    seen: dict[str, object] = {}
    for v, lab in zip(distinct, labels, strict=True):
        if lab in seen and type(seen[lab]) is not type(v):
            where = f"column '{name}'" if name else "a factor"
            raise DataError(
                f"{where} has values that print the same but differ in type: {seen[lab]!r} "
                f"({type(seen[lab]).__name__}) and {v!r} ({type(v).__name__}); R would read both as the level "
                f"'{lab}'. Convert the column to one type first, e.g. df['{name or 'x'}'].astype(str)"
            )
        seen.setdefault(lab, v)


def level_strings(values: pd.Series, name: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and level names of a grouping variable, R's ``factor()`` order.

    Categoricals keep their category order (unused categories removed);
    numbers sort by value, text by code point, FALSE before TRUE. Level names
    are R's labels (``1.0`` is ``"1"``, ``True`` is ``"TRUE"``).

    Examples
    --------
    >>> level_strings(pd.Series([10, 2, 2]))
    (array([1, 0, 0]), ('2', '10'))
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        labels = r_labels(cat.cat.categories.to_numpy())
        if len(set(labels)) < len(labels):
            sort_levels(cat.cat.categories.to_numpy(), name)
        return cat.cat.codes.to_numpy().astype(np.int64), tuple(labels)
    if pd.api.types.is_integer_dtype(values.dtype) and not values.hasnans:
        uniq, codes = np.unique(values.to_numpy(dtype=np.int64), return_inverse=True)
        return codes.reshape(-1).astype(np.int64), tuple(uniq.astype(str).tolist())
    try:  # hash first, then sort only the distinct values
        first_codes, distinct = pd.factorize(values, use_na_sentinel=True)
    except TypeError:
        first_codes, distinct = pd.factorize(np.asarray(r_labels(values.to_numpy(dtype=object)), dtype=object))
    distinct = np.asarray(distinct, dtype=object)
    labels = [r_label(v) for v in distinct]
    levels = sort_levels(distinct, name, labels)
    index = {lvl: i for i, lvl in enumerate(levels)}
    rank = np.array([index[lab] for lab in labels] + [-1], dtype=np.int64)
    return rank[first_codes].reshape(-1), levels


def unique_names(names: list[str]) -> tuple[str, ...]:
    """Names made unique the way R's ``make.unique`` does (``x``, ``x.1``)."""
    out: list[str] = []
    for n in names:
        candidate, k = n, 0
        while candidate in out:
            k += 1
            candidate = f"{n}.{k}"
        out.append(candidate)
    return tuple(out)


#: R's reserved words: make.names appends a dot to them.
_R_RESERVED = frozenset({
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE", "NULL", "Inf", "NaN",
    "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_", "in",
})  # fmt: skip


def make_unique(names: list[str], sep: str = ".") -> tuple[str, ...]:
    """R's ``make.unique``: the second and later copies of a name get ``.1``, ``.2``, ... (never a name in use).

    Examples
    --------
    >>> make_unique(["a", "a", "a.1", "b", "a"])
    ('a', 'a.2', 'a.1', 'b', 'a.3')
    """
    taken = set(names)
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    out = list(names)
    for i, name in enumerate(names):
        if name not in first:
            first[name] = i
            continue
        cnt = counts.get(name, 1)
        while f"{name}{sep}{cnt}" in taken:
            cnt += 1
        out[i] = f"{name}{sep}{cnt}"
        taken.add(out[i])
        counts[name] = cnt + 1
    return tuple(out)


def make_names(names: list[str], unique: bool = False) -> tuple[str, ...]:
    """R's ``make.names``: syntactically valid names (invalid characters become ``.``, ``X`` in front if needed).

    Examples
    --------
    >>> make_names(["Wafer:Site", "factor(g)", "my g", "1x", ".5", "if", "Wafer:Site"], unique=True)
    ('Wafer.Site', 'factor.g.', 'my.g', 'X1x', 'X.5', 'if.', 'Wafer.Site.1')
    """
    out = []
    for name in names:
        text = "NA" if name is None else str(name)
        if not text or not (text[0].isalpha() or (text[0] == "." and not (len(text) > 1 and text[1].isdigit()))):
            text = "X" + text
        text = "".join(ch if (ch.isalnum() or ch in "._") else "." for ch in text)
        if text in _R_RESERVED:
            text += "."
        out.append(text)
    return make_unique(out) if unique else tuple(out)
