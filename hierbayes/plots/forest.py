"""Forest plot: fixed effects and variance components of several fits, with their intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hierbayes.fits.base import MixedFit
from hierbayes.plots.style import SMALL, plot_setup
from hierbayes.tables.compare import compare
from hierbayes.tables.table import _param_label


def forest(
    *fits: MixedFit,
    prob: float = 0.95,
    intervals: str | pd.DataFrame | dict = "auto",
    effects: Sequence[str] = ("fixed", "ran_pars"),
    labels: Sequence[str] | None = None,
) -> Figure:
    """Every parameter's estimate and interval, one row per parameter, fits side by side.

    The rows are those of :func:`hierbayes.tables` (fixed effects, then each
    factor's SDs and correlations, then the residual SD); each row has its own
    x scale, since an intercept, a slope and an SD rarely share one. A fit
    without an interval for a parameter (e.g. REML variance parameters with
    ``intervals="wald"``) shows its point estimate alone, hollow.

    Parameters
    ----------
    *fits
        REML/ML, GLMM and posterior fits of one model.
    prob
        Interval probability.
    intervals
        REML/ML intervals, as in :func:`hierbayes.tables` (``"auto"``,
        ``"wald"``, ``"profile"``, ``"boot"``, a confint DataFrame or a dict).
    effects
        ``"fixed"`` and/or ``"ran_pars"``.
    labels
        Fit names.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> [a.get_ylabel() for a in hb.plots.forest(fit).axes][:3]
    ['(Intercept)', 'Days', 'Subject\\nSD (Intercept)']
    """
    setup = plot_setup(fits, "forest", labels)
    fits, styles = setup.fits, setup.styles
    table = compare(*fits, prob=prob, intervals=intervals, labels=[s.label for s in styles]).frame
    table = table[table.index.get_level_values("effect").isin(effects)]
    n = len(table)
    if n == 0:
        raise ValueError(f"no parameters for effects {list(effects)}")
    fig, axes = setup.figure(n, 7.0, 0.62 * max(1.0, 0.6 + 0.25 * len(fits)) + 1.2 / n, ncols=1)
    m = len(fits)
    offsets = (np.arange(m) - (m - 1) / 2) * 0.3
    for a, key in zip(axes, table.index, strict=True):
        row = table.loc[key]
        for j, st in enumerate(styles):
            est = row[(st.label, "estimate")]
            if not np.isfinite(est):
                continue
            lo, hi = row[(st.label, "conf.low")], row[(st.label, "conf.high")]
            y = -offsets[j]
            if np.isfinite(lo) and np.isfinite(hi):
                a.errorbar([est], [y], xerr=[[est - lo], [hi - est]], fmt=st.marker, color=st.color, ms=5,
                           capsize=3, lw=1.4, label=st.label)  # fmt: skip
            else:
                a.plot([est], [y], st.marker, mfc="white", mec=st.color, ms=5, label=f"{st.label} (no interval)")
        effect, group, term = key
        label = _param_label(effect, group, term)
        a.set_ylabel(label if effect == "fixed" else f"{group}\n{label}", rotation=0, ha="right", va="center",
                     fontsize=SMALL + 1)  # fmt: skip
        a.set_yticks([])
        a.set_ylim(-0.6, 0.6)
        a.tick_params(axis="x", labelsize=SMALL)
        a.grid(axis="x", color="0.9")
        a.margins(x=0.08)
        if term.startswith("cor__"):
            a.axvline(0.0, color="0.7", lw=0.8, zorder=0)
    handles, names = {}, []
    for a in axes:
        for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
            if lab not in handles:
                handles[lab] = h
                names.append(lab)
    fig.legend([handles[k] for k in names], names, loc="outside lower center", ncols=min(4, len(names)),
               fontsize=SMALL + 1, frameon=False)  # fmt: skip
    fig.suptitle(f"Estimates with {100 * prob:g}% intervals: {fits[0].formula}", fontsize=10)
    return fig
