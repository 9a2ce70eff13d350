"""Data larger than memory: Parquet files and directories, Arrow datasets, polars and Dask frames, read in pieces.

``hb.lmer(formula, "data.parquet")`` reads only the columns the formula uses,
in record batches, and fits from the cross-products of [Z X y] accumulated
over them (:mod:`hierbayes.sources.stream`); the rows are never all in memory.
"""

from hierbayes.sources.open import is_source, open_source
from hierbayes.sources.readers import BATCH_ROWS, ParquetSource, Source
from hierbayes.sources.stream import streamed_design

__all__ = ["BATCH_ROWS", "ParquetSource", "Source", "is_source", "open_source", "streamed_design"]
