"""Model checks: residuals vs fitted, scale-location, QQ plots; trace and rank plots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from hierbayes.errors import ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.plots._arviz import plot_collection
from hierbayes.plots.style import SMALL, PlotSetup, lowess, plot_setup
from hierbayes.tables.fitinfo import is_bayes

KINDS = ("residuals", "trace", "rank")


def diagnostics(
    *fits: MixedFit,
    kind: str = "residuals",
    labels: Sequence[str] | None = None,
    ax: Sequence[Axes] | None = None,
) -> Figure:
    """Residual and random-effect checks for any fit, or MCMC trace/rank plots for a posterior.

    ``kind="residuals"`` draws one row per fit: residuals against fitted values
    with a lowess smooth (``plot(m, type = c("p", "smooth"))``), the
    scale-location plot (sqrt of |standardized residuals| against fitted),
    a normal QQ plot of the residuals, and a normal QQ plot of each
    random-effect term of each grouping factor (``qqnorm(ranef(m)$g[, term])``),
    each with a line through the quartiles (``qqline``). Residuals are
    standardized by sigma (REML/ML, or its posterior mean); binomial and
    Poisson models, by either engine, show Pearson residuals (see :func:`residuals_of`).

    ``kind="trace"`` / ``"rank"`` (a posterior fit only): arviz-plots' trace
    plot (``plot_trace_dist``: each chain's density and trace, divergences
    marked) and rank plot (``plot_rank``: the fractional rank ECDF of each
    chain against its simultaneous band) of the fixed effects, SDs,
    correlations and family parameters.

    Parameters
    ----------
    *fits
        Fits of any engine (residuals), or one posterior fit (trace, rank).
    kind
        ``"residuals"``, ``"trace"`` or ``"rank"``.
    labels
        Fit names (row titles).
    ax
        ``kind="residuals"``: axes for the panels, row by row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> [a.get_title() for a in hb.plots.diagnostics(fit).axes]  # doctest: +NORMALIZE_WHITESPACE
    ['REML: residuals vs fitted', 'REML: scale-location', 'REML: QQ of residuals',
     'REML: QQ of Subject (Intercept)', 'REML: QQ of Subject Days']
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    setup = plot_setup(fits, "diagnostics", labels)
    fits, styles = setup.fits, setup.styles
    if kind != "residuals":
        return _mcmc(setup, kind)
    re_terms = [(b.group, t) for b in fits[0].design.blocks for t in b.terms]
    ncols = 3 + len(re_terms)
    fig, axes = setup.figure(ncols * len(fits), 3.2, 3.0, ax=ax, ncols=ncols)
    for i, (fit, st) in enumerate(zip(fits, styles, strict=True)):
        row = axes[i * ncols : (i + 1) * ncols]
        fitted = np.asarray(fit.fitted, dtype=float)
        resid, std, kind_label = residuals_of(fit)
        _scatter_smooth(row[0], fitted, resid, st.color)
        row[0].axhline(0.0, color="0.5", lw=0.8, ls="--")
        _label(row[0], f"{st.label}: residuals vs fitted", "fitted", kind_label)
        _scatter_smooth(row[1], fitted, np.sqrt(np.abs(std)), st.color)
        _label(row[1], f"{st.label}: scale-location", "fitted", f"√|standardized {kind_label}|")
        _qq(row[2], std, st.color)
        _label(row[2], f"{st.label}: QQ of residuals", "normal quantile", f"standardized {kind_label}")
        ranef = fit.ranef
        for a, (group, term) in zip(row[3:], re_terms, strict=True):
            _qq(a, ranef[group][term].to_numpy(), st.color)
            _label(a, f"{st.label}: QQ of {group} {term}", "normal quantile", f"{term} effect")
    return fig


