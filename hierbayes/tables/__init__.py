"""Tables that put fits side by side: REML/ML and Bayesian estimates of the same model.

* :func:`compare` (``hb.compare``): one row per parameter, a column group per fit.
* :func:`pooling` (``hb.pooling``): complete, no and partial pooling coefficients per group.
* :func:`tidy` and :func:`augment` (``fit.tidy()``, ``fit.augment()``): broom.mixed's tables.
* :func:`parameter_table`, :func:`ranef_table`: one fit's parameters / random effects with
  intervals, the long tables the plots in :mod:`hierbayes.plots` draw from.
"""

import sys
import types

from hierbayes.compare.compare import compare
from hierbayes.compare.params import parameter_table, ranef_table
from hierbayes.compare.pooling import pooling
from hierbayes.compare.table import Comparison
from hierbayes.compare.tidy import augment, tidy

__all__ = ["Comparison", "augment", "compare", "parameter_table", "pooling", "ranef_table", "tidy"]


class _CallableModule(types.ModuleType):
    """``hb.compare(...)`` must call :func:`compare` even after this package is imported.

    Importing ``hierbayes.compare`` makes the attribute ``hierbayes.compare`` this
    module (Python's import system sets it), hiding the lazy ``hb.compare``
    function of ``hierbayes/__init__.py``; calling the module calls the function.
    """

    def __call__(self, *fits, **kwargs) -> Comparison:
        return compare(*fits, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
