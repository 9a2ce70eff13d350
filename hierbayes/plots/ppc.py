"""Predictive checks: ArviZ's posterior predictive check, and the same check from ``simulate`` for REML/ML fits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hierbayes.errors import ModelError
from hierbayes.fits.base import MixedFit
from hierbayes.plots.style import SMALL, fit_styles, target_axes
from hierbayes.tables.fitinfo import check_fits, is_bayes

KINDS = ("kde", "cumulative", "scatter")


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
    made if missing), ``nsim`` of them. A REML/ML or GLMM fit uses ``nsim``
    data sets from ``fit.simulate``: by default conditional on the fitted
    random effects (``conditional=True``), the closest frequentist analogue
    of a posterior predictive check, which conditions on the groups in the
    data; ``conditional=False`` draws new random effects too. Both are drawn by
    :func:`arviz.plot_ppc`, the replicates in the engine's colour.

    Parameters
    ----------
    *fits
        One or more fits.
    nsim
        Replicated data sets drawn per panel.
    seed
        Seed of the simulations and of ArviZ's choice of draws.
    conditional
        REML/ML fits: keep the fitted random effects (True) or draw new ones.
    kind
        ``"kde"``, ``"cumulative"`` or ``"scatter"`` (ArviZ's).
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
    import arviz as az

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    fits = check_fits(fits, "ppc")
    styles = fit_styles(fits, labels)
    fig, axes = target_axes(ax, len(fits), 5.0, 3.8)
    for fit, st, a in zip(fits, styles, axes, strict=True):
        idata, title = replicates(fit, nsim, seed, conditional, st.label)
        npp = min(nsim, idata.posterior_predictive.sizes["chain"] * idata.posterior_predictive.sizes["draw"])
        az.plot_ppc(idata, ax=a, kind=kind, num_pp_samples=npp, random_seed=seed, colors=[st.color, "k", "0.25"],
                    legend=True, observed_rug=False)  # fmt: skip
        a.set_title(title, fontsize=10)
        prop = " (proportion of trials)" if fit.design.trials is not None else ""
        a.set_xlabel(fit.design.response_name + prop, fontsize=10)
        a.tick_params(labelsize=SMALL + 1)
        names = {"Posterior predictive": "simulated", "Posterior predictive mean": "mean of simulated"}
        leg = a.get_legend()
        if leg is not None:
            for text in leg.get_texts():
                text.set_fontsize(SMALL)
                if not is_bayes(fit):
                    text.set_text(names.get(text.get_text(), text.get_text()))
    return fig


def replicates(fit: MixedFit, nsim: int, seed: int | None, conditional: bool, label: str):
    """InferenceData with ``posterior_predictive`` and ``observed_data`` variable ``y``, and a panel title."""
    import arviz as az

    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, not {nsim}")
    observed = _observed(fit)
    if is_bayes(fit):
        idata = fit.idata
        if "posterior_predictive" not in idata.groups() or "y" not in idata.posterior_predictive:
            draws = fit.predict(kind="predictive", random_seed=seed)
            idata = az.InferenceData(posterior_predictive=draws.to_dataset(name="y"))
        pp = idata.posterior_predictive["y"]
        values = np.asarray(pp.values, dtype=float).reshape(-1, fit.nobs)
        if fit.design.trials is not None:
            values = values / fit.design.trials
        ndraw = values.shape[0]
        title = f"{label}: posterior predictive ({min(nsim, ndraw)} of {ndraw} draws) vs data"
    else:
        if not hasattr(fit, "simulate"):
            raise ModelError(f"{type(fit).__name__} has no simulate(); cannot make replicated data")
        values = _simulate(fit, nsim, seed, conditional)
        which = "fitted random effects" if conditional else "new random effects"
        title = f"{label}: {nsim} simulated data sets ({which}) vs data"
    return (
        az.from_dict(posterior_predictive={"y": values[None]}, observed_data={"y": observed}),
        title,
    )


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
