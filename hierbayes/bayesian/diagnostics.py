"""Sampler diagnostics counted on a fit, and the warning that says what to do about them.

Thresholds follow Vehtari et al. (2021, Bayesian Analysis 16(2)): R-hat at
most 1.01 and bulk and tail ESS of at least 100 per chain; any divergent
transition after tuning is reported. R-hat and ESS are arviz-stats'
(rank-normalized split R-hat, bulk and tail ESS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hierbayes._warnings import warn
from hierbayes.errors import SamplingWarning

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


@dataclass(frozen=True)
class Diagnostics:
    """Counted sampler diagnostics.

    Attributes
    ----------
    n_divergences
        Divergent transitions after tuning, all chains.
    max_rhat
        Largest rank-normalized split R-hat over the stored parameters.
    min_ess_bulk, min_ess_tail
        Smallest bulk and tail effective sample sizes.
    n_max_treedepth
        Transitions that hit the maximum tree depth.
    worst_rhat, worst_ess
        Readable name of the parameter with the largest R-hat / smallest bulk ESS.
    chains, draws
        Chains and draws per chain.
    """

    n_divergences: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_max_treedepth: int
    worst_rhat: str
    worst_ess: str
    chains: int
    draws: int

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One sentence per problem, each with the remedy."""
        out = []
        total = self.chains * self.draws
        if self.n_divergences:
            out.append(
                f"{self.n_divergences} of {total} transitions after tuning were divergent: the posterior has "
                "regions the sampler cannot follow, so estimates may be biased. Increase target_accept "
                "(e.g. 0.95 or 0.99), give the SDs tighter priors, or try the other parameterization "
                "(centered=True helps when groups have many observations; non-centered is the default)."
            )
        if np.isfinite(self.max_rhat) and self.max_rhat > RHAT_MAX:
            out.append(
                f"the largest R-hat is {self.max_rhat:.3f} (> {RHAT_MAX}, for {self.worst_rhat}): the chains "
                "disagree. Run longer (more tune and draws) and check the trace plots."
            )
        need = ESS_PER_CHAIN * self.chains
        if self.chains > 1 and min(self.min_ess_bulk, self.min_ess_tail) < need:
            out.append(
                f"the smallest effective sample size is {min(self.min_ess_bulk, self.min_ess_tail):.0f} "
                f"(bulk {self.min_ess_bulk:.0f}, tail {self.min_ess_tail:.0f}; worst {self.worst_ess}), below "
                f"{need} ({ESS_PER_CHAIN} per chain): means and intervals are unreliable. Draw more, or "
                "reparameterize (centered=True / marginalize=True for gaussian models)."
            )
        if self.n_max_treedepth:
            out.append(
                f"{self.n_max_treedepth} transitions hit the maximum tree depth: sampling is inefficient. "
                "Rescale predictors or pass max_treedepth higher."
            )
        return out

    def warn(self) -> None:
        problems = self.problems()
        if problems:
            warn("sampling problems: " + " ".join(f"({i + 1}) {p}" for i, p in enumerate(problems)), SamplingWarning)

    def __str__(self) -> str:
        return (
            f"divergences: {self.n_divergences}, max R-hat: {self.max_rhat:.4f}, min bulk ESS: "
            f"{self.min_ess_bulk:.0f}, min tail ESS: {self.min_ess_tail:.0f}"
        )


#: names of the "hit the maximum tree depth" sample statistic: PyMC's NUTS, nutpie
TREEDEPTH_STATS = ("reached_max_treedepth", "maxdepth_reached")


def diagnose(idata, var_names: list[str], labels) -> Diagnostics:
    """Count divergences and compute R-hat / ESS over ``var_names`` of the posterior of ``idata`` (a DataTree).

    ``labels(var, index)`` names one element for the messages.
    """
    from arviz_stats import ess, rhat  # ArviZ only for diagnostics: import hierbayes stays light

    post = idata["posterior"].to_dataset()[var_names]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    stats = idata["sample_stats"]
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    depth = next((int(stats[n].sum()) for n in TREEDEPTH_STATS if n in stats), 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws (a correlation's diagonal): NaN
        min_bulk, worst_ess = _extreme(ess(post, method="bulk"), np.nanargmin, labels)
        min_tail, _ = _extreme(ess(post, method="tail"), np.nanargmin, labels)
        if chains > 1:
            max_rhat, worst_rhat = _extreme(rhat(post), np.nanargmax, labels)
        else:
            max_rhat, worst_rhat = np.nan, ""
    return Diagnostics(div, max_rhat, min_bulk, min_tail, depth, worst_rhat, worst_ess, chains, draws)


def _extreme(ds, pick, labels) -> tuple[float, str]:
    best_val, best_name = np.nan, ""
    for var in ds.data_vars:
        v = np.asarray(ds[var].values, dtype=float)
        if not np.isfinite(v).any():
            continue
        flat = np.where(np.isfinite(v), v, np.nan).ravel()
        i = int(pick(flat))
        val = float(flat[i])
        better = np.isnan(best_val) or (val > best_val if pick is np.nanargmax else val < best_val)
        if better:
            best_val, best_name = val, labels(var, np.unravel_index(i, v.shape) if v.ndim else ())
    return best_val, best_name
