"""Caterpillar plot: positions, sorting and interval ends read back from the Figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import hierbayes as hb
from tests.plots.readback import errorbars
from tests.tables import fits


def test_reml_intervals_are_conditional_sds_and_levels_sorted() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    fig = hb.plots.caterpillar(fit, prob=0.9)
    assert [a.get_title() for a in fig.axes] == ["(Intercept)", "Days"]
    z = stats.norm.ppf(0.95)
    re, cv = fit.ranef["Subject"], fit.ranef_condvar["Subject"]
    order = re["(Intercept)"].sort_values().index
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(order)
    for a, term in zip(fig.axes, ["(Intercept)", "Days"], strict=True):
        (eb,) = errorbars(a)
        assert eb["label"] == "REML"
        # the level at height i is the i-th smallest intercept, in every panel
        assert np.allclose(eb["y"], [list(order).index(lvl) for lvl in re.index])
        assert np.allclose(eb["x"], re[term])
        assert np.allclose(eb["lo"], re[term] - z * np.sqrt(cv[term]))
        assert np.allclose(eb["hi"], re[term] + z * np.sqrt(cv[term]))


def test_bayes_credible_intervals_side_by_side() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    fig = hb.plots.caterpillar(reml, post, terms=["Days"])
    (a,) = fig.axes
    r, b = errorbars(a)
    assert (r["label"], b["label"]) == ("REML", "Bayes")
    assert r["color"] != b["color"]
    draws = post.ranef_draws("Subject").sel(term="Days")
    levels = list(draws.level.values)
    assert np.allclose(b["x"], draws.mean(("chain", "draw")).values)
    lo = draws.quantile(0.025, dim=("chain", "draw")).values
    assert np.allclose(b["lo"], lo)
    # dodged: the Bayes point of a level sits just above the REML point
    assert np.all(b["y"] - r["y"] > 0) and np.all(b["y"] - r["y"] < 0.5)
    assert levels == list(reml.ranef["Subject"].index)


def test_many_levels_get_thinned_labels() -> None:
    fit = fits.reml(fits.HSB_NULL, "hsb")
    fig = hb.plots.caterpillar(fit)
    a = fig.axes[0]
    (eb,) = errorbars(a)
    assert len(eb["x"]) == 160 and np.all(np.diff(np.sort(eb["y"])) == 1)
    ticks = [t.get_text() for t in a.get_yticklabels()]
    assert 20 <= len(ticks) <= 40 and all(ticks)
    assert fig.get_figheight() <= 14


def test_draws_on_given_axes_and_rejects_unknown_terms() -> None:
    from matplotlib.figure import Figure

    fit = fits.reml(fits.SLEEP, "sleepstudy")
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert hb.plots.caterpillar(fit, ax=axes) is fig
    assert len(errorbars(axes[1])) == 1
    with pytest.raises(ValueError, match="no random-effect term"):
        hb.plots.caterpillar(fit, terms=["cses"])
    with pytest.raises(ValueError, match="2 panel"):
        hb.plots.caterpillar(fit, ax=axes[0])


def test_zero_line_as_lme4_dotplot() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    for a in hb.plots.caterpillar(fit).axes:
        zero = [ln for ln in a.get_lines() if ln.get_label() == "_zero"]
        assert len(zero) == 1 and np.all(np.asarray(zero[0].get_xdata(), float) == 0.0)


def test_extremes_show_the_lowest_and_highest_levels_all_labelled() -> None:
    fit = fits.reml(fits.HSB_NULL, "hsb")
    fig = hb.plots.caterpillar(fit, extremes=10)
    a = fig.axes[0]
    (eb,) = errorbars(a)
    order = fit.ranef["school"]["(Intercept)"].sort_values(kind="stable")
    wanted = list(order.index[:10]) + list(order.index[-10:])
    assert [t.get_text() for t in a.get_yticklabels()] == wanted
    assert np.allclose(np.sort(eb["x"]), order.loc[wanted].to_numpy())
    assert "the 10 lowest and highest of 160 levels" in a.get_ylabel()
    assert [ln for ln in a.get_lines() if ln.get_label() == "_gap"]
    # few levels: extremes has nothing to leave out
    small = hb.plots.caterpillar(fits.reml(fits.SLEEP, "sleepstudy"), extremes=10)
    assert len(errorbars(small.axes[0])[0]["x"]) == 18
    with pytest.raises(ValueError, match="extremes"):
        hb.plots.caterpillar(fit, extremes=0)
