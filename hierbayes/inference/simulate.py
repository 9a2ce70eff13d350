"""New responses from a fitted LMM (lme4's ``simulate``).

``use_re=False`` (lme4's default ``re.form = NA``): new random effects are
drawn from their fitted distribution, ``b_g ~ N(0, sigma^2 Lambda_g Lambda_g')``
per level, then ``y = X beta + offset + Z b + e`` with ``e_i ~ N(0, sigma^2 / w_i)``
for prior weights w. ``use_re=True``
(``re.form = NULL``): the fitted conditional modes are kept and only new
residuals ``e ~ N(0, sigma^2)`` are drawn.
With a residual structure (``correlation=``/``variance=``) the residuals
are drawn from it (:class:`ResidualDraw`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hierbayes.design import Design
from hierbayes.errors import ArgumentError
from hierbayes.structures import ResidualStructure


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
    residual: ResidualDraw | None = None,
    noise: np.ndarray | None = None,
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
    residual
        A residual structure's draw (correlated, heteroscedastic residuals); independent ones when None.
    noise
        The residuals, drawn beforehand (instead of ``residual``).
    """
    eta = design.X @ beta
    if design.offset is not None:
        eta = eta + design.offset
    for i, (block, lam) in enumerate(zip(design.blocks, lambdas, strict=True)):
        bb = b[i] if b is not None else sigma * rng.standard_normal((block.nlevels, block.k)) @ lam.T
        eta = eta + np.einsum("ij,ij->i", block.Z, bb[block.codes])
    if noise is not None:
        return eta + noise
    if residual is not None:
        return eta + residual.draw(sigma, rng)[:, 0]
    noise = sigma * rng.standard_normal(design.n)
    if design.weights is not None:  # residual SD sigma / sqrt(w); a row of weight zero keeps its mean (unused)
        w = np.asarray(design.weights, float)
        noise = np.divide(noise, np.sqrt(w), out=np.zeros_like(noise), where=w > 0)
    return eta + noise


@dataclass(frozen=True)
class ResidualDraw:
    """Residuals ``sigma * (G C G)^{1/2} z / sqrt(w)`` of a residual structure, in the design's row order.

    ``(G C G)^{1/2}`` is the inverse of the likelihood's whitening
    (:meth:`hierbayes.structures.ResidualStructure.residuals`): AR(1)/CAR(1)
    residuals follow their recursion within each group, compound symmetry its
    group mean, and the variance function scales them (for ``varPower()``, at
    the fit's fitted values, as nlme's fixed point holds them); prior
    weights divide by ``sqrt(w)``.
    """

    structure: ResidualStructure
    phi: np.ndarray
    fitted: np.ndarray | None = None
    weights: np.ndarray | None = None

    @classmethod
    def of(cls, fit) -> ResidualDraw | None:
        """The draw of a REML/ML fit's residual structure (None without one)."""
        st = getattr(fit, "structure", None)
        if st is None:
            return None
        w = None if fit.design.weights is None else np.asarray(fit.design.weights, float)
        return cls(st, np.asarray(fit.estimates.phi, float), fit.estimates.fitted_sorted, w)

    def draw(self, sigma: float, rng: np.random.Generator, size: int = 1) -> np.ndarray:
        """``size`` draws, an (n x size) array (all at once: the AR(1) recursion runs over the columns together)."""
        o = self.structure.order
        e_sorted = self.structure.residuals(rng.standard_normal((len(o), size)), self.phi, self.fitted)
        e = np.empty_like(e_sorted)
        e[o] = sigma * e_sorted
        return e if self.weights is None else e / np.sqrt(self.weights)[:, None]


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
    residual = ResidualDraw.of(fit)
    noise = residual.draw(fit.sigma, rng, nsim) if residual is not None else None
    out = np.empty((fit.design.n, int(nsim)))
    for j in range(int(nsim)):
        out[:, j] = simulate_response(fit.design, beta, lambdas, fit.sigma, rng, b,
                                      noise=None if noise is None else noise[:, j])  # fmt: skip
    return out
