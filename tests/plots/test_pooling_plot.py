"""Pooling plot: panels, data points and the three kinds of lines."""

from __future__ import annotations

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.errors import ModelError
from tests.plots.readback import lines, scatters
from tests.tables import fits


def _panels(fig):
    return [a for a in fig.axes if a.get_visible()]


def test_one_panel_per_subject_with_its_lines() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    table = hb.pooling(reml, post)
    fig = hb.plots.pooling(reml, post)
    panels = _panels(fig)
    assert len(panels) == 18
    data = fits.data("sleepstudy")
    for a in panels:
        subject = a.get_title().split(" ")[0]
        pts = scatters(a)["data"]
        rows = data[data["Subject"].astype(str) == subject]
        assert np.allclose(pts, rows[["Days", "Reaction"]].to_numpy())
        ls = lines(a)
        assert set(ls) == {"complete pooling", "no pooling", "partial pooling (REML)", "partial pooling (Bayes)"}
        for label, (ln,) in ls.items():
            x, y = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
            coef = table.loc[subject, label]
            assert np.allclose(y, coef["(Intercept)"] + coef["Days"] * x)
        assert ls["complete pooling"][0].get_linestyle() == "--"


def test_many_groups_are_sampled_across_sizes() -> None:
    fit = fits.reml(fits.HSB_CSES, "hsb")
    fig = hb.plots.pooling(fit, max_panels=12)
    panels = _panels(fig)
    assert len(panels) == 12
    sizes = [int(a.get_title().split("n=")[1].rstrip(")")) for a in panels]
    n = hb.pooling(fit)[("n", "")]
    assert sizes == sorted(sizes) and sizes[0] == n.min() and sizes[-1] == n.max()
    assert "12 of 160 schools" in fig.get_suptitle()
    fig = hb.plots.pooling(fit, levels=["1224", "1288"])
    assert [a.get_title().split(" ")[0] for a in _panels(fig)] == ["1224", "1288"]


def test_needs_exactly_one_predictor() -> None:
    with pytest.raises(ModelError, match="none"):
        hb.plots.pooling(fits.reml(fits.HSB_NULL, "hsb"))
    with pytest.raises(ModelError, match="cses, sectorCatholic"):
        hb.plots.pooling(fits.reml("mathach ~ cses + sector + (1 | school)", "hsb"))
