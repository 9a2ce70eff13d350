"""What a fitted model says on the scale of the data: predictions, comparisons, slopes, marginal means.

The functions take any fit (``LmerFit``, ``GlmerFit``, ``PosteriorFit``) and
return tidy tables:

* :func:`predictions`, :func:`comparisons`, :func:`slopes`: bambi 0.21's
  ``interpret`` functions (conditional grids, ``average_by``, ``target``),
  with delta-method intervals for REML/ML and GLMM fits and the posterior's
  draws for Bayesian fits;
* :func:`emmeans`, :func:`contrast`, :func:`pairs`, :func:`emtrends`: R emmeans 1.8's
  estimated marginal means over the reference grid, their contrasts with
  multiplicity adjustments (also as ``emmeans(fit, "pairwise ~ x")``), and
  trends, with Kenward-Roger (or Satterthwaite) degrees of freedom for lmer fits;
* prediction intervals of new observations (``fit.predict(newdata,
  interval="prediction")``) are in :mod:`hierbayes.interpret.intervals`.

The package sits above the fits: it uses their public extractors, the
design's encoding of new data and the Kenward-Roger and Satterthwaite
functions of :mod:`hierbayes.inference`; nothing below imports it (the fits'
``predict(interval=...)`` reaches :mod:`hierbayes.interpret.intervals` through the
function that module registers with them, and ``import hierbayes`` imports this package).
The functions shadow the modules of the same name as attributes of the package
(``hierbayes.interpret.emmeans`` is the function); import a module's other names from it
directly (``from hierbayes.interpret.emmeans import EmmGrid``).
"""

from hierbayes.interpret.comparisons import comparisons, slopes
from hierbayes.interpret.contrast import contrast
from hierbayes.interpret.emmeans import EmmeansTable
from hierbayes.interpret.emmlist import EmmList, emmeans, emtrends, lsmeans, lstrends, pairs
from hierbayes.interpret.predictions import predictions

__all__ = [
    "EmmList",
    "EmmeansTable",
    "comparisons",
    "contrast",
    "emmeans",
    "emtrends",
    "lsmeans",
    "lstrends",
    "pairs",
    "predictions",
    "slopes",
]
