"""Partial marginalization: the first factor's effects integrated out, the other factors' effects sampled.

Full marginalization (:mod:`hierbayes.bayesian.marginal`) of crossed factors
leaves, after the first (largest) factor is eliminated, a dense system over
the other factors' effects ("the rest", ``qr`` of them) whose Cholesky
factorization costs ``O(qr^3)`` per gradient: milliseconds for a few hundred
columns, tens of milliseconds for InstEval's 1,142. Here only the first
factor is integrated out. Its ``Z1'Z1`` is block diagonal, so given the rest's
effects ``b_r`` its marginal likelihood is the one-factor formula applied to
the residual ``r = y - X beta - Z_r b_r``, which enters only through

    Z1'r = Z1'y - Z1'X beta - (Z1'Z_r) b_r,
    r'r  = y'y - 2 beta'X'y + beta'X'X beta - 2 b_r'(Z_r'y - Z_r'X beta) + b_r' Z_r'Z_r b_r.

``Z1'Z_r`` and ``Z_r'Z_r`` are sparse, so one evaluation (and its gradient,
by PyTensor) costs the number of their non-zeros plus ``O(levels k^2)`` for
the first factor, whatever the number of rows. The rest's effects are
ordinary model parameters (non-centered, as in the full model), sampled by
NUTS with beta, the covariance parameters and sigma. After sampling, the first
factor's effects are drawn from their exact Gaussian conditional given each
posterior draw (:func:`draw_first_block`), so every path stores the same
variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hierbayes.bayesian.blocked import draw_ranef_one_block
from hierbayes.bayesian.crossprod import GaussianCrossProducts


@dataclass(frozen=True)
class RestCoupling:
    """The sparse cross-products coupling the first factor and the rest.

    Attributes
    ----------
    Z1tZr
        ``Z1'Z_r`` (q1, qr), CSR; rows level-major, term-minor.
    ZrtZr
        ``Z_r'Z_r`` (qr, qr), CSR.
    """

    Z1tZr: sp.csr_matrix
    ZrtZr: sp.csr_matrix


def rest_coupling(cp: GaussianCrossProducts) -> RestCoupling:
    """The sparse ``Z1'Z_r`` and ``Z_r'Z_r`` of stored cross-products.

    Examples
    --------
    >>> import pandas as pd
    >>> import hierbayes as hb
    >>> from hierbayes.bayesian.crossprod import gaussian_crossproducts
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 7], "a": list("xxyyzz"), "b": list("uvuvuv")})
    >>> c = rest_coupling(gaussian_crossproducts(hb.Model("y ~ 1 + (1 | a) + (1 | b)", df).design))
    >>> c.Z1tZr.shape, c.ZrtZr.toarray().tolist()
    ((3, 2), [[3.0, 0.0], [0.0, 3.0]])
    """
    Z1tZr = sp.csr_matrix(cp.Ar1.T)
    Z1tZr.sort_indices()
    ZrtZr = sp.csr_matrix(cp.Arr)
    ZrtZr.sort_indices()
    return RestCoupling(Z1tZr, ZrtZr)


def partial_loglik(cp: GaussianCrossProducts, coupling: RestCoupling, beta, sigma, L1, b_rest):
    """Symbolic log-likelihood with the first factor integrated out, given the rest's effects.

    Parameters
    ----------
    cp, coupling
        Stored cross-products and their sparse coupling (:func:`rest_coupling`).
    beta, sigma, L1
        Fixed effects (p,), residual SD, the first factor's (k1, k1) Cholesky factor.
    b_rest
        The rest's effects as one vector (qr,), factor by factor, level-major and term-minor.
    """
    import pytensor.sparse as psp
    import pytensor.tensor as pt

    from hierbayes.bayesian.marginal import one_block_from_residuals

    col = b_rest[:, None]
    Z1tZb = psp.structured_dot(psp.as_sparse_variable(coupling.Z1tZr), col)[:, 0]
    ZrtZb = psp.structured_dot(psp.as_sparse_variable(coupling.ZrtZr), col)[:, 0]
    # elementwise sums rather than dot: PyTensor's BLAS ops run in Python when it cannot link a BLAS
    Z1r = (
        pt.as_tensor_variable(cp.Z1ty)
        - pt.sum(pt.as_tensor_variable(cp.Z1tX) * beta, axis=2)
        - Z1tZb.reshape((cp.nl1, cp.k1))
    )
    XtXb = pt.sum(pt.as_tensor_variable(cp.XtX) * beta, axis=1)
    Zrr = pt.as_tensor_variable(cp.Zrty) - pt.sum(pt.as_tensor_variable(cp.ZrtX) * beta, axis=1)
    rr = cp.yty - pt.sum(beta * (2.0 * pt.as_tensor_variable(cp.Xty) - XtXb)) + pt.sum(b_rest * (ZrtZb - 2.0 * Zrr))
    return one_block_from_residuals(cp, sigma, L1, Z1r, rr)


def draw_first_block(
    cp: GaussianCrossProducts,
    coupling: RestCoupling,
    beta: np.ndarray,
    sigma: np.ndarray,
    L1: np.ndarray,
    b_rest: np.ndarray,
    rng: np.random.Generator,
    chunk: int = 256,
) -> np.ndarray:
    """Exact draws of the first factor's effects given posterior draws of everything else.

    Parameters
    ----------
    beta, sigma, L1, b_rest
        Posterior draws: (D, p), (D,), (D, k1, k1) and the rest's effects (D, qr).

    Returns
    -------
    numpy.ndarray
        (D, levels, k1).
    """
    D = len(sigma)
    out = np.empty((D, cp.nl1, cp.k1))
    for s in range(0, D, chunk):
        e = min(D, s + chunk)
        shift = np.asarray(coupling.Z1tZr @ b_rest[s:e].T).T.reshape(e - s, cp.nl1, cp.k1)
        out[s:e] = draw_ranef_one_block(cp, beta[s:e], sigma[s:e], L1[s:e], rng, Z1r_shift=shift)
    return out
