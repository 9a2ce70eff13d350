"""hb.plots.predictions / comparisons / slopes draw what hb.predictions / comparisons / slopes compute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import hierbayes as hb
from hierbayes.errors import ArgumentError
from tests.plots import readback


@pytest.fixture(scope="module")
def sleep():
    return hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def cbpp():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))


def test_numeric_x_is_a_line_with_its_interval_band(sleep):
    fig = hb.plots.predictions(sleep, conditional="Days", re_form="~0")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    p = hb.predictions(sleep, conditional="Days", re_form="~0")
    (line,) = readback.lines(ax)["REML (95% CI)"]
    np.testing.assert_allclose(line.get_xdata(), p["Days"])
    np.testing.assert_allclose(line.get_ydata(), p["estimate"])
    band = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(band) == 1
    verts = band[0].get_paths()[0].vertices
    assert verts[:, 1].min() == pytest.approx(p["lower"].min())
    assert verts[:, 1].max() == pytest.approx(p["upper"].max())
    assert ax.get_xlabel() == "Days" and ax.get_ylabel() == "Reaction (mean)"


def test_a_second_variable_makes_panels(sleep):
    fig = hb.plots.predictions(sleep, conditional={"Days": [0, 5, 9], "Subject": ["308", "309", "310"]})
    assert [a.get_title() for a in fig.axes] == ["Subject = 308", "Subject = 309", "Subject = 310"]
    p = hb.predictions(sleep, conditional={"Days": [0, 5, 9], "Subject": ["308", "309", "310"]})
    (line,) = readback.lines(fig.axes[1])["REML (95% CI)"]
    np.testing.assert_allclose(line.get_ydata(), p.loc[p.Subject == "309", "estimate"])


def test_factor_x_is_points_with_interval_bars(cbpp):
    fig = hb.plots.predictions(cbpp, conditional="period", re_form="~0")
    ax = fig.axes[0]
    (bars,) = readback.errorbars(ax)
    p = hb.predictions(cbpp, conditional="period", re_form="~0")
    np.testing.assert_allclose(bars["y"], p["estimate"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert ax.get_ylabel() == "probability (mean)"


def test_several_fits_overlaid_with_one_colour_each(cbpp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"), nAGQ=5)
    fig = hb.plots.predictions(cbpp, ml, conditional="period", re_form="~0", labels=["Laplace", "AGQ 5"])
    bars = readback.errorbars(fig.axes[0])
    assert [b["label"] for b in bars] == ["Laplace (95% CI)", "AGQ 5 (95% CI)"]
    assert bars[0]["color"] != bars[1]["color"]
    assert (bars[0]["x"] < bars[1]["x"]).all()  # dodged


def test_comparisons_put_the_pairs_on_the_x_axis_or_in_panels(cbpp, sleep):
    fig = hb.plots.comparisons(cbpp, contrast="period", average_by="all", re_form="~0")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1_vs_2", "1_vs_3", "1_vs_4", "2_vs_3", "2_vs_4",
                                                            "3_vs_4"]  # fmt: skip
    c = hb.comparisons(cbpp, "period", average_by="all", re_form="~0")
    np.testing.assert_allclose(readback.errorbars(ax)[0]["y"], c["estimate"])
    assert any(np.allclose(ln.get_ydata(), 0.0) for ln in ax.get_lines())  # the no-difference line
    fig = hb.plots.comparisons(sleep, contrast={"Days": [0, 9]}, conditional="Subject", comparison="ratio")
    assert fig.axes[0].get_title() == "value = 0_vs_9"
    assert any(np.allclose(ln.get_ydata(), 1.0) for ln in fig.axes[0].get_lines())


def test_slopes_plot(sleep):
    fig = hb.plots.slopes(sleep, wrt="Days", conditional="Subject")
    (bars,) = readback.errorbars(fig.axes[0])
    s = hb.slopes(sleep, "Days", conditional="Subject")
    np.testing.assert_allclose(bars["y"], s["estimate"])
    assert fig.axes[0].get_ylabel() == "dydx of Reaction"


def test_drawing_on_given_axes(sleep):
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = hb.plots.predictions(sleep, conditional={"Days": [0, 9], "Subject": ["308", "309"]}, ax=axes)
    assert out is fig and all(a.get_lines() for a in axes)


def test_plot_arguments(sleep, monkeypatch):
    import importlib

    with pytest.raises(ArgumentError, match="give conditional="):
        hb.plots.predictions(sleep)
    with pytest.raises(ArgumentError, match="at most two variables"):
        hb.plots.predictions(sleep, conditional=["Days", "Subject", "Days"])
    monkeypatch.setattr(importlib.import_module("hierbayes.plots.predictions"), "MAX_PANELS", 10)
    with pytest.raises(ArgumentError, match="'Subject' has 18 values: too many panels"):
        hb.plots.predictions(sleep, conditional=["Days", "Subject"])
