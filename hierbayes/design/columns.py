"""The data's columns as the formula sees them: names, safe identifiers, types, new-data coercion.

A formula refers to a column by its name as text: ``x``, ``my.var``,
`` `my var` ``, ``Q("my var")``, `` `0` `` for an integer label, and a Python
keyword such as ``class`` or ``if`` bare. formulaic never sees those names:
each used column gets a safe identifier (``_hb0_``, ``_hb1_``, ...), so any
name works and none can shadow a function (``I(N/I)`` with columns ``N`` and
``I`` divides the columns).

Each used column also remembers its type when fitting (``Column``): numbers,
logicals, text, or a categorical with its categories. New data is coerced to
those types, so a factor coded as int when fitting and as str in new data (or
the reverse), a categorical against an object column, or int against float,
give the same levels and the same numbers; a value that matches no level stays
a new level.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.design.names import r_labels, sort_levels
from hierbayes.errors import ColumnNotFoundError, DataError

SAFE_PREFIX = "_hb"


def safe_name(i: int) -> str:
    """The identifier formulaic sees for the i-th used column."""
    return f"{SAFE_PREFIX}{i}_"


class ColumnTable:
    """The user's column labels, found by the text a formula uses for them.

    A label is found by ``str(label)``; two labels with the same text (``0``
    and ``"0"``) are ambiguous and raise when used.
    """

    def __init__(self, columns: Iterable[Hashable]):
        self.labels = list(columns)
        self._by_text: dict[str, list[Hashable]] = {}
        for c in self.labels:
            self._by_text.setdefault(str(c), []).append(c)

    def find(self, name: str) -> Hashable | None:
        """The label written ``name`` in a formula, or None."""
        found = self._by_text.get(name)
        if not found:
            return None
        if len(found) > 1:
            raise DataError(f"the data has several columns named '{name}' ({', '.join(map(repr, found))}); rename them")
        return found[0]

    def __contains__(self, name: str) -> bool:
        return name in self._by_text

    def unknown(
        self, name: str, context: str, formula: str | None = None, expr: str | None = None
    ) -> ColumnNotFoundError:
        """The error for a name that is neither a column nor a function, with the closest columns."""
        cols = [str(c) for c in self.labels]
        close = difflib.get_close_matches(name, cols, n=3, cutoff=0.5)
        if not close:
            close = [c for c in cols if c.lower() == name.lower() or c.replace(" ", ".") == name]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        some = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        where = _find_name(formula or "", name)
        if where is None:
            shown = (expr or name).replace("`", "")
            context += f" ({shown})" if shown != name else ""
            return ColumnNotFoundError(f"unknown column '{name}' in the {context}{hint}\n  the data has: {some}")
        caret = " " * where + "^"
        return ColumnNotFoundError(
            f"unknown column '{name}' in the {context}{hint}\n  {formula}\n  {caret}\n  the data has: {some}"
        )


def _find_name(formula: str, name: str) -> int | None:
    for pattern in (rf"`{re.escape(name)}`", rf"Q\(\s*[\"']{re.escape(name)}[\"']\s*\)",
                    rf"(?<![\w.`]){re.escape(name)}(?![\w.`])"):  # fmt: skip
        m = re.search(pattern, formula)
        if m:
            return m.start()
    return None


@dataclass(frozen=True)
class Column:
    """One used column: its label, safe identifier and type when fitting.

    Attributes
    ----------
    label
        The column's label in the user's data frame.
    safe
        The identifier formulaic sees.
    kind
        ``"numeric"``, ``"logical"``, ``"character"`` (text or mixed objects:
        R's character vectors), ``"factor"`` (a categorical) or ``"other"``
        (dates and other types, passed as they are).
    categories
        A categorical's categories as R labels, in their order.
    ordered
        Whether a categorical is ordered (R codes it with ``contr.poly``).
    numeric_use
        False when the column is only a grouping variable: then new values
        that are not numbers are new levels rather than an error.
    """

    label: Hashable
    safe: str
    kind: str
    categories: tuple[str, ...] = ()
    ordered: bool = False
    numeric_use: bool = True

    @property
    def name(self) -> str:
        return str(self.label)

    @classmethod
    def of(cls, label: Hashable, safe: str, values: pd.Series, numeric_use: bool = True) -> Column:
        """The column's type, from its values when fitting (complete rows only)."""
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = values.cat.remove_unused_categories().cat.categories.to_numpy()
            labels = tuple(r_labels(cats))
            if len(set(labels)) < len(labels):
                sort_levels(cats, str(label))
            return cls(label, safe, "factor", labels, bool(dtype.ordered), numeric_use)
        if pd.api.types.is_bool_dtype(dtype):
            return cls(label, safe, "logical", numeric_use=numeric_use)
        if pd.api.types.is_numeric_dtype(dtype):
            return cls(label, safe, "numeric", numeric_use=numeric_use)
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            inferred = pd.api.types.infer_dtype(values, skipna=True)
            if inferred == "boolean":
                return cls(label, safe, "logical", numeric_use=numeric_use)
            if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
                return cls(label, safe, "numeric", numeric_use=numeric_use)
            if inferred != "string":  # 2 and "2" in one column: an error, as R cannot tell them apart
                sort_levels(pd.unique(values.to_numpy(dtype=object)), str(label))
            return cls(label, safe, "character", numeric_use=numeric_use)
        if numeric_use and (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)):
            # R's model.matrix would use days (Date) or seconds (POSIXct, difftime's units): ambiguous in pandas
            what = "dates/times" if pd.api.types.is_datetime64_any_dtype(dtype) else "time differences"
            raise DataError(
                f"column {str(label)!r} holds {what} ({dtype}); a predictor needs numbers: use e.g. days since the "
                f"first one, (df[{str(label)!r}] - df[{str(label)!r}].min()).dt.days, in a new column"
            )
        return cls(label, safe, "other", numeric_use=numeric_use)

    def values(self, col: pd.Series, new: bool = False) -> object:
        """The column as formulas see it; new data is coerced to the type it had when fitting."""
        if self.kind == "numeric":
            return self._numeric(col, new)
        if self.kind == "logical":
            return self._logical(col, new)
        if self.kind == "character":
            if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
                return col.array  # text is its own label (kept as pandas' string array: no copy)
            return np.asarray(_labels_of(col), dtype=object)
        if self.kind == "factor":
            labels = _labels_of(col)
            cats = list(self.categories)
            if new:
                known = set(cats)
                cats += [v for v in dict.fromkeys(labels) if v is not None and v not in known]
            return pd.Categorical(labels, categories=cats, ordered=self.ordered)
        return col.to_numpy()

    def _numeric(self, col: pd.Series, new: bool) -> np.ndarray:
        dtype = col.dtype
        if pd.api.types.is_bool_dtype(dtype):
            return col.to_numpy(dtype=float)
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            return col.to_numpy()
        if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            if pd.api.types.is_integer_dtype(dtype) and not col.hasnans:
                return col.to_numpy(dtype=np.int64)
            return col.to_numpy(dtype=float, na_value=np.nan)
        raw = np.asarray(col.astype(object) if isinstance(dtype, pd.CategoricalDtype) else col.to_numpy(dtype=object))
        parsed = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float)
        failed = np.isnan(parsed) & pd.notna(raw)
        if not failed.any():
            return parsed
        if not self.numeric_use:  # a grouping variable: what is not a number is a new level
            out = raw.copy()
            out[~failed] = parsed[~failed]
            return out
        bad = list(dict.fromkeys(map(str, raw[failed])))
        raise DataError(
            f"column '{self.name}' in new data has value(s) {', '.join(map(repr, bad[:5]))}"
            f"{' ...' if len(bad) > 5 else ''} that are not numbers; it was numeric when fitting"
        )

    def _logical(self, col: pd.Series, new: bool) -> np.ndarray:
        if pd.api.types.is_bool_dtype(col.dtype) and not col.hasnans:
            return col.to_numpy(dtype=bool)
        truth = {"TRUE": True, "True": True, "true": True, "T": True, "1": True,
                 "FALSE": False, "False": False, "false": False, "F": False, "0": False}  # fmt: skip
        labels = _labels_of(col)
        out = [truth.get(v) if v is not None else None for v in labels]
        bad = [v for v, o in zip(labels, out, strict=True) if v is not None and o is None]
        if bad:
            if not self.numeric_use:
                return np.asarray([o if o is not None else v for v, o in zip(labels, out, strict=True)], dtype=object)
            raise DataError(
                f"column '{self.name}' in new data has value(s) {', '.join(map(repr, list(dict.fromkeys(bad))[:5]))} "
                "that are not TRUE or FALSE; it was logical when fitting"
            )
        if any(o is None for o in out):
            return np.asarray(out, dtype=object)
        return np.asarray(out, dtype=bool)


def _labels_of(col: pd.Series) -> list[str | None]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = np.asarray([*r_labels(col.cat.categories.to_numpy()), None], dtype=object)
        return cats[col.cat.codes.to_numpy()].tolist()
    return r_labels(col.to_numpy(dtype=object))


def safe_frame(data: pd.DataFrame, columns: tuple[Column, ...], new: bool = False) -> pd.DataFrame:
    """The used columns under their safe identifiers, as formulas see them (row index 0..n-1)."""
    return pd.DataFrame({c.safe: c.values(data[c.label], new) for c in columns}, index=pd.RangeIndex(len(data)))
