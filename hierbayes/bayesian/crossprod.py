"""Cross-products of a gaussian mixed model, computed once per fit (NumPy only).

The marginal likelihood of ``y ~ N(X beta, sigma^2 I + Z Sigma_b Z')`` depends
on the data only through ``Z'Z``, ``Z'X``, ``Z'y``, ``X'X``, ``X'y`` and
``y'y``, so after this step no evaluation touches the n rows again.

The random-effects blocks are split as in the REML engine (re-derived here:
the engines never import each other). The first block (the factor with the
most levels) has a block-diagonal ``Z1'Z1``, stored per level; the other
blocks ("the rest", ``qr`` columns) are stored as a sparse ``Zr'Z1`` and a
dense ``Zr'Zr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hierbayes.design import Design, ReBlock

#: Zr'Z1 with at most this many entries is kept dense
DENSE_MAX = 2_000_000


@dataclass(frozen=True)
class GaussianCrossProducts:
    """Stored cross-products of ``[Z X y]`` (``y`` minus any offset).

    Attributes
    ----------
    n, p
        Rows and fixed effects.
    yty, Xty, XtX
        ``y'y``, ``X'y`` (p,), ``X'X`` (p, p).
    A11, Z1tX, Z1ty
        First block per level: ``Z1'Z1`` (nl1, k1, k1), ``Z1'X`` (nl1, k1, p), ``Z1'y`` (nl1, k1).
    Ar1
        ``Zr'Z1``, sparse CSR (qr, q1); columns level-major, term-minor.
    Arr, Zrtx, Zrty
        ``Zr'Zr`` dense (qr, qr), ``Zr'X`` (qr, p), ``Zr'y`` (qr,).
    sizes
        (levels, k) of every block, first block first.
    Ar1_dense
        ``Zr'Z1`` as a dense (qr, nl1, k1) array when it is small (then the
        rest is handled with dense algebra, which beats sparse bookkeeping).
    """

    n: int
    p: int
    yty: float
    Xty: np.ndarray
    XtX: np.ndarray
    A11: np.ndarray
    Z1tX: np.ndarray
    Z1ty: np.ndarray
    Ar1: sp.csr_matrix
    Arr: np.ndarray
    ZrtX: np.ndarray
    Zrty: np.ndarray
    sizes: tuple[tuple[int, int], ...]
    Ar1_dense: np.ndarray | None = None

    @property
    def nl1(self) -> int:
        return self.A11.shape[0]

    @property
    def k1(self) -> int:
        return self.A11.shape[1]

    @property
    def q1(self) -> int:
        return self.nl1 * self.k1

    @property
    def qr(self) -> int:
        return self.Arr.shape[0]

    @property
    def q(self) -> int:
        return self.q1 + self.qr


def gaussian_crossproducts(design: Design, blocks: list[ReBlock] | None = None) -> GaussianCrossProducts:
    """Cross-products of a design's ``[Z X y - offset]``.

    ``blocks``: only these factors' columns in Z (default: all of the
    design's, first factor first).

    Examples
    --------
    >>> import hierbayes as hb
    >>> cp = gaussian_crossproducts(hb.Model("Reaction ~ Days + (Days | Subject)",
    ...                                      hb.datasets.load("sleepstudy")).design)
    >>> cp.A11.shape, cp.qr
    ((18, 2, 2), 0)
    """
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - design.offset
    X = np.asarray(design.X, dtype=float)
    blocks = list(design.blocks if blocks is None else blocks)
    first, rest = blocks[0], blocks[1:]
    nl, k, codes, Z1 = first.nlevels, first.k, first.codes, first.Z
    A11 = np.empty((nl, k, k))
    for a in range(k):
        for b in range(a, k):
            A11[:, a, b] = A11[:, b, a] = np.bincount(codes, weights=Z1[:, a] * Z1[:, b], minlength=nl)
    Xy = np.column_stack([X, y])
    D = np.empty((nl, k, Xy.shape[1]))
    for a in range(k):
        for c in range(Xy.shape[1]):
            D[:, a, c] = np.bincount(codes, weights=Z1[:, a] * Xy[:, c], minlength=nl)
    if rest:
        Zr = sp.hstack([_z(b) for b in rest], format="csr")
        Ar1 = (Zr.T @ _z(first)).tocsr()
        Ar1.sort_indices()
        Arr = (Zr.T @ Zr).toarray()
        ZrXy = np.asarray(Zr.T @ Xy)
    else:
        Ar1 = sp.csr_matrix((0, first.q))
        Arr = np.zeros((0, 0))
        ZrXy = np.zeros((0, Xy.shape[1]))
    return GaussianCrossProducts(
        n=len(y), p=X.shape[1], yty=float(y @ y), Xty=X.T @ y, XtX=X.T @ X,
        A11=A11, Z1tX=np.ascontiguousarray(D[:, :, :-1]), Z1ty=np.ascontiguousarray(D[:, :, -1]),
        Ar1=Ar1, Arr=Arr, ZrtX=np.ascontiguousarray(ZrXy[:, :-1]), Zrty=np.ascontiguousarray(ZrXy[:, -1]),
        sizes=tuple((b.nlevels, b.k) for b in blocks),
        Ar1_dense=Ar1.toarray().reshape(-1, nl, k) if 0 < Ar1.shape[0] * Ar1.shape[1] <= DENSE_MAX else None,
    )  # fmt: skip


def _z(block: ReBlock) -> sp.csr_matrix:
    return block.z_sparse()
