"""The model frame: the used columns of the data, with incomplete rows removed.

Rows with a missing, infinite or empty value in any column the formula uses
are dropped, counted per column and reported; nothing is dropped silently and
the user's data frame is never modified.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierbayes._warnings import warn
from hierbayes.design.columns import ColumnTable
from hierbayes.design.translate import Translator
from hierbayes.errors import DataError, DesignWarning, DroppedRowsWarning

#: na_action names (lme4's and hierbayes') -> what the frame does: drop incomplete rows or raise.
#: ("exclude" drops them too; the fit pads its residuals and fitted values with NaN there, R's naresid.)
NA_ACTIONS = {"omit": "omit", "na.omit": "omit", "exclude": "omit", "na.exclude": "omit", "raise": "raise",
              "fail": "raise", "na.fail": "raise"}  # fmt: skip


@dataclass(frozen=True)
class ModelFrame:
    """The data a design is built from.

    Attributes
    ----------
    data
        Used columns only, complete rows only (a copy).
    row_index
        The index labels of the kept rows in the user's data frame.
    n_input
        Rows in the user's data.
    dropped_by_column
        Column -> number of rows with an unusable value there.
    """

    data: pd.DataFrame
    row_index: pd.Index
    n_input: int
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    kept: np.ndarray | None = field(default=None, repr=False)  # boolean mask of the kept input rows

    @property
    def n_dropped(self) -> int:
        """Rows removed for missing, infinite or empty values."""
        return self.n_input - len(self.data)


def as_dataframe(data: object) -> pd.DataFrame:
    """Accept a pandas DataFrame or anything ``pd.DataFrame`` takes; reject duplicates."""
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"data must be a pandas DataFrame (or a dict of columns); got {type(data).__name__}"
            ) from exc
    dup = data.columns[data.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"the data frame has duplicate column names: {', '.join(map(str, dup))}; rename them first")
    return data


def expression_columns(expr: str, columns: Iterable[Hashable], context: str, formula: str | None = None) -> list:
    """Columns an expression refers to; unknown names raise with suggestions.

    Names follow R's model frame: a name that is a column is the column, a call
    is a function (:mod:`hierbayes.design.translate`).

    Parameters
    ----------
    expr
        An R expression from the formula (``"log(x) + scale(z)"``).
    columns
        The data's column labels.
    context
        Where the expression sits, for the error message (``"fixed effects"``).
    formula
        The whole formula; when given, the error shows it with a caret under
        the unknown name.

    Raises
    ------
    ColumnNotFoundError
        Naming the column, where it is used, and the closest column names.

    Examples
    --------
    >>> expression_columns("log(x) + scale(z) * x", ["x", "y", "z"], "fixed effects")
    ['x', 'z']
    """
    return Translator(ColumnTable(columns), formula).columns_of(expr, context)


def build_frame(
    data: pd.DataFrame, columns: list[str], na_action: str = "omit", factors: Collection[str] = ()
) -> ModelFrame:
    """Select the used columns and drop incomplete rows.

    Parameters
    ----------
    data
        The user's data frame (not modified).
    columns
        Columns the model uses.
    na_action
        ``"omit"`` (or R's ``"na.omit"``, ``"na.exclude"``, ``"exclude"``) drops incomplete rows with a
        warning; ``"raise"`` (R's ``"na.fail"``) raises.
    factors
        Columns used as grouping factors: like categorical columns, a level
        that loses all its rows to the dropping is reported.

    Examples
    --------
    >>> import numpy as np, pandas as pd, warnings
    >>> df = pd.DataFrame({"y": [1.0, np.nan, 3.0], "g": ["a", "b", "a"]})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     frame = build_frame(df, ["y", "g"])
    >>> frame.n_dropped, frame.dropped_by_column
    (1, {'y': 1})
    """
    given = na_action
    if not isinstance(na_action, str) or na_action not in NA_ACTIONS:
        raise DataError(
            f"na_action must be 'omit' or 'raise', not {na_action!r} (R's 'na.omit', 'na.exclude' and 'na.fail' "
            "are accepted too)"
        )
    na_action = NA_ACTIONS[na_action]
    sub = data.loc[:, list(columns)]
    bad = pd.DataFrame({c: unusable(sub[c]) for c in columns}, index=sub.index)
    by_col = {c: int(bad[c].sum()) for c in columns if bad[c].any()}
    drop = bad.any(axis=1).to_numpy() if len(columns) else np.zeros(len(sub), bool)
    if len(sub) == 0:
        raise DataError("the data frame has no rows")
    if drop.all():
        raise DataError(
            f"no rows left to fit: all {len(sub)} rows have missing, infinite or empty values "
            f"(per column: {', '.join(f'{c} {n}' for c, n in by_col.items())})"
        )
    if drop.any():
        detail = ", ".join(f"{c} ({n})" for c, n in by_col.items())
        msg = f"{int(drop.sum())} of {len(sub)} rows have missing, infinite or empty values in {detail}"
        if na_action == "raise":
            raise DataError(msg + f" (na_action={given!r})")
        warn(msg + "; they were dropped (see fit.n_dropped).", DroppedRowsWarning)
    kept = sub.loc[~drop].copy()
    for c in columns:
        if isinstance(kept[c].dtype, pd.CategoricalDtype):
            kept[c] = kept[c].cat.remove_unused_categories()
        if drop.any() and (c in factors or not pd.api.types.is_numeric_dtype(sub[c].dtype)):
            _warn_lost_levels(c, sub[c][~bad[c].to_numpy()], kept[c])
    return ModelFrame(data=kept, row_index=sub.index[~drop], n_input=len(sub), dropped_by_column=by_col, kept=~drop)


def _warn_lost_levels(column: str, before: pd.Series, after: pd.Series) -> None:
    """Warn for levels (among the usable values) that lost every row to the dropping."""
    lost = set(before.dropna().unique()) - set(after.unique())
    if lost:
        names = sorted(map(str, lost))
        warn(
            f"level(s) {', '.join(repr(n) for n in names)} of '{column}' have no rows left after dropping "
            "incomplete rows; they were removed from the factor",
            DesignWarning,
        )


def unusable(col: pd.Series) -> np.ndarray:
    mask = col.isna().to_numpy().copy()
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        with np.errstate(invalid="ignore"):
            mask |= ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
    elif pd.api.types.is_string_dtype(col.dtype) or col.dtype == object:
        # empty or blank strings, judged once per distinct value
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        blank = np.array([isinstance(v, str) and not v.strip() for v in uniques] + [False], dtype=bool)
        mask |= blank[codes]  # code -1 (missing) reads the final False
    return mask
