"""Predictive checks: arviz-plots' ``plot_ppc_dist`` of posterior predictive draws, or of ``simulate`` for REML/ML."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hierbayes.errors import ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.plots._arviz import plot_collection
from hierbayes.plots.style import SMALL, plot_setup
from hierbayes.tables.fitinfo import is_bayes

#: arviz-plots' kinds of ``plot_ppc_dist``; "cumulative" (ArviZ 0.x's name) is "ecdf"
KINDS = ("kde", "ecdf", "hist", "dot")
ALIASES = {"cumulative": "ecdf"}


def ppc(
    *fits: MixedFit,
    nsim: int = 100,
    seed: int | None = 0,
    conditional: bool = True,
    kind: str = "kde",
    labels: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Distribution of replicated data against the observed response, one panel per fit.

    A posterior fit uses its posterior predictive draws (``idata.posterior_predictive``,
    made if missing), ``nsim`` of them chosen at random (``seed``). A REML/ML or GLMM fit uses ``nsim``
    data sets from ``fit.simulate``: by default conditional on the fitted
    random effects (``conditional=True``), the closest frequentist analogue
    of a posterior predictive check, which conditions on the groups in the
    data; ``conditional=False`` draws new random effects too. Both are drawn by
    arviz-plots' :func:`arviz_plots.plot_ppc_dist`, the replicates in the engine's colour, the data in black.

    Parameters
    ----------
    *fits
        One or more fits.
    nsim
        Replicated data sets drawn per panel.
    seed
        Seed of the simulations and of the choice of posterior predictive draws.
    conditional
        REML/ML fits: keep the fitted random effects (True) or draw new ones.
    kind
        How each data set's distribution is drawn, as in ``plot_ppc_dist``:
        ``"kde"``, ``"ecdf"`` (also ``"cumulative"``), ``"hist"`` or ``"dot"``.
    labels
        Fit names.
    ax
        Axes, one per fit.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fig = hb.plots.ppc(fit, nsim=20, seed=1)
    >>> fig.axes[0].get_title()
    'REML: 20 simulated data sets (fitted random effects) vs data'
    """
    from arviz_plots import plot_ppc_dist  # arviz-plots only when drawing: import hierbayes stays light

    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (or 'cumulative'), not {kind!r}")
    setup = plot_setup(fits, "ppc", labels)
    fits, styles = setup.fits, setup.styles
    fig, axes = setup.figure(len(fits), 5.0, 3.8, ax=ax)
    for fit, st, a in zip(fits, styles, axes, strict=True):
        dt, title = replicates(fit, nsim, seed, conditional, st.label)
        pp = dt["posterior_predictive"].to_dataset()
        pc = plot_collection(a.figure, {"y": a}, pp.stack(sample=("chain", "draw")), aes={"overlay_ppc": ["sample"]})
        plot_ppc_dist(dt, kind=kind, num_samples=pp.sizes["draw"], plot_collection=pc,
                      visuals={"predictive_dist": {"color": st.color, "alpha": 0.35}, "observed_dist": {"color": "k"},
                               "remove_axis": False})  # fmt: skip
        a.set_title(title, fontsize=10)
        prop = " (proportion of trials)" if fit.design.trials is not None else ""
        a.set_xlabel(fit.design.response_name + prop, fontsize=10)
        a.tick_params(labelsize=SMALL + 1)
        what = "posterior predictive" if is_bayes(fit) else "simulated"
        handles = [Line2D([], [], color=st.color, alpha=0.6, label=what), Line2D([], [], color="k", label="data")]
        a.legend(handles=handles, fontsize=SMALL, frameon=False)
    return fig


def replicates(fit: MixedFit, nsim: int, seed: int | None, conditional: bool, label: str):
    """A DataTree with groups ``posterior_predictive`` (one chain of ``nsim`` replicates) and ``observed_data``
    (variable ``y`` in both), and a panel title.

    A posterior contributes ``nsim`` of its posterior predictive draws, chosen at random with ``seed``
    (all of them when it has fewer).
    """
    from arviz_base import from_dict  # ArviZ only when drawing: import hierbayes stays light

    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, not {nsim}")
    observed = _observed(fit)
    if is_bayes(fit):
        idata = fit.idata
        if "posterior_predictive" in idata.children and "y" in idata.posterior_predictive:
            pp = idata.posterior_predictive["y"]
        else:
            pp = fit.predict(kind="predictive", random_seed=seed)
        values = np.asarray(pp.values, dtype=float).reshape(-1, fit.nobs)
        if fit.design.trials is not None:
            values = values / fit.design.trials
        ndraw = values.shape[0]
        keep = np.sort(np.random.default_rng(seed).choice(ndraw, size=min(nsim, ndraw), replace=False))
        values = values[keep]
        title = f"{label}: posterior predictive ({len(keep)} of {ndraw} draws) vs data"
    else:
        if not hasattr(fit, "simulate"):
            raise ModelError(f"{type(fit).__name__} has no simulate(); cannot make replicated data")
        values = _simulate(fit, nsim, seed, conditional)
        which = "fitted random effects" if conditional else "new random effects"
        title = f"{label}: {nsim} simulated data sets ({which}) vs data"
    dt = from_dict({"posterior_predictive": {"y": values[None]}, "observed_data": {"y": observed}}, dims={"y": ["obs"]})
    return dt, title


def _simulate(fit: MixedFit, nsim: int, seed: int | None, conditional: bool) -> np.ndarray:
    """``nsim x n`` simulated responses, binomial ones as proportions.

    ``simulate`` returns n x nsim in the design's form (successes for ``cbind``
    responses, shown as proportions here).
    """
    sims = np.asarray(fit.simulate(nsim=nsim, seed=seed, use_re=conditional), dtype=float).T
    return sims / fit.design.trials if fit.design.trials is not None else sims


def _observed(fit: MixedFit) -> np.ndarray:
    y = np.asarray(fit.design.y, dtype=float)
    return y / fit.design.trials if fit.design.trials is not None else y
