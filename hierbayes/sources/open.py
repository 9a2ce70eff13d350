"""Which data are read in pieces, and the :class:`~hierbayes.sources.readers.Source` that reads them.

A path or an Arrow dataset is read by :class:`ParquetSource`; polars and Dask frames by the
classes of :mod:`hierbayes.sources.frames` (which import polars and dask only when given one).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads

from hierbayes.errors import DataError
from hierbayes.sources.frames import DaskSource, PolarsSource
from hierbayes.sources.readers import ParquetSource, Source


def is_source(data: object) -> bool:
    """Whether ``data`` is read in pieces (a path, an Arrow dataset, a polars or Dask frame), not a pandas frame."""
    if isinstance(data, (str, Path, pads.Dataset)):
        return True
    module = type(data).__module__ or ""
    return module.startswith(("polars", "dask"))


def open_source(data: object) -> Source:
    """The :class:`Source` for ``data`` (see :func:`is_source`).

    Raises
    ------
    FileError
        A path that does not exist, or holds no Parquet file.
    DataError
        A file that is not Parquet.
    """
    if isinstance(data, (str, Path)):
        return ParquetSource.from_path(Path(data))
    if isinstance(data, pads.Dataset):
        return ParquetSource.from_dataset(data)
    module = type(data).__module__ or ""
    if module.startswith("polars"):
        return PolarsSource(data)
    if module.startswith("dask"):
        return DaskSource(data)
    raise DataError(f"data must be a pandas DataFrame, a Parquet path, an Arrow dataset, or a polars or Dask frame; "
                    f"got {type(data).__name__}")  # fmt: skip
