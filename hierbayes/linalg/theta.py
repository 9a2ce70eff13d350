"""The covariance parameters theta and the relative covariance factors Lambda they make.

theta is the concatenation of every block's free entries of its relative
covariance factor lambda (lme4's ``getME(m, "theta")``); the random effects
of a block have covariance ``sigma^2 * lambda @ lambda.T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class ThetaLayout:
    """Where each block's parameters sit in theta.

    ``blocks`` are random-effects blocks (the design's ``ReBlock``): each has
    ``k``, ``n_theta``, ``theta_index`` (the (row, column) in lambda of each of
    its theta elements), ``theta_lower``, ``theta_start`` and ``theta_names``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> ThetaLayout(m.design.blocks).lambdas(np.array([1.0, 0.5, 2.0]))[0].tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    """

    blocks: Sequence

    @cached_property
    def slices(self) -> list[slice]:
        out, start = [], 0
        for b in self.blocks:
            out.append(slice(start, start + b.n_theta))
            start += b.n_theta
        return out

    @property
    def size(self) -> int:
        return sum(b.n_theta for b in self.blocks)

    @property
    def lower(self) -> np.ndarray:
        return np.concatenate([b.theta_lower for b in self.blocks])

    @property
    def start(self) -> np.ndarray:
        return np.concatenate([b.theta_start for b in self.blocks])

    @property
    def names(self) -> list[str]:
        return [n for b in self.blocks for n in b.theta_names]

    @cached_property
    def _flat_index(self) -> list[tuple[int, np.ndarray, slice]]:
        return [
            (b.k, np.array([r * b.k + c for r, c in b.theta_index], dtype=np.intp), s)
            for b, s in zip(self.blocks, self.slices, strict=True)
        ]

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """The k x k factor of every block."""
        out = []
        for k, idx, s in self._flat_index:
            lam = np.zeros(k * k)
            lam[idx] = theta[s]
            out.append(lam.reshape(k, k))
        return out

    def covariances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Covariance matrix of every block's random effects: sigma^2 lambda lambda'."""
        return [sigma**2 * lam @ lam.T for lam in self.lambdas(theta)]
