"""The gaussian marginal log-likelihood as a PyTensor expression, so NUTS gets gradients.

Two implementations of the formula in :mod:`hierbayes.bayesian.blocked`:

* one grouping factor with at most ``MAX_GRAPH_K`` terms: a plain PyTensor
  graph. ``M`` is block diagonal, so its Cholesky factor is written out
  entry by entry as elementwise operations on vectors over the levels; the
  graph compiles to C (PyMC) or numba (nutpie) and is differentiated by
  PyTensor. The cost per evaluation grows with the number of levels, not
  with n.
* anything else (crossed or nested factors, wide blocks): a custom Op whose
  ``perform`` runs the blocked NumPy/SciPy algebra and returns the value
  and the analytic gradient together; its ``grad`` reuses those outputs, so
  one evaluation gives both.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from hierbayes.bayesian import blocked
from hierbayes.bayesian.crossprod import GaussianCrossProducts

MAX_GRAPH_K = 4
_LOG2PI = float(np.log(2 * np.pi))


def marginal_loglik(cp: GaussianCrossProducts, beta, sigma, Ls: list, force_op: bool = False):
    """Symbolic marginal log-likelihood of the gaussian model.

    Parameters
    ----------
    cp
        Stored cross-products.
    beta, sigma
        Fixed effects (p,) and residual SD (scalar), PyTensor variables.
    Ls
        One lower-triangular (k, k) Cholesky factor of each factor's covariance.
    force_op
        Use the NumPy Op even when the graph would do (for testing).
    """
    if len(Ls) == 1 and cp.k1 <= MAX_GRAPH_K and not force_op:
        return _one_block_graph(cp, beta, sigma, Ls[0])
    return MarginalLoglikOp(cp)(beta, sigma, *Ls)[0]


def _one_block_graph(cp: GaussianCrossProducts, beta, sigma, L):
    # elementwise sums rather than dot: PyTensor's BLAS ops run in Python when it cannot link a BLAS
    Zr = pt.as_tensor_variable(cp.Z1ty) - pt.sum(pt.as_tensor_variable(cp.Z1tX) * beta, axis=2)
    XtXb = pt.sum(pt.as_tensor_variable(cp.XtX) * beta, axis=1)
    rr = cp.yty - pt.sum(beta * (2.0 * pt.as_tensor_variable(cp.Xty) - XtXb))
    return one_block_from_residuals(cp, sigma, L, Zr, rr)


def one_block_from_residuals(cp: GaussianCrossProducts, sigma, L, Zr, rr):
    """Marginal log-likelihood of one factor's effects from ``Z1'r`` (levels x k) and ``r'r`` of a residual r.

    ``r`` is the response minus everything but the first factor's effects
    (``y - X beta`` here, also minus the other factors' effects in
    :mod:`hierbayes.bayesian.partial`).
    """
    k = cp.k1
    lam = L / sigma
    A = [[pt.as_tensor_variable(np.ascontiguousarray(cp.A11[:, a, b])) for b in range(k)] for a in range(k)]
    # c_i = sum_a lam[a, i] Zr[:, a];  M_ij = delta_ij + sum_ab lam[a, i] A_ab lam[b, j]
    c = [sum(lam[a, i] * Zr[:, a] for a in range(k)) for i in range(k)]
    AL = [[sum(A[a][b] * lam[b, j] for b in range(k)) for j in range(k)] for a in range(k)]
    M = [[sum(lam[a, i] * AL[a][j] for a in range(k)) + (1.0 if i == j else 0.0) for j in range(k)] for i in range(k)]
    C: list[list] = [[None] * k for _ in range(k)]
    logdet = 0.0
    quad = 0.0
    v: list = []
    for j in range(k):
        d = M[j][j] - sum(C[j][m] ** 2 for m in range(j)) if j else M[j][j]
        C[j][j] = pt.sqrt(d)
        logdet = logdet + pt.sum(pt.log(d))
        for i in range(j + 1, k):
            off = M[i][j] - sum(C[i][m] * C[j][m] for m in range(j)) if j else M[i][j]
            C[i][j] = off / C[j][j]
        vj = (c[j] - sum(C[j][m] * v[m] for m in range(j))) / C[j][j] if j else c[j] / C[j][j]
        v.append(vj)
        quad = quad + pt.sum(vj**2)
    return -0.5 * (cp.n * (_LOG2PI + 2.0 * pt.log(sigma)) + logdet + (rr - quad) / sigma**2)


class MarginalLoglikOp(Op):
    """Value and analytic gradient of the marginal log-likelihood (blocked NumPy algebra).

    Inputs: ``beta`` (p,), ``sigma`` (scalar), then one (k, k) ``L_g`` per
    factor. Outputs: the log-likelihood, then its gradient with respect to
    each input, in the same order.
    """

    def __init__(self, cp: GaussianCrossProducts):
        self.cp = cp

    def make_node(self, beta, sigma, *Ls):
        beta = pt.as_tensor_variable(beta).astype("float64")
        sigma = pt.as_tensor_variable(sigma).astype("float64")
        Ls = [pt.as_tensor_variable(L).astype("float64") for L in Ls]
        inputs = [beta, sigma, *Ls]
        outputs = [pt.dscalar(), beta.type(), sigma.type(), *(L.type() for L in Ls)]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, outputs):
        _single_threaded_blas_in_worker()
        beta, sigma, *Ls = inputs
        ll, dbeta, dsigma, dLs = blocked.loglik_grad(self.cp, beta, float(sigma), list(Ls))
        outputs[0][0] = np.asarray(ll, dtype="float64")
        outputs[1][0] = np.asarray(dbeta, dtype="float64")
        outputs[2][0] = np.asarray(dsigma, dtype="float64")
        for out, dL in zip(outputs[3:], dLs, strict=True):
            out[0] = np.asarray(dL, dtype="float64")

    def grad(self, inputs, output_grads):
        outs = self(*inputs)
        g = output_grads[0]
        return [g * o for o in outs[1:]]


_LIMITED: set[int] = set()


def _single_threaded_blas_in_worker() -> None:
    """One BLAS thread in a sampler's worker process.

    Chains run one per core, and multi-threaded OpenBLAS on small systems
    costs milliseconds per call when the cores are busy. PyMC limits the
    threads of a worker before unpickling the model, i.e. before SciPy's
    LAPACK is loaded there, so the limit is set again here, once per process.
    (The main process is limited by ``fit_bayes`` for the duration of a fit.)
    """
    import os

    pid = os.getpid()
    if pid in _LIMITED:
        return
    _LIMITED.add(pid)
    if multiprocessing.parent_process() is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
