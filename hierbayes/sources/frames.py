"""polars and Dask frames as sources: streamed (polars) or reduced where the partitions live (Dask).

* A polars ``DataFrame`` is read in slices, a ``LazyFrame`` with polars'
  streaming engine (``collect_batches``): neither is collected whole.
* A Dask ``DataFrame`` is reduced on whatever scheduler is set up (a
  ``dask.distributed.Client`` when one exists): each partition's part of a
  pass (:mod:`hierbayes.sources.stream`) is made where the partition lives,
  and the parts are combined by a tree reduction; only the parts (the
  cross-products, counts, the rows that first show each level) reach the
  client, never the rows. Divisions are not needed (the sums do not depend
  on the order of the partitions), so a frame with unknown divisions is
  reduced as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from hierbayes.errors import DataError
from hierbayes.sources import readers
from hierbayes.sources.readers import Source

#: Parts combined per node of the Dask tree reduction.
SPLIT_EVERY = 8


class PolarsSource(Source):
    """A polars DataFrame (read in slices) or LazyFrame (polars' streaming engine, in batches)."""

    def __init__(self, frame: Any):
        try:
            import polars as pl  # optional: only a user who passes a polars frame has it
        except ImportError as exc:  # pragma: no cover - the frame itself needs polars
            raise DataError("reading a polars frame needs polars: pip install polars") from exc
        self.pl = pl
        self.frame = frame
        self.lazy = isinstance(frame, pl.LazyFrame)
        if not self.lazy and not isinstance(frame, pl.DataFrame):
            raise DataError(f"a polars DataFrame or LazyFrame is needed, not {type(frame).__name__}")
        self.description = "polars LazyFrame" if self.lazy else "polars DataFrame"

    @property
    def columns(self) -> list[str]:
        return list(self.frame.collect_schema().names()) if self.lazy else list(self.frame.columns)

    def batches(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        selected = self.frame.select(list(columns))
        if self.lazy:
            chunks = selected.collect_batches(chunk_size=readers.BATCH_ROWS, maintain_order=True)
        else:
            chunks = selected.iter_slices(n_rows=readers.BATCH_ROWS)
        for chunk in chunks:
            yield chunk.to_pandas()


def _kind(dtype) -> str:
    """A pandas dtype's kind as the design reads it (a partition whose kind differs would be encoded otherwise)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "logical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text"
    return str(dtype)


def _checked(df: pd.DataFrame, kinds: dict[str, str], index: int) -> pd.DataFrame:
    """A partition whose used columns have the kinds of the frame's meta (an all-missing column passes)."""
    for c, kind in kinds.items():
        got = _kind(df[c].dtype)
        if got != kind and not (len(df) and df[c].isna().all()) and len(df):
            raise DataError(f"column '{c}' changes type between partitions of the Dask frame: {kind} in its meta, "
                            f"{got} ({df[c].dtype}) in partition {index}; cast it with astype first")  # fmt: skip
    return df


def _part(empty: Callable[[], Any], kinds: dict[str, str], index: int, df: pd.DataFrame) -> Any:
    part = empty()
    part.add(_checked(df, kinds, index))
    return part


def _combine(*parts: Any) -> Any:
    out = parts[0]
    for p in parts[1:]:
        out = out.combine(p)
    return out


class DaskSource(Source):
    """A Dask DataFrame, reduced partition by partition on the user's scheduler (see the module docstring)."""

    def __init__(self, frame: Any):
        import dask.dataframe as dd  # the 'dask' extra: imported only when given a Dask frame

        if not isinstance(frame, dd.DataFrame):
            raise DataError(f"a dask.dataframe.DataFrame is needed, not {type(frame).__name__} (a Series? use "
                            "ddf.to_frame())")  # fmt: skip
        self.frame = frame
        self.description = f"Dask DataFrame of {frame.npartitions} partition(s)"

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def batches(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:  # pragma: no cover - reduce is used
        for part in self.frame[list(columns)].to_delayed():
            yield part.compute()

    def reduce(self, columns: Sequence[str], empty: Callable[[], Any]) -> Any:
        import dask  # the 'dask' extra: imported only when given a Dask frame

        sub = self.frame[list(columns)]
        kinds = {c: _kind(sub._meta[c].dtype) for c in columns}
        parts = [dask.delayed(_part)(empty, kinds, i, p) for i, p in enumerate(sub.to_delayed())]
        while len(parts) > 1:
            parts = [dask.delayed(_combine)(*parts[i : i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
        return parts[0].compute()
