"""Plots that put REML/ML and Bayesian fits side by side (matplotlib Figures, never a window).

Every function takes one or more fits from any engine and returns a
``matplotlib.figure.Figure`` (most also draw on ``ax=``):

* :func:`shrinkage`: no-pooling estimates with arrows to the partial-pooling ones (2D with the
  random-effects covariance ellipse, or 1D against group size);
* :func:`caterpillar`: each level's random effects, sorted, with intervals;
* :func:`pooling`: the data per group with complete, no and partial pooling lines;
* :func:`ppc`: posterior predictive check, and the same check from ``simulate`` for REML fits;
* :func:`diagnostics`: residuals vs fitted, scale-location, QQ plots; trace and rank plots for posteriors;
* :func:`forest`: fixed effects and variance components of several fits with their intervals;
* :func:`predictions`, :func:`comparisons`, :func:`slopes`: bambi's ``plot_*`` of
  :func:`hierbayes.predictions` and kin, several fits overlaid.

The same colour marks an engine everywhere (:mod:`hierbayes.plots.style`).
"""

from hierbayes.plots.caterpillar import caterpillar
from hierbayes.plots.diagnostics import diagnostics
from hierbayes.plots.forest import forest
from hierbayes.plots.pooling import pooling_plot as pooling
from hierbayes.plots.ppc import ppc
from hierbayes.plots.predictions import comparisons, predictions, slopes
from hierbayes.plots.shrinkage import shrinkage

__all__ = [
    "caterpillar",
    "comparisons",
    "diagnostics",
    "forest",
    "pooling",
    "ppc",
    "predictions",
    "shrinkage",
    "slopes",
]
