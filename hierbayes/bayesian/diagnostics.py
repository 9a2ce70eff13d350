"""Sampler diagnostics counted on a fit, and the warning that says what to do about them.

Thresholds follow Vehtari et al. (2021, Bayesian Analysis 16(2)): R-hat at
most 1.01 and bulk and tail ESS of at least 100 per chain; any divergent
transition after tuning is reported. R-hat and ESS are arviz-stats'
(rank-normalized split R-hat, bulk and tail ESS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.fft import next_fast_len

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
        fast = _vectorized(post) if draws >= 4 else None
        bulk, tail, rh = fast if fast is not None else (ess(post, method="bulk"), ess(post, method="tail"), None)
        min_bulk, worst_ess = _extreme(bulk, np.nanargmin, labels)
        min_tail, _ = _extreme(tail, np.nanargmin, labels)
        if chains > 1:
            max_rhat, worst_rhat = _extreme(rh if rh is not None else rhat(post), np.nanargmax, labels)
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


# --- arviz-stats' rank-normalized split R-hat, bulk and tail ESS, vectorized over parameters --------------------


def _vectorized(post):
    """(bulk ESS, tail ESS, R-hat) Datasets of ``post``'s variables, as ``arviz_stats`` computes them.

    arviz-stats applies its per-parameter functions one scalar at a time (a rank transform each); here the
    ranks, normal scores, autocovariances and variances of all parameters are computed in a few array
    operations (Geyer's initial monotone sequence is a short loop per parameter). The results equal
    arviz-stats' (tests/bayesian/test_compiled.py). None when a variable holds non-finite draws (arviz-stats
    is used then).
    """
    import xarray as xr  # xarray only for the diagnostics: import hierbayes stays light
    from arviz_stats.validate import validate_ci_prob  # arviz only for the diagnostics (its tail probability)

    arrays, shapes = [], []
    for v in post.data_vars:
        da = post[v].transpose("chain", "draw", ...)
        a = np.asarray(da.values, dtype=float)
        shapes.append((v, da.dims[2:], a.shape[2:]))
        arrays.append(a.reshape(a.shape[0], a.shape[1], -1))
    x = np.moveaxis(np.concatenate(arrays, axis=2), 2, 0)  # (S, chains, draws)
    if not np.all(np.isfinite(x)):
        return None
    prob = validate_ci_prob(None)
    lo, hi = sorted((prob, 1 - prob))
    split = _split(x)
    z = _z_scale(split)  # the rank-normalized draws: bulk ESS and R-hat alike
    bulk = _ess(z)
    q = np.quantile(x.reshape(len(x), -1), [lo, hi], axis=1)  # (2, S)
    tail = np.minimum(_ess(_split(x <= q[0][:, None, None])), _ess(_split(x <= q[1][:, None, None])))
    folded = np.abs(split - np.median(split.reshape(len(split), -1), axis=1)[:, None, None])
    rh = np.maximum(_rhat(z), _rhat(_z_scale(folded))) if x.shape[1] > 1 else np.full(len(x), np.nan)
    out = []
    for values in (bulk, tail, rh):
        data, o = {}, 0
        for v, dims, shape in shapes:
            size = int(np.prod(shape))
            data[v] = xr.DataArray(values[o : o + size].reshape(shape), dims=dims, coords={d: post[d] for d in dims})
            o += size
        out.append(xr.Dataset(data))
    return tuple(out)


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1).astype(float)


def _z_scale(x: np.ndarray) -> np.ndarray:

    flat = x.reshape(len(x), -1)
    rank = stats.rankdata(flat, method="average", axis=1)
    return stats.norm.ppf((rank - 3 / 8) / (flat.shape[1] - 2 * 3 / 8 + 1)).reshape(x.shape)


def _rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[2]
    between = n * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    return np.sqrt((between / within + n - 1) / n)


def _ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of each (chains, draws) series of x (S, chains, draws), Geyer's initial monotone
    sequence on FFT autocovariances, as arviz-stats' ``_ess``."""

    S, n_chain, n_draw = x.shape
    m = next_fast_len(2 * n_draw)
    c = x - x.mean(axis=2, keepdims=True)
    f = np.fft.rfft(c, n=m, axis=2)
    f *= np.conjugate(f)
    acov = np.fft.irfft(f, n=m, axis=2)[:, :, :n_draw] / n_draw
    mean_acov = acov.mean(axis=1)  # (S, n_draw)
    chain_mean = x.mean(axis=2)
    mean_var = mean_acov[:, 0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(chain_mean, axis=1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]  # rho_hat at every lag
    out = np.empty(S)
    flat = x.reshape(S, -1)
    constant = (flat.max(axis=1) - flat.min(axis=1)) < np.finfo(float).resolution
    for s in range(S):
        if constant[s]:
            out[s] = n_chain * n_draw
            continue
        r = rho[s]
        rho_t = np.zeros(n_draw)
        even, odd = 1.0, r[1]
        rho_t[0], rho_t[1] = even, odd
        t = 1
        while t < n_draw - 3 and even + odd > 0.0:
            even, odd = r[t + 1], r[t + 2]
            if even + odd >= 0:
                rho_t[t + 1], rho_t[t + 2] = even, odd
            t += 2
        max_t = t - 2
        if even > 0:
            rho_t[max_t + 1] = even
        t = 1
        while t <= max_t - 2:
            if rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t]:
                rho_t[t + 1] = (rho_t[t - 1] + rho_t[t]) / 2.0
                rho_t[t + 2] = rho_t[t + 1]
            t += 2
        ess = n_chain * n_draw
        tau = -1.0 + 2.0 * np.sum(rho_t[: max_t + 1]) + np.sum(rho_t[max_t + 1 : max_t + 2])
        tau = max(tau, 1 / np.log10(ess))
        out[s] = np.nan if np.isnan(rho_t).any() else ess / tau
    return out
