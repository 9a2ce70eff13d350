"""Fits from polars frames (streamed) and Dask frames (reduced where the partitions live) against the in-memory fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import DataError
from hierbayes.sources import readers
from tests.sources.test_parquet import FORMULA, _fit, assert_same_fit, crossed

pl = pytest.importorskip("polars")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(readers, "BATCH_ROWS", 311)


@pytest.fixture(scope="module")
def frame():
    return crossed(seed=5)


@pytest.fixture(scope="module")
def mem(frame):
    return _fit(FORMULA, frame)


@pytest.mark.parametrize("lazy", [False, True])
def test_polars(frame, mem, lazy):
    data = pl.from_pandas(frame)
    src = _fit(FORMULA, data.lazy() if lazy else data)
    assert_same_fit(mem, src)
    assert src.design.streamed.source == ("polars LazyFrame" if lazy else "polars DataFrame")


def test_polars_scale_and_categorical(frame):
    """A polars Categorical: the levels of the frame's own pandas form (its categories' order), as in memory."""
    data = pl.from_pandas(frame.assign(trt=frame["trt"].astype("category")))
    f = "y ~ scale(x) * trt + (1 | g1)"
    mem, src = _fit(f, data.to_pandas()), _fit(f, data.lazy())
    assert_same_fit(mem, src)


@pytest.mark.parametrize("divisions", ["known", "unknown"])
def test_dask_local_scheduler(frame, mem, divisions):
    ddf = dd.from_pandas(frame, npartitions=7)
    if divisions == "unknown":  # the sums do not depend on the order of the partitions: no divisions needed
        ddf = ddf.clear_divisions()
    assert_same_fit(mem, _fit(FORMULA, ddf))


def test_dask_local_cluster_same_as_single_process(frame, mem, tmp_path):
    """A LocalCluster with 2 workers gives the numbers of the pyarrow pass over the same rows."""
    distributed = pytest.importorskip("distributed")
    frame.to_parquet(tmp_path / "d.parquet")
    single = _fit(FORMULA, tmp_path / "d.parquet")
    ddf = dd.from_pandas(frame, npartitions=6)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        src = _fit(FORMULA, ddf)
    assert_same_fit(mem, src)
    assert abs(src.objective - single.objective) <= 1e-10 * abs(single.objective)
    np.testing.assert_allclose(src.fixef.to_numpy(), single.fixef.to_numpy(), atol=1e-6)


def test_dask_type_change_between_partitions(frame):
    parts = [frame.iloc[:1500], frame.iloc[1500:].assign(x=frame["x"].iloc[1500:].astype(str))]
    ddf = dd.from_delayed([dask.delayed(p) for p in parts], meta=frame.iloc[:0], verify_meta=False)
    with pytest.raises(DataError, match="column 'x' changes type between partitions"):
        hb.lmer(FORMULA, ddf)


def test_dask_series_is_refused(frame):
    with pytest.raises(DataError, match=r"dask\.dataframe\.DataFrame is needed"):
        hb.lmer(FORMULA, dd.from_pandas(frame["y"], npartitions=2))


def test_dask_grouping_nulls_in_some_partitions(frame):
    df = frame.copy()
    df.loc[2000:2004, "g1"] = None
    with pytest.warns(hb.errors.DroppedRowsWarning, match=r"g1 \(5\)"):
        src = hb.lmer(FORMULA, dd.from_pandas(df, npartitions=4))
    assert_same_fit(_fit(FORMULA, pd.DataFrame(df)), src)
