"""Fits from Parquet files, directories and Arrow datasets against the in-memory fit of the same rows (issue 19).

Pieces are made small (``BATCH_ROWS``) so that every source is read in many
record batches, and the directory's files have a level split across them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, DataError, DroppedRowsWarning, FileError, HierbayesError, ModelError
from hierbayes.reml import LmmObjective
from hierbayes.sources import readers


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(readers, "BATCH_ROWS", 257)


def crossed(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """A crossed design: a factor with many levels and a random slope, crossed with one of few levels."""
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, 150, n)
    g2 = rng.integers(0, 12, n)
    x = rng.normal(size=n)
    u = rng.normal(size=(150, 2)) * [0.8, 0.3]
    y = 40 + 0.5 * x + u[g1, 0] + u[g1, 1] * x + rng.normal(size=12)[g2] + rng.normal(size=n)
    trt = rng.choice(["ctl", "b", "A"], n)
    df = pd.DataFrame({"y": y + (trt == "b") * 0.4, "x": x, "trt": trt, "g1": [f"s{i}" for i in g1], "g2": g2,
                       "unused": rng.normal(size=n)})  # fmt: skip
    df.loc[[5, 17], "y"] = np.nan
    df.loc[[9], "g2"] = np.nan
    df.loc[[11], "trt"] = None
    return df


FORMULA = "y ~ x + trt + (x | g1) + (1 | g2)"


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hb.lmer(formula, data, **kw)


def _write_dir(df: pd.DataFrame, path, parts: int = 4):
    path.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        df.iloc[chunk].to_parquet(path / f"part-{i}.parquet")
    return path


def assert_same_fit(mem, src):
    """The issue's targets: criterion 1e-10 relative, fixed effects 1e-6, variance parameters 1e-5."""
    assert abs(src.objective - mem.objective) <= 1e-10 * abs(mem.objective)
    np.testing.assert_allclose(src.fixef.to_numpy(), mem.fixef.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(src.theta.to_numpy(), mem.theta.to_numpy(), rtol=0, atol=1e-5)
    assert abs(src.sigma - mem.sigma) <= 1e-5 * mem.sigma
    assert list(src.fixef.index) == list(mem.fixef.index)
    assert src.nobs == mem.nobs and src.n_dropped == mem.n_dropped
    theta = mem.estimates.theta
    a, b = LmmObjective(mem.design, mem.reml)(theta), LmmObjective(src.design, src.reml)(theta)
    assert abs(a - b) <= 1e-12 * abs(a)


@pytest.fixture(scope="module")
def frame():
    return crossed()


@pytest.fixture(scope="module")
def mem(frame):
    return _fit(FORMULA, frame)


@pytest.mark.parametrize("kind", ["file", "str", "directory", "dataset"])
def test_same_fit_as_in_memory(frame, mem, tmp_path, kind):
    if kind in ("file", "str"):
        frame.to_parquet(tmp_path / "d.parquet")
        data = tmp_path / "d.parquet" if kind == "file" else str(tmp_path / "d.parquet")
    elif kind == "directory":
        data = _write_dir(frame, tmp_path / "d")
    else:
        data = pads.dataset(_write_dir(frame, tmp_path / "d"), format="parquet")
    src = _fit(FORMULA, data)
    assert_same_fit(mem, src)
    assert type(src.design).__name__ == "StreamedDesign" and src.design.X.shape[0] == 0
    # levels in the in-memory order; ranef and coef the same
    for g in ("g1", "g2"):
        assert list(src.ranef[g].index) == list(mem.ranef[g].index)
        np.testing.assert_allclose(src.ranef[g].to_numpy(), mem.ranef[g].to_numpy(), atol=1e-5)
        np.testing.assert_allclose(src.coef[g].to_numpy(), mem.coef[g].to_numpy(), atol=1e-5)


def test_ml_and_dropped_rows_counted_as_for_a_frame(frame, tmp_path):
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.warns(DroppedRowsWarning) as rec_src:
        src = hb.lmer(FORMULA, tmp_path / "d.parquet", REML=False)
    with pytest.warns(DroppedRowsWarning) as rec_mem:
        mem = hb.lmer(FORMULA, frame, REML=False)
    msg = [str(w.message) for w in rec_src if w.category is DroppedRowsWarning]
    assert msg == [str(w.message) for w in rec_mem if w.category is DroppedRowsWarning]
    assert "4 of 3000 rows" in msg[0]
    assert_same_fit(mem, src)
    assert src.design.frame.dropped_by_column == mem.design.frame.dropped_by_column
    with pytest.raises(DataError, match="na_action='raise'"):
        hb.lmer(FORMULA, tmp_path / "d.parquet", na_action="raise")


@pytest.mark.filterwarnings("ignore::hierbayes.inference.compare.RefitWarning")
def test_extractors(frame, mem, tmp_path):
    frame.to_parquet(tmp_path / "d.parquet")
    src = _fit(FORMULA, tmp_path / "d.parquet")
    np.testing.assert_allclose(src.vcov.to_numpy(), mem.vcov.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(src.varcorr["sdcor"].to_numpy(), mem.varcorr["sdcor"].to_numpy(), rtol=1e-5)
    a, b = mem.coef_table(), src.coef_table()
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-4)  # Satterthwaite df included
    for t in (1, 2, 3):
        np.testing.assert_allclose(src.anova(type=t).to_numpy(dtype=float), mem.anova(type=t).to_numpy(dtype=float),
                                   rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(src.confint(method="Wald").to_numpy(), mem.confint(method="Wald").to_numpy(),
                               rtol=1e-5)  # fmt: skip
    text = str(src.summary())
    assert "Scaled residuals: not kept" in text and "Satterthwaite" in text
    new = frame.iloc[:40]
    np.testing.assert_allclose(src.predict(new), mem.predict(new), atol=1e-5)
    np.testing.assert_allclose(src.predict(new, re_form="NA"), mem.predict(new, re_form="NA"), atol=1e-6)
    ml_src, ml_mem = src.refit_ml(), mem.refit_ml()
    assert abs(ml_src.deviance - ml_mem.deviance) <= 1e-9 * abs(ml_mem.deviance)
    # anova between two such fits
    small = _fit("y ~ trt + (x | g1) + (1 | g2)", tmp_path / "d.parquet")
    small_mem = _fit("y ~ trt + (x | g1) + (1 | g2)", frame)
    np.testing.assert_allclose(hb.anova(small, src)["Chisq"].to_numpy(dtype=float),
                               hb.anova(small_mem, mem)["Chisq"].to_numpy(dtype=float), rtol=1e-5)  # fmt: skip
    assert "trtb" in str(hb.compare(src, small))


@pytest.mark.slow
def test_profile_confint(frame, mem, tmp_path):
    frame.to_parquet(tmp_path / "d.parquet")
    src = _fit("y ~ x + (1 | g1) + (1 | g2)", tmp_path / "d.parquet")
    ref = _fit("y ~ x + (1 | g1) + (1 | g2)", frame)
    np.testing.assert_allclose(src.confint(method="profile").to_numpy(), ref.confint(method="profile").to_numpy(),
                               rtol=1e-4)  # fmt: skip


def test_per_row_extractors_say_how(frame, tmp_path):
    frame.to_parquet(tmp_path / "d.parquet")
    src = _fit(FORMULA, tmp_path / "d.parquet")
    for get in (lambda: src.fitted, lambda: src.residuals, lambda: src.resid(), lambda: src.predict(),
                lambda: src.simulate(), lambda: src.r2(), lambda: src.coef_table(ddf="kenward-roger")):  # fmt: skip
        with pytest.raises(DataError, match="does not keep"):
            get()


def test_save_load(frame, tmp_path):
    frame.to_parquet(tmp_path / "d.parquet")
    src = _fit(FORMULA, tmp_path / "d.parquet")
    src.save(tmp_path / "fit.nc")
    back = hb.load(tmp_path / "fit.nc")
    assert back.objective == src.objective
    np.testing.assert_array_equal(back.fixef.to_numpy(), src.fixef.to_numpy())
    new = frame.iloc[:30]
    np.testing.assert_array_equal(back.predict(new), src.predict(new))
    np.testing.assert_allclose(back.coef_table().to_numpy(), src.coef_table().to_numpy(), rtol=1e-10)
    assert back.nobs == src.nobs and back.n_dropped == src.n_dropped


@pytest.mark.parametrize(
    "formula",
    ["y ~ scale(x) * trt + (1 | g1)", "y ~ poly(x, 2) + trt + (scale(x) | g1)", "y ~ scale(x, center=FALSE) + (1 | g1)",
     "log(y) ~ x + (1 | g1:trt) + (1 | g2)"],
)  # fmt: skip
def test_whole_column_statistics_and_interactions(frame, tmp_path, formula):
    """scale() and poly() get the whole column's statistics (first pass); predict replays them."""
    data = frame.assign(trt=frame["trt"].astype("category"))
    _write_dir(data, tmp_path / "d", parts=3)
    mem, src = _fit(formula, data), _fit(formula, tmp_path / "d")
    assert_same_fit(mem, src)
    new = data.iloc[100:140]
    np.testing.assert_allclose(src.predict(new), mem.predict(new), atol=1e-5)


def test_categorical_levels_and_aliased_columns(tmp_path):
    """A categorical's category order is kept; an aliased column is dropped as for the frame, with its warning."""
    df = crossed(1200, seed=3)
    df["trt"] = pd.Categorical(df["trt"], categories=["ctl", "b", "A", "unused"])
    df["x2"] = 2 * df["x"] + 1
    df.to_parquet(tmp_path / "d.parquet")
    f = "y ~ trt + x + x2 + (1 | g1)"
    with pytest.warns(hb.errors.RankDeficiencyWarning, match="x2"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        src = hb.lmer(f, tmp_path / "d.parquet")
    mem = _fit(f, df)
    assert list(src.fixef.index) == list(mem.fixef.index) == ["(Intercept)", "trtb", "trtA", "x"]
    assert_same_fit(mem, src)


def test_bad_input(frame, tmp_path):
    with pytest.raises(FileError, match="no file or directory"):
        hb.lmer(FORMULA, tmp_path / "nothing.parquet")
    (tmp_path / "text.parquet").write_text("y,x\n1,2\n")
    with pytest.raises(DataError, match="not a Parquet file"):
        hb.lmer(FORMULA, tmp_path / "text.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileError, match="holds no files"):
        hb.lmer(FORMULA, tmp_path / "empty")
    # a needed column missing from one file
    d = _write_dir(frame, tmp_path / "d", parts=3)
    frame.iloc[:10].drop(columns="x").to_parquet(d / "part-9.parquet")
    with pytest.raises(DataError, match=r"column 'x' is needed by the formula but missing from 1 of 4"):
        hb.lmer(FORMULA, d)
    # ... but a column the formula does not use may be missing
    d2 = _write_dir(frame, tmp_path / "d2", parts=2)
    frame.iloc[:10].drop(columns="unused").to_parquet(d2 / "part-9.parquet")
    _fit(FORMULA, d2)
    # a type change between files
    d3 = _write_dir(frame, tmp_path / "d3", parts=2)
    frame.iloc[:10].assign(x=frame["x"].iloc[:10].astype(str)).to_parquet(d3 / "part-9.parquet")
    with pytest.raises(DataError, match="column 'x' changes type between files"):
        hb.lmer(FORMULA, d3)
    # unknown column: the frame's message
    frame.to_parquet(tmp_path / "f.parquet")
    with pytest.raises(hb.errors.ColumnNotFoundError, match="unknwn"):
        hb.lmer("y ~ unknwn + (1 | g1)", tmp_path / "f.parquet")
    with pytest.raises(ArgumentError, match="weights= is not supported"):
        hb.lmer(FORMULA, tmp_path / "f.parquet", weights="x")
    with pytest.raises(ModelError, match="needs a pandas DataFrame"):
        hb.glmer("y ~ x + (1 | g1)", tmp_path / "f.parquet", family="poisson")
    with pytest.raises(HierbayesError):
        hb.lmer(FORMULA, pads.dataset(pa.table({"a": [1]})))


def test_grouping_nulls_in_some_files_dropped_and_counted(frame, tmp_path):
    d = _write_dir(frame, tmp_path / "d", parts=3)
    t = pq.read_table(d / "part-1.parquet")
    g = t.column("g1").to_pylist()
    g[:7] = [None] * 7
    pq.write_table(t.set_column(t.schema.get_field_index("g1"), "g1", pa.array(g)), d / "part-1.parquet")
    whole = pd.read_parquet(d)
    with pytest.warns(DroppedRowsWarning, match=r"g1 \(7\)"):
        src = hb.lmer(FORMULA, d)
    assert_same_fit(_fit(FORMULA, whole), src)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x * trt + (1 | g2i) + (0 + x | g1)",
        pytest.param("y ~ x + trt + (x | g1) + (1 | g2i)", marks=pytest.mark.slow),
        pytest.param("y ~ x + (x || g2i) + (1 | trt)", marks=pytest.mark.slow),
    ],
)
def test_fast_pass_same_as_general_and_in_memory(frame, tmp_path, monkeypatch, formula):
    """The compiled pass over Arrow batches (plain columns, integer and text grouping) gives the general pass's fit."""
    from hierbayes.sources import fast, stream

    data = frame.assign(g2i=frame["g2"].fillna(-3).astype("int32") * 7)  # an integer grouping column, not 0..n-1
    _write_dir(data, tmp_path / "d", parts=3)
    made = []
    init = stream.ArrowCrossPass.__init__
    monkeypatch.setattr(stream.ArrowCrossPass, "__init__", lambda self, *a: (made.append(1), init(self, *a))[1])
    src = _fit(formula, tmp_path / "d")
    assert made, "the fast pass was not taken"
    monkeypatch.setattr(fast, "eligible", lambda *a: False)
    general = _fit(formula, tmp_path / "d")
    assert len(made) == 1
    assert_same_fit(general, src)
    assert_same_fit(_fit(formula, data), src)
    for g in src.ranef:
        assert list(src.ranef[g].index) == list(general.ranef[g].index)


def test_integer_widths_and_floats_between_files(frame, tmp_path):
    """A numeric column written as int32, int64 and float64 in different files is one numeric column."""
    data = frame.assign(g2i=frame["g2"].fillna(-3).astype("int64"))
    d = tmp_path / "d"
    d.mkdir()
    for i, (chunk, dtype) in enumerate(zip(np.array_split(np.arange(len(data)), 3), ["int32", "int64", "float64"])):
        data.iloc[chunk].assign(g2i=data["g2i"].iloc[chunk].astype(dtype)).to_parquet(d / f"part-{i}.parquet")
    f = "y ~ x + (1 | g2i) + (x | g1)"
    assert_same_fit(_fit(f, pd.read_parquet(d)), _fit(f, d))


def test_integer_grouping_nulls_in_one_file_arrow_pass(frame, tmp_path, monkeypatch):
    """Nulls in an integer grouping column of one file: dropped and counted, in the Arrow-batch pass."""
    from hierbayes.sources import stream

    d = _write_dir(frame.assign(g2i=frame["g2"].fillna(-3).astype("int64")), tmp_path / "d", parts=3)
    f = "y ~ x + (1 | g2i) + (x | g1)"
    made = []
    init = stream.ArrowCrossPass.__init__
    monkeypatch.setattr(stream.ArrowCrossPass, "__init__", lambda self, *a: (made.append(1), init(self, *a))[1])
    t = pq.read_table(d / "part-1.parquet")
    g = t.column("g2i").to_pylist()
    g[:4] = [None] * 4
    pq.write_table(t.set_column(t.schema.get_field_index("g2i"), "g2i", pa.array(g, pa.int64())), d / "part-1.parquet")
    with pytest.warns(DroppedRowsWarning, match=r"g2i \(4\)"):
        src = hb.lmer(f, d)
    assert made, "the Arrow-batch pass was not taken"
    mem = _fit(f, pd.read_parquet(d))
    assert_same_fit(mem, src)
    assert list(src.ranef["g2i"].index) == list(mem.ranef["g2i"].index)
