"""Partial marginalization: the first factor (and any small factor) integrated out, the other factors sampled.

Full marginalization (:mod:`hierbayes.bayesian.marginal`) of crossed factors
leaves, after the first (largest) factor is eliminated, a dense system over
the other factors' effects ("the rest", ``qr`` of them) that fills in:
each gradient costs about ``q1 qr^2 + qr^3`` flops, 0.2 s for InstEval's
2,972 students and 1,142 other effects. Here the factors are split in two:

* integrated out ("M"): the first factor, whose ``Z1'Z1`` is block diagonal,
  plus every other factor small enough that its dense block stays cheap
  (``SMALL_COST_MAX``; InstEval's 14 departments). A few-level factor's SD
  is the one a sampler would meet through a funnel, so it pays to keep it
  out of the sampled parameters;
* sampled ("S"): the other factors' effects ``b_S``, non-centered model
  variables sampled by NUTS with beta, the covariance parameters and sigma.

Given ``b_S`` the likelihood is the full-marginal one of the M factors
(:mod:`hierbayes.bayesian.blocked`) for the response ``y - Z_S b_S``, which
enters only through its cross-products

    Z_M'(y - Z_S b_S),  X'(y - Z_S b_S),  (y - Z_S b_S)'(y - Z_S b_S);

``Z_M'Z_S`` and ``Z_S'Z_S`` are sparse, so an evaluation never touches the n
rows. The gradient in ``b_S`` is ``Z_S' V_M^{-1} (y - X beta - Z_S b_S) =
(Z_S'r - Z_S'Z_M bhat_M) / sigma^2`` with ``bhat_M`` the conditional mean of
the M effects. When M is the first factor alone this is a plain PyTensor
graph (per-level closed forms); otherwise a NumPy Op returning value and
gradient together. After sampling, the M effects are drawn from their exact
Gaussian conditional for each draw (:func:`draw_marginalized`), so every path
stores the same variables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytensor.sparse as psp
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from hierbayes.bayesian import blocked
from hierbayes.bayesian.blocked import GaussianCrossProducts, gaussian_crossproducts
from hierbayes.bayesian.marginal import (
    MAX_GRAPH_K,
    _register_numba,
    _single_threaded_blas_in_worker,
    one_block_from_residuals,
    value_gradient_pullback,
)

if TYPE_CHECKING:
    from hierbayes.design import Design

#: another factor is integrated out with the first while ``q1 m^2 + m^3 <= SMALL_COST_MAX`` (m: effects so added)
SMALL_COST_MAX = 1e6


@dataclass(frozen=True)
class PartialSplit:
    """Which factors are integrated out, which sampled, and the cross-products between them.

    Attributes
    ----------
    marginal, sampled
        Indices into ``design.blocks`` (``marginal[0] == 0``, the first factor).
    cp
        Cross-products of ``[Z_M X y]`` (the integrated-out factors only).
    ZmtZs, ZstZs
        ``Z_M'Z_S`` (q_M, q_S) and ``Z_S'Z_S`` (q_S, q_S), sparse CSR.
    ZstX, Zsty
        ``Z_S'X`` (q_S, p) and ``Z_S'y`` (q_S,) (``y`` minus any offset).
    """

    marginal: tuple[int, ...]
    sampled: tuple[int, ...]
    cp: GaussianCrossProducts
    ZmtZs: sp.csr_matrix
    ZstZs: sp.csr_matrix
    ZstX: np.ndarray
    Zsty: np.ndarray

    @property
    def qs(self) -> int:
        return self.ZstZs.shape[0]


def choose_marginal(design: Design) -> tuple[int, ...]:
    """The first factor plus the smallest others while their dense block stays within ``SMALL_COST_MAX``."""
    q1 = design.blocks[0].nlevels * design.blocks[0].k
    chosen, m = [0], 0
    for i in sorted(range(1, len(design.blocks)), key=lambda i: design.blocks[i].nlevels * design.blocks[i].k):
        qg = design.blocks[i].nlevels * design.blocks[i].k
        if q1 * (m + qg) ** 2 + (m + qg) ** 3 > SMALL_COST_MAX:
            break
        chosen.append(i)
        m += qg
    return tuple(sorted(chosen))


def partial_split(design: Design, marginal: tuple[int, ...] | None = None) -> PartialSplit:
    """Cross-products for integrating out the factors ``marginal`` (default :func:`choose_marginal`).

    Examples
    --------
    >>> import pandas as pd
    >>> import hierbayes as hb
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 7], "a": list("xxyyzz"), "b": list("uvuvuv")})
    >>> split = partial_split(hb.Model("y ~ 1 + (1 | a) + (1 | b)", df).design, marginal=(0,))
    >>> split.sampled, split.ZmtZs.shape, split.ZstZs.toarray().tolist()
    ((1,), (3, 2), [[3.0, 0.0], [0.0, 3.0]])
    """
    marginal = choose_marginal(design) if marginal is None else tuple(marginal)
    if not marginal or marginal[0] != 0:
        raise ValueError("the first factor must be integrated out")
    sampled = tuple(i for i in range(len(design.blocks)) if i not in marginal)
    blocks_m = [design.blocks[i] for i in marginal]
    cp = gaussian_crossproducts(design, blocks_m)
    Zm = sp.hstack([b.z_sparse() for b in blocks_m], format="csr")
    Zs = sp.hstack([design.blocks[i].z_sparse() for i in sampled], format="csr")
    y = np.asarray(design.y, dtype=float) - (0.0 if design.offset is None else design.offset)
    ZstZs = sp.csr_matrix(Zs.T @ Zs)
    ZmtZs = sp.csr_matrix(Zm.T @ Zs)
    for A in (ZstZs, ZmtZs):
        A.sort_indices()
    ZstX = np.ascontiguousarray(np.asarray(Zs.T @ np.asarray(design.X, dtype=float)))
    return PartialSplit(marginal, sampled, cp, ZmtZs, ZstZs, ZstX, np.asarray(Zs.T @ y))


def shifted(split: PartialSplit, b_s: np.ndarray) -> GaussianCrossProducts:
    """Cross-products of the M factors for the response ``y - Z_S b_s``."""
    cp = split.cp
    shift = split.ZmtZs @ b_s
    return dataclasses.replace(
        cp,
        yty=float(cp.yty - 2.0 * b_s @ split.Zsty + b_s @ (split.ZstZs @ b_s)),
        Xty=cp.Xty - split.ZstX.T @ b_s,
        Z1ty=cp.Z1ty - shift[: cp.q1].reshape(cp.nl1, cp.k1),
        Zrty=cp.Zrty - shift[cp.q1 :],
    )


def loglik_grad(split: PartialSplit, beta: np.ndarray, sigma: float, Ls: list[np.ndarray], b_s: np.ndarray) -> tuple:
    """Log-likelihood with the M factors integrated out, and its gradient in beta, sigma, each L_g and b_s."""
    ll, dbeta, dsigma, dLs, bhat = blocked.loglik_grad(shifted(split, b_s), beta, sigma, Ls, with_mean=True)
    if bhat is None:
        return ll, dbeta, dsigma, dLs, np.zeros_like(b_s)
    Zsr = split.Zsty - split.ZstX @ beta - split.ZstZs @ b_s
    return ll, dbeta, dsigma, dLs, (Zsr - split.ZmtZs.T @ bhat) / sigma**2


def partial_loglik(split: PartialSplit, beta, sigma, Ls: list, b_s):
    """Symbolic log-likelihood with the M factors integrated out, given the sampled effects ``b_s`` (q_S,).

    ``Ls``: the (k, k) Cholesky factor of each integrated-out factor, in the
    order of ``split.marginal``; ``b_s``: the sampled factors' effects,
    factor by factor, level-major and term-minor.
    """
    if not uses_op(split):
        return _first_only_graph(split, beta, sigma, Ls[0], b_s)
    return PartialLoglikOp(split)(beta, sigma, b_s, *Ls)[0]


def uses_op(split: PartialSplit) -> bool:
    """Whether :func:`partial_loglik` needs the NumPy Op (more than the first factor integrated out, or a wide one)."""

    return len(split.marginal) > 1 or split.cp.k1 > MAX_GRAPH_K


def _first_only_graph(split: PartialSplit, beta, sigma, L1, b_s):

    cp = split.cp
    col = b_s[:, None]
    ZmtZb = psp.structured_dot(psp.as_sparse_variable(split.ZmtZs), col)[:, 0]
    ZstZb = psp.structured_dot(psp.as_sparse_variable(split.ZstZs), col)[:, 0]
    # elementwise sums rather than dot: PyTensor's BLAS ops run in Python when it cannot link a BLAS
    Z1r = (
        pt.as_tensor_variable(cp.Z1ty)
        - pt.sum(pt.as_tensor_variable(cp.Z1tX) * beta, axis=2)
        - ZmtZb.reshape((cp.nl1, cp.k1))
    )
    XtXb = pt.sum(pt.as_tensor_variable(cp.XtX) * beta, axis=1)
    Zsr = pt.as_tensor_variable(split.Zsty) - pt.sum(pt.as_tensor_variable(split.ZstX) * beta, axis=1)
    rr = cp.yty - pt.sum(beta * (2.0 * pt.as_tensor_variable(cp.Xty) - XtXb)) + pt.sum(b_s * (ZstZb - 2.0 * Zsr))
    return one_block_from_residuals(cp, sigma, L1, Z1r, rr)


class PartialLoglikOp(Op):
    """Value and analytic gradient of :func:`loglik_grad` (inputs beta, sigma, b_s, then each L_g)."""

    def __init__(self, split: PartialSplit):
        self.split = split

    def make_node(self, beta, sigma, b_s, *Ls):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (beta, sigma, b_s, *Ls)]
        outputs = [pt.dscalar(), *(v.type() for v in inputs)]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, outputs):

        _single_threaded_blas_in_worker()
        beta, sigma, b_s, *Ls = inputs
        ll, dbeta, dsigma, dLs, db = loglik_grad(self.split, beta, float(sigma), list(Ls), b_s)
        for out, value in zip(outputs, (ll, dbeta, dsigma, db, *dLs), strict=True):
            out[0] = np.asarray(value, dtype="float64")

    def pullback(self, inputs, outputs, cotangents):

        return value_gradient_pullback(self, inputs, outputs, cotangents)


def _register() -> None:

    _register_numba(PartialLoglikOp)


_register()


def draw_marginalized(
    split: PartialSplit,
    beta: np.ndarray,
    sigma: np.ndarray,
    Ls: list[np.ndarray],
    b_s: np.ndarray,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Exact draws of the integrated-out factors' effects given posterior draws of everything else.

    Parameters
    ----------
    beta, sigma, Ls, b_s
        Posterior draws: (D, p), (D,), one (D, k, k) per integrated-out
        factor, and the sampled effects (D, q_S).

    Returns
    -------
    list of numpy.ndarray
        One (D, levels, k) array per integrated-out factor, in the order of ``split.marginal``.
    """
    cp = split.cp
    if len(split.marginal) == 1:  # per-level closed forms, many draws at once
        out1 = np.empty((len(sigma), cp.nl1, cp.k1))
        for s in range(0, len(sigma), 256):
            sl = slice(s, min(len(sigma), s + 256))
            shift = np.asarray(split.ZmtZs @ b_s[sl].T).T.reshape(-1, cp.nl1, cp.k1)
            out1[sl] = blocked.draw_ranef_one_block(cp, beta[sl], sigma[sl], Ls[0][sl], rng, Z1r_shift=shift)
        return [out1]
    out = [np.empty((len(sigma), nl, k)) for nl, k in cp.sizes]
    for s in range(len(sigma)):
        draws = blocked.draw_ranef(shifted(split, b_s[s]), beta[s], float(sigma[s]), [L[s] for L in Ls], rng)
        for o, d in zip(out, draws, strict=True):
            o[s] = d
    return out
