"""New responses from a fitted LMM (lme4's ``simulate``).

``use_re=False`` (lme4's default ``re.form = NA``): new random effects are
drawn from their fitted distribution, ``b_g ~ N(0, sigma^2 Lambda_g Lambda_g')``
per level, then ``y = X beta + offset + Z b + e`` with ``e_i ~ N(0, sigma^2 / w_i)``
for prior weights w. ``use_re=True``
(``re.form = NULL``): the fitted conditional modes are kept and only new
residuals ``e ~ N(0, sigma^2)`` are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hierbayes.design import Design
from hierbayes.errors import ArgumentError


def check_nsim(nsim) -> int:
    """A number of simulations: a whole number >= 1 (an ArgumentError otherwise)."""
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer, float)) or nsim != int(nsim) or nsim < 1:
        raise ArgumentError(f"nsim must be a positive whole number, not {nsim!r}")
    return int(nsim)


def simulate_response(
    design: Design,
    beta: np.ndarray,
    lambdas: Sequence[np.ndarray],
    sigma: float,
    rng: np.random.Generator,
    b: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """One simulated response vector.

    Parameters
    ----------
    design
        The model's design.
    beta, lambdas, sigma
        Fixed effects, each block's relative covariance factor, residual SD.
    rng
        Random generator.
    b
        Random effects per block (levels x k) to condition on; drawn anew when None.
    """
    eta = design.X @ beta
    if design.offset is not None:
        eta = eta + design.offset
    for i, (block, lam) in enumerate(zip(design.blocks, lambdas, strict=True)):
        bb = b[i] if b is not None else sigma * rng.standard_normal((block.nlevels, block.k)) @ lam.T
        eta = eta + np.einsum("ij,ij->i", block.Z, bb[block.codes])
    noise = sigma * rng.standard_normal(design.n)
    if design.weights is not None:  # residual SD sigma / sqrt(w); a row of weight zero keeps its mean (unused)
        w = np.asarray(design.weights, float)
        noise = np.divide(noise, np.sqrt(w), out=np.zeros_like(noise), where=w > 0)
    return eta + noise


def simulate(fit, nsim: int = 1, seed: int | np.random.Generator | None = None, use_re: bool = False) -> np.ndarray:
    """``nsim`` simulated responses from a fit, as an (n x nsim) array.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> simulate(fit, nsim=3, seed=1).shape
    (180, 3)
    """
    nsim = check_nsim(nsim)
    rng = np.random.default_rng(seed)
    lambdas = fit.layout.lambdas(fit.estimates.theta)
    beta = fit.fixef.to_numpy()
    b = fit._ranef_arrays() if use_re else None
    out = np.empty((fit.design.n, int(nsim)))
    for j in range(int(nsim)):
        out[:, j] = simulate_response(fit.design, beta, lambdas, fit.sigma, rng, b)
    return out
