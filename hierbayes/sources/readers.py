"""Data that do not fit in memory, read in pieces: Parquet files and directories, Arrow datasets, polars frames.

A :class:`Source` knows its column names and yields the columns a model
needs as pandas frames of a bounded number of rows, in a fixed order (so
that every pass over it sees the same rows in the same order). Nothing here
knows about formulas; :mod:`hierbayes.sources.scan` and
:mod:`hierbayes.sources.stream` make the passes.

Every file's schema is checked before any row is read: a needed column that
is missing from some file, or whose type changes between files, is a
:class:`~hierbayes.errors.DataError` naming the column and the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from hierbayes.errors import DataError, FileError

#: Rows per record batch read from Parquet (bounded memory; large enough that per-batch costs vanish).
BATCH_ROWS = 1_000_000


class Source:
    """Data read in pieces. Subclasses give ``columns``, ``check(columns)`` and ``batches(columns)``."""

    #: A short description for messages ("Parquet file data.parquet").
    description: str = "data"

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def check(self, columns: Sequence[str]) -> None:
        """Raise a DataError when a needed column is missing from a piece, or its type changes between pieces."""

    def batches(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def reduce(self, columns: Sequence[str], empty: Callable[[], Any]) -> Any:
        """A mergeable pass over the pieces: ``empty()`` makes a part, which ``add``s every piece in turn."""
        part = empty()
        for df in self.batches(columns):
            part.add(df)
        return part


def _kind(t: pa.DataType) -> str:
    """A type's kind as the design reads it: a change of kind between files would change the encoding."""
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_boolean(t):
        return "logical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_null(t):
        return "null"
    return str(t)


class ParquetSource(Source):
    """One Parquet file, a directory of them, or a ``pyarrow.dataset.Dataset``, read file by file in record batches."""

    def __init__(self, files: list[str], filesystem=None, description: str = "Parquet data"):
        self.files = files
        self.filesystem = filesystem
        self.description = description
        self._schemas: list[pa.Schema] | None = None

    @classmethod
    def from_path(cls, path: Path) -> ParquetSource:
        if not path.exists():
            raise FileError(f"no file or directory at {path}")
        if path.is_dir():
            files = sorted(str(p) for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
            if not files:
                raise FileError(f"the directory {path} holds no files (a directory of Parquet files was expected)")
            return cls(files, description=f"Parquet directory {path}")
        return cls([str(path)], description=f"Parquet file {path}")

    @classmethod
    def from_dataset(cls, dataset: pads.Dataset) -> ParquetSource:
        if not isinstance(dataset, pads.FileSystemDataset) or not isinstance(dataset.format, pads.ParquetFileFormat):
            raise DataError("an Arrow dataset of Parquet files (pyarrow.dataset.dataset(path, format='parquet')) "
                            f"is needed, not a {type(dataset).__name__}")  # fmt: skip
        if not dataset.files:
            raise DataError("the Arrow dataset has no files")
        return cls(list(dataset.files), dataset.filesystem, f"Arrow dataset of {len(dataset.files)} file(s)")

    def _open(self, file: str) -> pq.ParquetFile:
        try:
            if self.filesystem is not None:
                return pq.ParquetFile(self.filesystem.open_input_file(file))
            return pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{file} is not a Parquet file ({exc})") from None

    @property
    def schemas(self) -> list[pa.Schema]:
        if self._schemas is None:
            self._schemas = [self._open(f).schema_arrow for f in self.files]
        return self._schemas

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.schemas:
            seen.update(dict.fromkeys(s.names))
        return list(seen)

    def check(self, columns: Sequence[str]) -> None:
        for c in columns:
            lacking = [f for f, s in zip(self.files, self.schemas, strict=True) if c not in s.names]
            if lacking:
                shown = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
                raise DataError(f"column '{c}' is needed by the formula but missing from {len(lacking)} of "
                                f"{len(self.files)} file(s) of the {self.description}: {shown}")  # fmt: skip
            kinds: dict[str, str] = {}
            for f, s in zip(self.files, self.schemas, strict=True):
                kinds.setdefault(_kind(s.field(c).type), f)
            kinds.pop("null", None)  # a column that is all missing in one file has no type of its own there
            if len(kinds) > 1:
                what = "; ".join(f"{k} in {f}" for k, f in kinds.items())
                raise DataError(f"column '{c}' changes type between files of the {self.description} ({what}); "
                                "write it with one type in every file")  # fmt: skip

    def record_batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The columns' record batches, file by file (pyarrow decodes a batch's columns in parallel)."""
        for f in self.files:
            pf = self._open(f)
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=list(columns), use_threads=True)

    def batches(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        for rb in self.record_batches(columns):
            yield rb.to_pandas()