def residuals_of(fit: MixedFit) -> tuple[np.ndarray, np.ndarray, str]:
    """Residuals, standardized residuals and their name.

    Models with a residual SD: response residuals, and those divided by sigma.
    Binomial, Bernoulli and Poisson models (GLMM or posterior): Pearson
    residuals ``(y - mu) / sqrt(V(mu))`` for both, so the engines show the same thing.
    Other families: response residuals.
    """
    family = fit.model.family.name
    if fit.sigma:
        resid = np.asarray(fit.residuals, dtype=float)
        return resid, resid / fit.sigma, "residual"
    if family in ("binomial", "bernoulli", "poisson"):
        if hasattr(fit, "resid"):
            r = np.asarray(fit.resid("pearson"), dtype=float)
            return r, r, "Pearson residual"
        mu = np.asarray(fit.fitted, dtype=float)
        y = mu + np.asarray(fit.residuals, dtype=float)
        trials = fit.design.trials
        if family == "poisson":
            var = mu
        else:
            var = mu * (1 - mu) / (trials if trials is not None else 1.0)
        r = (y - mu) / np.sqrt(np.maximum(var, np.finfo(float).tiny))
        return r, r, "Pearson residual"
    resid = np.asarray(fit.residuals, dtype=float)
    return resid, resid, "response residual"


def _label(a: Axes, title: str, xlabel: str, ylabel: str) -> None:
    a.set_title(title, fontsize=9)
    a.set_xlabel(xlabel, fontsize=SMALL + 1)
    a.set_ylabel(ylabel, fontsize=SMALL + 1)
    a.tick_params(labelsize=SMALL)


def _scatter_smooth(a: Axes, x: np.ndarray, y: np.ndarray, color: str) -> None:
    size = 8 if len(x) < 2000 else 3
    a.scatter(x, y, s=size, color=color, alpha=0.5 if len(x) < 2000 else 0.25, linewidths=0)
    gx, gy = lowess(x, y)
    a.plot(gx, gy, color="k", lw=1.3, label="lowess")


def qq_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Normal quantiles (R's ``ppoints``), sorted values, and (intercept, slope) of the line through the quartiles."""
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    n = len(v)
    a = 3 / 8 if n <= 10 else 0.5
    theo = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    q1, q3 = np.quantile(v, [0.25, 0.75])
    z1, z3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (z3 - z1)
    return theo, v, (q1 - slope * z1, slope)


def _qq(a: Axes, values: np.ndarray, color: str) -> None:
    theo, v, (b0, b1) = qq_points(values)
    a.scatter(theo, v, s=10 if len(v) < 2000 else 3, color=color, alpha=0.7, linewidths=0)
    a.axline((0.0, b0), slope=b1, color="k", lw=1.0, label="qqline")


def _mcmc(setup: PlotSetup, kind: str) -> Figure:
    import xarray as xr  # xarray only when drawing: import hierbayes stays light
    from arviz_plots import plot_rank, plot_trace_dist  # (as xarray)

    fits = setup.fits
    if len(fits) != 1 or not is_bayes(fits[0]):
        raise ModelError(f"{kind} plots need one posterior fit (hb.bayes); got {len(fits)} fit(s)")
    fit = fits[0]
    ds = fit.parameters()
    names = list(ds.data_vars)
    tree = xr.DataTree.from_dict({"posterior": ds, "sample_stats": fit.idata["sample_stats"].to_dataset()})
    by_chain = {"color": ["chain"], "overlay": ["chain"]}
    if kind == "trace":
        fig, flat = setup.figure(2 * len(names), 5.0, 1.7 + 0.6 / len(names), ncols=2)
        axes = np.array(flat, dtype=object).reshape(len(names), 2)
        pc = plot_collection(fig, dict(zip(names, axes, strict=True)), ds, aes=by_chain, column=["dist", "trace"])
        plot_trace_dist(tree, compact=False, plot_collection=pc)
        for a in axes.ravel():
            a.title.set_fontsize(9)
            a.tick_params(labelsize=SMALL)
    else:
        ncols = min(3, len(names))
        nrows = int(np.ceil(len(names) / ncols))
        fig, axes = setup.figure(len(names), 4.0, 2.8 + 0.6 / nrows, ncols=ncols)
        pc = plot_collection(fig, dict(zip(names, axes, strict=False)), ds, aes=by_chain)
        plot_rank(tree, plot_collection=pc)
        for a in axes[: len(names)]:
            a.title.set_fontsize(9)
            a.xaxis.label.set_fontsize(SMALL + 1)
            a.yaxis.label.set_fontsize(SMALL + 1)
            a.tick_params(labelsize=SMALL)
    i = fit.info
    fig.suptitle(
        f"{'Trace' if kind == 'trace' else 'Rank'} plots: {fit.formula}, {i.chains} chains x {i.draws} draws\n"
        f"{fit.diagnostics}",
        fontsize=10,
    )
    return fig
