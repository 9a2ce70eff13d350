"""The numerical core: cross-products of [Z X y] and the blocked Cholesky factor (NumPy and SciPy only).

* :mod:`~hierbayes.linalg.crossprod`: the one accumulator of the (weighted)
  cross-products, summed over pieces of the rows (:class:`Accumulator`:
  ``add`` / ``combine`` / ``finish``), and :class:`RowPattern`, the index maps
  that re-form them for new weights (PIRLS);
* :mod:`~hierbayes.linalg.cholesky`: the one blocked Cholesky factor of
  ``Lambda'Z'WZ Lambda + I`` (and of the whole [Z X y] system) with its
  fill-reducing order, solves, log-determinants and conditional variances;
* :mod:`~hierbayes.linalg.levels`: the coupling of the other blocks to the
  first, level by level (the factor's L[2,1] keeps its sparsity), and the
  compiled per-level sums the sparse factorisation needs;
* :mod:`~hierbayes.linalg.theta`: theta and the relative covariance factors.

The REML/ML criterion, the GLMM's penalized weighted least squares and the
Bayesian engine's marginalized gaussian likelihood all call these; nothing
here imports another part of hierbayes.
"""

from hierbayes.linalg.cholesky import (
    BlockedFactor,
    backward,
    block_lambda,
    conditional_covariances,
    factorize,
    first_block,
    fixef_precision_factor,
    forward,
    lower_inverse,
    minv_diag_sums,
    rest_left,
    solve,
    trsolve,
)
from hierbayes.linalg.crossprod import Accumulator, CrossProducts, Piece, RowPattern, Structure, accumulate
from hierbayes.linalg.theta import ThetaLayout

__all__ = [
    "Accumulator",
    "BlockedFactor",
    "CrossProducts",
    "Piece",
    "RowPattern",
    "Structure",
    "ThetaLayout",
    "accumulate",
    "backward",
    "block_lambda",
    "conditional_covariances",
    "factorize",
    "first_block",
    "fixef_precision_factor",
    "forward",
    "lower_inverse",
    "minv_diag_sums",
    "rest_left",
    "solve",
    "trsolve",
]
