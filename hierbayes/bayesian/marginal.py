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
  and the analytic gradient together; its ``pullback`` reuses those outputs, so
  one evaluation gives both.

PyTensor 3 compiles to Numba by default (PyMC's NUTS and nutpie alike). The
Op's ``perform`` is NumPy/SciPy code (dense and sparse Cholesky factors), so
in a Numba-compiled graph it runs in Numba's object mode:
:func:`object_mode_perform` registers that explicitly for both Ops (PyTensor's
generic fallback does the same but warns at every compilation). Measured on
Penicillin and a crossed rater x student design, one log-density and gradient
evaluation costs 160 and 196 us compiled by Numba (object mode), 157 and
222 us by PyTensor's C backend, of which 130 and 159 us are the NumPy algebra
itself: the object-mode boundary costs about 30 us per evaluation, no more
than the C backend's Python call.
"""

from __future__ import annotations

import multiprocessing
import os

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import numba_funcify
from pytensor.link.numba.dispatch.basic import get_numba_type, numba_njit
from threadpoolctl import threadpool_limits

from hierbayes.bayesian import blocked
from hierbayes.bayesian.blocked import GaussianCrossProducts

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
    if not force_op and not uses_op(cp, len(Ls)):
        return _one_block_graph(cp, beta, sigma, Ls[0])
    return MarginalLoglikOp(cp)(beta, sigma, *Ls)[0]


def uses_op(cp: GaussianCrossProducts, n_factors: int) -> bool:
    """Whether the marginal log-likelihood needs the NumPy Op (several factors, or more than ``MAX_GRAPH_K`` terms)."""
    return n_factors > 1 or cp.k1 > MAX_GRAPH_K


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

    def pullback(self, inputs, outputs, cotangents):
        return value_gradient_pullback(self, inputs, outputs, cotangents)


def value_gradient_pullback(op, inputs, outputs, cotangents) -> list:
    """Pullback of an Op whose outputs are a scalar value and then its gradient with respect to each input.

    The vector-Jacobian product of the value is its cotangent times the gradient outputs (computed in the same
    ``perform``); the gradient outputs themselves have no derivative here (no Hessian), so a cotangent reaching
    them makes the result not implemented rather than silently wrong.
    """
    if any(not isinstance(c.type, DisconnectedType) for c in cotangents[1:]):
        return [
            grad_not_implemented(op, i, x, "the gradient outputs of the marginal log-likelihood are not differentiable")
            for i, x in enumerate(inputs)
        ]
    return [cotangents[0] * g for g in outputs[1:]]


def object_mode_perform(op, node, **kwargs):
    """A Numba function that runs ``op.perform`` (NumPy/SciPy) in object mode; registered for the Ops here."""
    n_out = len(node.outputs)
    signature = numba.types.Tuple([get_numba_type(o.type) for o in node.outputs])

    def python_perform(inputs):
        storage = [[None] for _ in range(n_out)]
        op.perform(node, inputs, storage)
        return tuple(cell[0] for cell in storage)

    @numba_njit
    def perform(*inputs):
        with numba.objmode(out=signature):
            out = python_perform(inputs)
        return out

    return perform


def _register_numba(op_class: type) -> type:
    numba_funcify.register(op_class)(object_mode_perform)
    return op_class


_register_numba(MarginalLoglikOp)

_LIMITED: set[int] = set()


def _single_threaded_blas_in_worker() -> None:
    """One BLAS thread in a sampler's worker process.

    Chains run one per core, and multi-threaded OpenBLAS on small systems
    costs milliseconds per call when the cores are busy. PyMC limits the
    threads of a worker before unpickling the model, i.e. before SciPy's
    LAPACK is loaded there, so the limit is set again here, once per process.
    (The main process is limited by ``sample_posterior`` for the duration of a fit.)
    """
    pid = os.getpid()
    if pid in _LIMITED:
        return
    _LIMITED.add(pid)
    if multiprocessing.parent_process() is not None:
        threadpool_limits(limits=1, user_api="blas")
