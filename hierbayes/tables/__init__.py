"""Tables that put fits side by side: REML/ML and Bayesian estimates of the same model.

* :func:`compare` (``hb.compare``): one row per parameter, a column group per fit.
* :func:`pooling` (``hb.pooling``): complete, no and partial pooling coefficients per group.
* :func:`tidy` and :func:`augment` (``fit.tidy()``, ``fit.augment()``): broom.mixed's tables.
* :func:`parameter_table`, :func:`ranef_table`: one fit's parameters / random effects with
  intervals, the long tables the plots in :mod:`hierbayes.plots` draw from.
"""

from hierbayes.tables.compare import compare
from hierbayes.tables.params import parameter_table, ranef_table
from hierbayes.tables.pooling import pooling
from hierbayes.tables.table import Comparison
from hierbayes.tables.tidy import augment, tidy

__all__ = ["Comparison", "augment", "compare", "parameter_table", "pooling", "ranef_table", "tidy"]
