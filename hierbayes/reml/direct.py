"""A dense, direct computation of the profiled criteria, for checking the fast path.

O(n^3): it forms the marginal covariance ``V0 = Z Lambda Lambda' Z' + W^-1``
explicitly (W the prior weights, identity without them; rows of weight zero
left out) and uses generalized least squares. It shares no linear algebra
with the numerical core (:mod:`hierbayes.linalg`) beyond the design, so agreement between
the two is a real check. Only for small designs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from hierbayes.linalg import ThetaLayout, block_lambda

if TYPE_CHECKING:
    from hierbayes.design import Design


def direct_criterion(design: Design, theta: np.ndarray, reml: bool = True) -> float:
    """-2 log-likelihood (ML) or REML criterion at theta, by dense GLS.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"))
    >>> round(direct_criterion(d, [0.713], reml=False), 4)
    327.3422
    """
    layout = ThetaLayout(design.blocks)
    lams = layout.lambdas(np.asarray(theta, float))
    w = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    rows = w > 0
    Z = design.z_sparse().toarray()[rows]
    Lam = sp.block_diag([block_lambda(lam, b.nlevels) for lam, b in zip(lams, design.blocks, strict=True)]).toarray()
    ZL = Z @ Lam
    n, p = int(rows.sum()), design.p
    V0 = ZL @ ZL.T + np.diag(1.0 / w[rows])
    C = sla.cho_factor(V0, lower=True)
    y = (design.y if design.offset is None else design.y - design.offset)[rows]
    X = design.X[rows]
    ViX = sla.cho_solve(C, X)
    Viy = sla.cho_solve(C, y)
    XtViX = X.T @ ViX
    beta = np.linalg.solve(XtViX, X.T @ Viy)
    r = y - X @ beta
    r2 = r @ sla.cho_solve(C, r)
    logdet_V0 = 2 * np.log(np.diag(C[0])).sum()
    if reml:
        nu = n - p
        return float(logdet_V0 + np.linalg.slogdet(XtViX)[1] + nu * (1 + np.log(2 * np.pi * r2 / nu)))
    return float(logdet_V0 + n * (1 + np.log(2 * np.pi * r2 / n)))
