"""A known linear mixed model, simulated again and again, for the coverage of prediction intervals.

``y = 250 + 10 x + u0 + u1 x + e`` with ``(u0, u1)`` normal (SDs 25 and 6, correlation 0.3) per
group and ``e ~ N(0, 20^2)``; x = 0..7 for each of ``n_groups`` groups. Each replicate fits
``y ~ x + (x | g)`` by REML and predicts new observations at x uniform on [0, 9]: in groups it has
seen (their true effects) and in new groups (fresh effects).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import hierbayes as hb

COV = np.array([[25.0**2, 0.3 * 25 * 6], [0.3 * 25 * 6, 6.0**2]])


def replicate(seed: int, n_groups: int = 30, n_per: int = 8, n_new: int = 10, level: float = 0.95,
              nsim: int = 1000) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Whether each new observation fell inside its interval: (observed groups, new groups)."""
    rng = np.random.default_rng(seed)
    u = rng.multivariate_normal(np.zeros(2), COV, size=n_groups + n_new)
    g = np.repeat(np.arange(n_groups), n_per)
    x = np.tile(np.arange(n_per, dtype=float), n_groups)
    y = 250 + 10 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 20, len(g))
    names = np.array([f"g{i:03d}" for i in range(n_groups + n_new)])
    data = pd.DataFrame({"y": y, "x": x, "g": names[g]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.lmer("y ~ x + (x | g)", data)
    seen = rng.choice(n_groups, n_new, replace=False)
    new = n_groups + np.arange(n_new)
    groups = np.concatenate([seen, new])
    x_new = rng.uniform(0, 9, len(groups))
    y_new = 250 + 10 * x_new + u[groups, 0] + u[groups, 1] * x_new + rng.normal(0, 20, len(groups))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pi = fit.predict(pd.DataFrame({"x": x_new, "g": names[groups]}), interval="prediction", level=level,
                         allow_new_levels=True, nsim=nsim, random_seed=seed)  # fmt: skip
    inside = (pi["lower"].to_numpy() <= y_new) & (y_new <= pi["upper"].to_numpy())
    return inside[:n_new], inside[n_new:]


def study(n_rep: int, first_seed: int = 1, **kw) -> dict:
    """Coverage over ``n_rep`` replicates, with a standard error from the replicates' coverages."""
    seen, new = zip(*(replicate(first_seed + r, **kw) for r in range(n_rep)), strict=True)
    out = {}
    for name, hits in (("observed", np.array(seen)), ("new", np.array(new))):
        per_rep = hits.mean(axis=1)
        out[name] = (float(hits.mean()), float(per_rep.std(ddof=1) / np.sqrt(len(per_rep))))
    return out
