"""Shrinkage plot: arrows from no pooling to partial pooling, the covariance ellipse, 1D against group size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.errors import ModelError
from tests.plots.readback import lines, quivers, scatters
from tests.tables import fits


def _arrows(q) -> tuple[np.ndarray, np.ndarray]:
    start = np.column_stack([q.X, q.Y])
    return start, start + np.column_stack([q.U, q.V])


def test_2d_arrows_go_from_no_pooling_to_each_fits_coef() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    table = hb.pooling(reml, post)
    fig = hb.plots.shrinkage(reml, post)
    (a,) = fig.axes
    # the axes say what the numbers are in the response's terms, not only "(Intercept)" (issue 17)
    assert (a.get_xlabel(), a.get_ylabel()) == (
        "(Intercept): Reaction at Days = 0",
        "Days: change in Reaction per unit of Days",
    )
    q_reml, q_bayes = quivers(a)
    nop = table["no pooling"][["(Intercept)", "Days"]].to_numpy()
    for q, label in ((q_reml, "REML"), (q_bayes, "Bayes")):
        start, end = _arrows(q)
        assert np.allclose(start, nop)
        assert np.allclose(end, table[f"partial pooling ({label})"][["(Intercept)", "Days"]].to_numpy())
    pts = scatters(a)
    assert np.allclose(pts["complete pooling"], table["complete pooling"].iloc[[0]][["(Intercept)", "Days"]])
    assert np.allclose(pts["partial pooling (REML)"], table["partial pooling (REML)"][["(Intercept)", "Days"]])


def test_ellipse_is_the_fitted_random_effects_contour() -> None:
    reml = fits.reml(fits.SLEEP, "sleepstudy")
    fig = hb.plots.shrinkage(reml, ellipse_levels=(0.8,))
    (ln,) = lines(fig.axes[0])["REML 80% of Subjects"]
    pts = np.column_stack([ln.get_xdata(), ln.get_ydata()]) - reml.fixef.to_numpy()
    q = np.einsum("ij,jk,ik->i", pts, np.linalg.inv(reml.covariances["Subject"]), pts)
    assert np.allclose(q, stats.chi2.ppf(0.8, 2))


def test_1d_against_group_size_hsb() -> None:
    fit = fits.reml(fits.HSB_NULL, "hsb")
    table = hb.pooling(fit)
    fig = hb.plots.shrinkage(fit)
    (a,) = fig.axes
    assert a.get_xlabel() == "rows per school (group size)"
    assert a.get_ylabel() == "mean mathach per school"
    (q,) = quivers(a)
    start, end = _arrows(q)
    assert np.allclose(start[:, 0], table[("n", "")]) and np.allclose(end[:, 0], start[:, 0])  # vertical arrows
    data = fits.data("hsb")
    means = data.groupby(data["school"].astype(str))["mathach"].mean().loc[table.index]
    assert np.allclose(start[:, 1], means)  # no pooling = each school's mean
    assert np.allclose(end[:, 1], fit.coef["school"]["(Intercept)"])  # empirical Bayes means
    # shrinkage toward the grand mean: every school moves toward it, small schools move more
    gm = fit.fixef["(Intercept)"]
    assert np.all(np.abs(end[:, 1] - gm) <= np.abs(start[:, 1] - gm) + 1e-12)
    frac = 1 - np.abs(end[:, 1] - gm) / np.abs(start[:, 1] - gm)
    assert np.corrcoef(table[("n", "")], frac)[0, 1] < -0.8
    assert lines(a)["REML fixed effect (Intercept)"][0].get_ydata()[0] == pytest.approx(gm)


def test_1d_balanced_groups_use_rank_and_errors() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    fig = hb.plots.shrinkage(fit, kind="1d", terms=["Days"])
    (q,) = quivers(fig.axes[0])
    nop = hb.pooling(fit)[("no pooling", "Days")].to_numpy()
    assert np.allclose(np.argsort(q.X), np.argsort(nop))  # x is the rank of the no-pooling slope
    assert fig.axes[0].get_ylabel() == "Days: change in Reaction per unit of Days"
    cses = hb.plots.shrinkage(fits.reml(fits.HSB_CSES, "hsb"))
    assert cses.axes[0].get_ylabel() == "(Intercept): mathach at cses = 0"
    with pytest.raises(ModelError, match="two random-effect terms"):
        hb.plots.shrinkage(fits.reml(fits.HSB_CSES, "hsb"), kind="2d", terms=["(Intercept)", "cses"])
    with pytest.raises(ValueError, match="kind"):
        hb.plots.shrinkage(fit, kind="3d")
