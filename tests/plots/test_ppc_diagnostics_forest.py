"""ppc, diagnostics and forest plots: the data they draw; and no plot touches pyplot."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colors

import hierbayes as hb
from hierbayes.errors import ModelError
from hierbayes.plots.diagnostics import qq_points
from hierbayes.plots.ppc import replicates
from hierbayes.plots.style import ENGINE_COLORS
from tests.plots.readback import errorbars, lines, scatters
from tests.tables import fits


def _n_lines_of(ax, color: str) -> int:
    """Drawn curves of a colour (ArviZ adds an empty line as the legend's handle)."""
    return sum(colors.same_color(ln.get_color(), color) and len(ln.get_xdata()) > 1 for ln in ax.get_lines())


def test_ppc_reml_uses_simulate_and_bayes_its_posterior_predictive() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    idata, title = replicates(reml, 30, 5, True, "REML")
    assert np.allclose(idata.posterior_predictive["y"].values[0], reml.simulate(30, seed=5, use_re=True).T)
    assert np.allclose(idata.observed_data["y"].values, reml.design.y)
    assert "30 simulated data sets (fitted random effects)" in title
    idata, title = replicates(post, 30, 5, True, "Bayes")
    pp = post.idata.posterior_predictive["y"].values.reshape(-1, post.nobs)
    chosen = idata.posterior_predictive["y"].values[0]
    assert chosen.shape == (30, post.nobs) and f"(30 of {len(pp)} draws)" in title
    rows = {tuple(r) for r in pp}
    assert all(tuple(r) in rows for r in chosen) and len({tuple(r) for r in chosen}) == 30  # 30 distinct draws
    again, _ = replicates(post, 30, 5, True, "Bayes")
    np.testing.assert_array_equal(again.posterior_predictive["y"].values, idata.posterior_predictive["y"].values)
    fig = hb.plots.ppc(reml, post, nsim=25, seed=1)
    a_reml, a_bayes = fig.axes
    assert _n_lines_of(a_reml, ENGINE_COLORS["reml"]) == 25
    assert _n_lines_of(a_bayes, ENGINE_COLORS["bayes"]) == 25
    assert a_reml.get_title().startswith("REML") and a_bayes.get_title().startswith("Bayes")
    assert [t.get_text() for t in a_bayes.get_legend().get_texts()] == ["posterior predictive", "data"]
    fig = hb.plots.ppc(reml, nsim=10, seed=1, kind="cumulative")  # ArviZ 0.x's name of the ECDF
    assert _n_lines_of(fig.axes[0], ENGINE_COLORS["reml"]) == 10
    with pytest.raises(ValueError, match="kind must be one of kde, ecdf, hist, dot"):
        hb.plots.ppc(reml, kind="scatter")


def test_ppc_glmm_simulates_proportions() -> None:
    g = fits.glmm()
    idata, _ = replicates(g, 10, 1, False, "ML")
    v = idata.posterior_predictive["y"].values
    assert v.shape == (1, 10, g.nobs) and np.all((v >= 0) & (v <= 1))
    assert np.allclose(idata.observed_data["y"].values, g.design.y / g.design.trials)


def test_residual_panels_draw_the_fits_residuals() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    fig = hb.plots.diagnostics(reml, post)
    assert len(fig.axes) == 10
    for row, fit in ((fig.axes[:5], reml), (fig.axes[5:], post)):
        (pts,) = scatters(row[0]).values()
        assert np.allclose(pts, np.column_stack([fit.fitted, fit.residuals]))
        std = np.asarray(fit.residuals) / fit.sigma
        (pts,) = scatters(row[1]).values()
        assert np.allclose(pts[:, 1], np.sqrt(np.abs(std)))
        (pts,) = scatters(row[2]).values()
        theo, v, _ = qq_points(std)
        assert np.allclose(pts, np.column_stack([theo, v]))
        (pts,) = scatters(row[4]).values()
        assert np.allclose(np.sort(pts[:, 1]), np.sort(fit.ranef["Subject"]["Days"]))
        assert "lowess" in lines(row[0])


def test_qq_points_match_r() -> None:
    theo, v, (b0, b1) = qq_points(np.array([3.0, 1.0, 2.0, 10.0]))
    # R: qnorm(ppoints(4)) = -1.0491, -0.2993, 0.2993, 1.0491; qqline through the quartiles
    assert np.allclose(theo, [-1.0491314, -0.2993069, 0.2993069, 1.0491314], atol=1e-6)
    assert np.allclose(v, [1, 2, 3, 10])
    q1, q3 = np.quantile(v, [0.25, 0.75])
    assert b0 + b1 * -0.6744898 == pytest.approx(q1) and b0 + b1 * 0.6744898 == pytest.approx(q3)


def test_trace_and_rank_for_posteriors_only() -> None:
    post = fits.bayes()
    n = len(post.parameters().data_vars)
    assert len(hb.plots.diagnostics(post, kind="trace").axes) == 2 * n
    assert len([a for a in hb.plots.diagnostics(post, kind="rank").axes if a.get_visible()]) == n
    with pytest.raises(ModelError, match="posterior"):
        hb.plots.diagnostics(fits.reml(fits.SLEEP, "sleepstudy"), kind="trace")


def test_forest_rows_are_the_comparison_table() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    table = hb.compare(reml, post, prob=0.9).frame
    fig = hb.plots.forest(reml, post, prob=0.9)
    assert len(fig.axes) == len(table)
    for a, key in zip(fig.axes, table.index, strict=True):
        bars = {e["label"]: e for e in errorbars(a)}
        b = table.loc[key, "Bayes"]
        assert bars["Bayes"]["x"][0] == pytest.approx(b["estimate"])
        assert (bars["Bayes"]["lo"][0], bars["Bayes"]["hi"][0]) == pytest.approx((b["conf.low"], b["conf.high"]))
        # every REML row has its (default: profile) interval, SDs and correlations included
        assert bars["REML"]["lo"][0] == pytest.approx(table.loc[key, ("REML", "conf.low")])
        assert bars["REML"]["hi"][0] == pytest.approx(table.loc[key, ("REML", "conf.high")])
    fig = hb.plots.forest(reml, post, prob=0.9, intervals="wald")
    for a, key in zip(fig.axes, table.index, strict=True):
        if key[0] != "fixed":  # no Wald interval of a variance parameter: the estimate alone, hollow
            (pt,) = lines(a)["REML (no interval)"]
            assert pt.get_xdata()[0] == pytest.approx(table.loc[key, ("REML", "estimate")])
            assert pt.get_markerfacecolor() == "white"


def test_no_plot_uses_pyplot() -> None:
    import matplotlib.pyplot as plt

    plt.close("all")
    reml = fits.reml(fits.SLEEP, "sleepstudy")
    for fn in (hb.plots.shrinkage, hb.plots.caterpillar, hb.plots.pooling, hb.plots.forest, hb.plots.diagnostics):
        fn(reml)
    hb.plots.ppc(reml, nsim=5)
    hb.plots.diagnostics(fits.bayes(), kind="rank")
    assert plt.get_fignums() == []


def test_glmm_and_posterior_binomial_residuals_are_both_pearson() -> None:
    from types import SimpleNamespace

    from hierbayes.plots.diagnostics import residuals_of

    g = fits.glmm()
    r, std, name = residuals_of(g)
    assert name == "Pearson residual" and np.allclose(r, g.resid("pearson")) and np.allclose(std, r)
    # the posterior path (no resid(type)) computes the same from fitted proportions and trials
    as_posterior = SimpleNamespace(model=g.model, sigma=None, fitted=g.fitted, design=g.design,
                                   residuals=g.design.y / g.design.trials - g.fitted)  # fmt: skip
    r2, _, _ = residuals_of(as_posterior)
    assert np.allclose(r2, g.resid("pearson"))
    fig = hb.plots.diagnostics(g)
    assert fig.axes[0].get_ylabel() == "Pearson residual"


def test_arviz_plots_take_the_posterior_datatree(tmp_path) -> None:
    """arviz-plots' forest, ppc, trace and rank plots draw fit.idata as it is (figures saved, then closed)."""
    import arviz as az
    import matplotlib.pyplot as plt

    post = fits.bayes()
    plots = {
        "forest": az.plot_forest(post.idata, var_names=["beta", "sd__Subject", "sigma"]),
        "ppc_dist": az.plot_ppc_dist(post.idata, num_samples=20),
        "trace": az.plot_trace(post.idata, var_names=["beta", "sigma"]),
        "rank": az.plot_rank(post.idata, var_names=["beta", "sigma"]),
    }
    try:
        for name, pc in plots.items():
            fig = pc.viz["figure"].item()
            assert any(ax.has_data() for ax in fig.axes), name
            fig.savefig(tmp_path / f"{name}.png")
            assert (tmp_path / f"{name}.png").stat().st_size > 5000
    finally:
        plt.close("all")
