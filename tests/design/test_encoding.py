"""Encoding of the fixed and random parts: R's names and level order, factors, new data, aliasing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.design import build_design
from hierbayes.design.newdata import encode_rows
from hierbayes.errors import DataError, RankDeficiencyWarning
from hierbayes.reml import LmmObjective


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(20240901)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(1.0, 2.0, n),
            "z": rng.normal(size=n),
            "k": np.tile(["b", "a", "c"], n // 3),
            "n": np.tile([3, 1, 2], n // 3),
            "cat": pd.Categorical(np.tile(["lo", "hi"], n // 2), categories=["lo", "hi"]),
            "g": np.repeat([10, 2, 7, 1, 30, 4], n // 6),
            "a": np.repeat(["p", "q"], n // 2),
            "b": np.tile(np.repeat(["u", "v", "w"], 5), n // 15),
        }
    )


def quiet_design(formula: str, data: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_design(formula, data, **kw)


# --- fixed effects: names and coding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "names"),
    [
        ("y ~ x + (1 | g)", ("(Intercept)", "x")),
        ("y ~ x * k + (1 | g)", ("(Intercept)", "x", "kb", "kc", "x:kb", "x:kc")),
        ("y ~ x:k + (1 | g)", ("(Intercept)", "x:ka", "x:kb", "x:kc")),
        ("y ~ 0 + k + (1 | g)", ("ka", "kb", "kc")),
        ("y ~ k - 1 + (1 | g)", ("ka", "kb", "kc")),
        ("y ~ -1 + x + (1 | g)", ("x",)),
        ("y ~ cat + (1 | g)", ("(Intercept)", "cathi")),
        ("y ~ C(n) + (1 | g)", ("(Intercept)", "C(n)2", "C(n)3")),
        ("y ~ log(x) + scale(z) + I(x^2) + (1 | g)", ("(Intercept)", "log(x)", "scale(z)", "I(x^2)")),
        ("y ~ I(x**2) + (1 | g)", ("(Intercept)", "I(x^2)")),
    ],
)
def test_fixed_effect_column_names_are_r_style(df, formula, names):
    assert quiet_design(formula, df).x_names == names


def test_logical_predictor_named_like_r(df):
    data = df.assign(late=df["x"] > 1.5)
    d = quiet_design("y ~ x * late + (late | g)", data)
    assert d.x_names == ("(Intercept)", "x", "lateTRUE", "x:lateTRUE")
    assert d.blocks[0].terms == ("(Intercept)", "lateTRUE")
    np.testing.assert_array_equal(d.X[:, 2], data["late"].to_numpy(float))  # FALSE is the reference


def test_treatment_coding_with_the_first_level_as_reference(df):
    d = quiet_design("y ~ k + (1 | g)", df)
    kb, kc = d.X[:, 1], d.X[:, 2]
    np.testing.assert_array_equal(kb, (df["k"] == "b").to_numpy(float))
    np.testing.assert_array_equal(kc, (df["k"] == "c").to_numpy(float))
    assert np.all(d.X[(df["k"] == "a").to_numpy(), 1:] == 0)  # "a" (first in sort order) is the reference


def test_categorical_keeps_its_category_order(df):
    d = quiet_design("y ~ cat + (1 | g)", df)
    np.testing.assert_array_equal(d.X[:, 1], (df["cat"] == "hi").to_numpy(float))  # "lo" is the reference


def test_transforms_evaluate_like_r(df):
    d = quiet_design("y ~ log(x) + scale(z) + I(x^2) + (1 | g)", df)
    z = df["z"].to_numpy()
    np.testing.assert_allclose(d.X[:, 1], np.log(df["x"]))
    np.testing.assert_allclose(d.X[:, 2], (z - z.mean()) / z.std(ddof=1))  # R's scale(): sd with n - 1
    np.testing.assert_allclose(d.X[:, 3], df["x"] ** 2)


# --- grouping factors -----------------------------------------------------------------------------------------


def test_levels_follow_r_factor_order(df):
    d = quiet_design("y ~ x + (1 | g) + (1 | k)", df)
    assert d.block("g").levels == ("1", "2", "4", "7", "10", "30")  # numeric order, not "1" < "10" < "2"
    assert d.block("k").levels == ("a", "b", "c")
    cat = df.assign(h=pd.Categorical(df["k"], categories=["c", "a", "b", "unused"]))
    assert quiet_design("y ~ x + (1 | h)", cat).block("h").levels == ("c", "a", "b")  # unused dropped


NUMERIC_ORDER = ("1", "2", "4", "7", "10", "30")
STRING_ORDER = ("1", "10", "2", "30", "4", "7")  # R's factor() of character values sorts them as text


@pytest.mark.parametrize(
    ("convert", "levels"),
    [
        (lambda g: g, NUMERIC_ORDER),
        (lambda g: g.astype(float), NUMERIC_ORDER),
        (lambda g: g.astype("Int64"), NUMERIC_ORDER),
        (lambda g: g.astype("category"), NUMERIC_ORDER),
        (lambda g: g.astype(str), STRING_ORDER),
        (lambda g: g.astype(str).astype(object), STRING_ORDER),
    ],
    ids=["int", "float", "Int64", "category", "str", "object"],
)
def test_grouping_variable_is_a_factor_whatever_its_dtype(df, convert, levels):
    ref = quiet_design("y ~ x + (x | g)", df)
    d = quiet_design("y ~ x + (x | g)", df.assign(g=convert(df["g"])))
    b, rb = d.blocks[0], ref.blocks[0]
    assert b.levels == levels
    assert [b.levels[c] for c in b.codes] == [rb.levels[c] for c in rb.codes]
    np.testing.assert_array_equal(b.Z, rb.Z)  # intercept and x columns, never g itself
    assert LmmObjective(d)([0.7, 0.1, 0.3]) == pytest.approx(LmmObjective(ref)([0.7, 0.1, 0.3]), rel=1e-12)


def test_boolean_grouping_variable(df):
    d = quiet_design("y ~ x + (1 | flag)", df.assign(flag=df["x"] > 1.5))
    assert d.block("flag").levels == ("FALSE", "TRUE")  # R's labels of a logical
    np.testing.assert_array_equal(d.block("flag").codes, (df["x"] > 1.5).to_numpy(int))


def test_interaction_grouping_factor_levels(df):
    d = quiet_design("y ~ x + (1 | a:b)", df)
    blk = d.block("a:b")
    assert blk.levels == ("p:u", "p:v", "p:w", "q:u", "q:v", "q:w")  # first factor varies slowest, like R
    keys = (df["a"] + ":" + df["b"]).to_numpy()
    assert [blk.levels[c] for c in blk.codes] == list(keys)


def test_nested_factor_named_like_lme4(df):
    d = quiet_design("y ~ x + (1 | a/b)", df)
    assert {b.group for b in d.blocks} == {"b:a", "a"}
    assert d.block("b:a").levels[0] == "u:p"
    assert d.blocks[0].group == "b:a"  # more levels first


def test_nested_equals_its_expansion(df):
    """(1 | a/b) is (1 | a) + (1 | b:a): same blocks, levels and codes."""
    nested = quiet_design("y ~ x + (1 | a/b)", df)
    expanded = quiet_design("y ~ x + (1 | a) + (1 | b:a)", df)
    assert [(b.group, b.levels, b.terms) for b in nested.blocks] == [
        (b.group, b.levels, b.terms) for b in expanded.blocks
    ]
    for b1, b2 in zip(nested.blocks, expanded.blocks, strict=True):
        np.testing.assert_array_equal(b1.codes, b2.codes)


def test_several_bars_on_one_factor_share_a_block(df):
    d = quiet_design("y ~ x + (1 | g) + (0 + x | g)", df)
    assert len(d.blocks) == 1
    blk = d.blocks[0]
    assert blk.terms == ("(Intercept)", "x") and blk.bars == ((0,), (1,))
    assert blk.theta_names == ["g.(Intercept)", "g.x"]


def test_double_bar_gives_diagonal_theta(df):
    blk = quiet_design("y ~ x + (x || g)", df).blocks[0]
    assert blk.bars == ((0,), (1,)) and blk.n_theta == 2
    corr = quiet_design("y ~ x + (x | g)", df).blocks[0]
    assert corr.bars == ((0, 1),) and corr.n_theta == 3
    assert corr.theta_names == ["g.(Intercept)", "g.x.(Intercept)", "g.x"]


def test_crossed_blocks_sorted_by_decreasing_levels():
    d = quiet_design("diameter ~ 1 + (1 | sample) + (1 | plate)", hb.datasets.load("penicillin"))
    assert [b.group for b in d.blocks] == ["plate", "sample"]
    assert [b.nlevels for b in d.blocks] == [24, 6]


# --- new data -------------------------------------------------------------------------------------------------


def test_new_data_reproduces_the_training_encoding(df):
    d = quiet_design("y ~ scale(z) + log(x) + k + C(n) + cat + (1 + scale(z) | g)", df)
    rows = [5, 17, 42]
    new = df.iloc[rows]
    np.testing.assert_allclose(d.fixed_matrix(new), d.X[rows])  # scale() uses the training mean and SD
    enc = encode_rows(d, new)
    codes, Z = enc.blocks[0]
    np.testing.assert_array_equal(codes, d.block("g").codes[rows])
    np.testing.assert_allclose(Z, d.block("g").Z[rows])


def test_new_data_with_one_row_and_one_level(df):
    d = quiet_design("y ~ scale(z) + k + (1 | g)", df)
    one = df.iloc[[3]].assign(k="c")
    z = df["z"].to_numpy()
    expected = [1.0, (one["z"].iloc[0] - z.mean()) / z.std(ddof=1), 0.0, 1.0]
    np.testing.assert_allclose(d.fixed_matrix(one)[0], expected)


def test_new_data_interaction_grouping_factor(df):
    d = quiet_design("y ~ x + (1 | a:b)", df)
    new = pd.DataFrame({"x": [1.0, 1.0, 1.0], "a": ["q", "p", "r"], "b": ["w", "u", "u"]})
    codes, _ = encode_rows(d, new, new_levels="population").blocks[0]
    assert list(codes) == [5, 0, -1]  # q:w, p:u, unseen


def test_new_data_with_an_unseen_fixed_level_names_it(df):
    d = quiet_design("y ~ k + (1 | g)", df)
    with pytest.raises(DataError, match=r"column 'k' in new data has level\(s\) zz not seen"):
        d.fixed_matrix(df.iloc[:2].assign(k="zz"))


# --- rank deficiency ------------------------------------------------------------------------------------------


def test_rank_deficient_x_drops_the_later_aliased_column(df):
    data = df.assign(x2=2 * df["x"])
    with pytest.warns(RankDeficiencyWarning, match=r"dropping 1 column / coefficient: x2$"):
        d = build_design("y ~ x + x2 + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "x") and d.aliased == ("x2",)
    with pytest.warns(RankDeficiencyWarning, match=r": x$"):
        d2 = build_design("y ~ x2 + x + (1 | g)", data)
    assert d2.x_names == ("(Intercept)", "x2")
    assert d.fixed_matrix(data.iloc[:4]).shape == (4, 2)  # new data drops the same column


def test_rank_deficient_factor_interaction(df):
    data = df.assign(k2=df["k"].map({"a": "A", "b": "B", "c": "A"}))  # k2 is a function of k
    with pytest.warns(RankDeficiencyWarning, match="k2B"):
        d = build_design("y ~ k + k2 + (1 | g)", data)
    assert d.x_names == ("(Intercept)", "kb", "kc")
