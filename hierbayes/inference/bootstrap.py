"""Bootstrap of REML/ML fits: lme4's ``bootMer`` (parametric) and a case bootstrap (lmeresampler).

* Parametric (default): responses are simulated from the fitted model with
  new random effects (``use_re=False``, bootMer's ``use.u = FALSE``) or with
  the fitted modes (``use_re=True``), and the model is refitted by the same
  criterion, starting from the fitted theta.
* Case (``resample=["Subject"]``): whole groups are drawn with replacement,
  duplicated groups become distinct levels (:mod:`hierbayes.inference.resample`).

Replicate i draws from its own generator, seeded by child i of
``numpy.random.SeedSequence(seed)``, so the results do not depend on how the
replicates are split between worker processes. Replicates run in a process
pool (all cores by default) with a progress bar in Jupyter and interactive
sessions (``progressbar``, :mod:`hierbayes._progress`).
Percentile intervals use boot's ``norm.inter`` interpolation, as
``confint(m, method = "boot")`` does.
"""

from __future__ import annotations

import dataclasses
import inspect
import multiprocessing as mp
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._progress import progress_bar, resolve
from hierbayes._warnings import warn
from hierbayes.design import Design
from hierbayes.design.varcorr import sdcor_parameters
from hierbayes.errors import ArgumentError, EstimationError, HierbayesWarning, ModelError
from hierbayes.inference.resample import CasePlan, resample_design
from hierbayes.inference.simulate import ResidualDraw, check_nsim, simulate_response
from hierbayes.linalg import ThetaLayout
from hierbayes.optim.control import as_control
from hierbayes.reml.refit import refit, with_response
from hierbayes.reml.structured import fit_structured

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class _Task:
    design: Design
    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    use_re: bool
    b: list[np.ndarray] | None
    plan: CasePlan | None
    control: Any = None
    residual: ResidualDraw | None = None


def _init(task: _Task) -> None:
    _STATE["task"] = task
    _STATE["lambdas"] = ThetaLayout(task.design.blocks).lambdas(task.theta)


def _replicate(i: int, seed: np.random.SeedSequence) -> tuple[int, np.ndarray, float, np.ndarray]:
    task: _Task = _STATE["task"]
    rng = np.random.default_rng(seed)
    if task.plan is None:
        y = simulate_response(task.design, task.beta, _STATE["lambdas"], task.sigma, rng, task.b, task.residual)
        design = with_response(task.design, y)
    else:
        design = resample_design(task.design, task.plan, rng)
    st = task.residual.structure if task.residual is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if st is None:
                est = refit(design, task.reml, start=task.theta, control=task.control)
                return i, est.theta, est.sigma, est.beta, np.zeros(0)
            est = fit_structured(design, st, task.reml, start=task.theta)
            return i, est.theta, est.sigma, est.beta, np.array(list(est.residual_params.values()))
    except (FloatingPointError, np.linalg.LinAlgError, ValueError, EstimationError):
        nan = np.full(len(task.beta), np.nan)
        return i, np.full(len(task.theta), np.nan), np.nan, nan, np.full(0 if st is None else st.npar, np.nan)


def _chunk(items: list[tuple[int, np.random.SeedSequence]]) -> list[tuple]:
    return [_replicate(i, s) for i, s in items]


@dataclass(frozen=True)
class BootResult:
    """Bootstrap replicates of a fit (``bootMer``'s ``t`` and ``t0``).

    Attributes
    ----------
    t
        One row per replicate: ``.sig01``, ..., ``.sigma``, a residual structure's parameters
        (``Phi``, ...), fixed effects (lme4's names).
    t0
        The same statistics on the original fit.
    theta, sigma, beta
        Raw estimates of each replicate (for other statistics, e.g. ICCs).
    residual_params
        A residual structure's parameters per replicate (nlme's natural scale; no columns without one).
    kind
        ``"parametric"`` or ``"case"``.
    nsim, seed, resample
        How the replicates were made.
    n_failed
        Replicates whose refit failed (NaN rows).
    """

    t: pd.DataFrame
    t0: pd.Series
    theta: np.ndarray
    sigma: np.ndarray
    beta: np.ndarray
    kind: str
    nsim: int
    seed: int | None
    resample: tuple[str, ...] = ()
    n_failed: int = 0
    info: dict = field(default_factory=dict)
    residual_params: np.ndarray | None = None

    def __repr__(self) -> str:
        """How the replicates were made, and boot's summary (original, bias, std. error) with percentile intervals."""
        how = f"{self.kind} bootstrap".capitalize()
        method = {"reml": "REML", "ml": "ML"}.get(str(self.info.get("method", "")), "")
        of = f" of the {method} fit" if method else ""
        formula = self.info.get("formula")
        lines = [f"{how}{of}{': ' + formula if formula else ''}"]
        extra = f", groups of {', '.join(self.resample)} resampled" if self.resample else ""
        extra += ", conditional on the fitted random effects" if self.info.get("use_re") else ""
        lines.append(f"{self.nsim} replicates (seed {self.seed}){extra}; {self.n_failed} failed")
        t = self.t.to_numpy(dtype=float)
        ci = self.confint(0.95)
        width = max([len(c) for c in self.t.columns] + [9])
        cols = ("original", "bias", "std. error", "2.5 %", "97.5 %")
        lines.append(" " * width + "".join(f"{c:>12}" for c in cols))
        with np.errstate(invalid="ignore"):
            for j, name in enumerate(self.t.columns):
                col = t[:, j][np.isfinite(t[:, j])]
                t0 = float(self.t0[name])
                vals = (t0, col.mean() - t0 if col.size else np.nan, col.std(ddof=1) if col.size > 1 else np.nan,
                        *ci.loc[name].to_numpy())  # fmt: skip
                lines.append(f"{name:<{width}}" + "".join(f"{_g(v):>12}" for v in vals))
        lines.append(".confint(level, type) for other intervals, .t for the replicates, .idata for ArviZ")
        return "\n".join(lines)

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
        """Bootstrap intervals (``confint(bootMer(...), type=)``): ``"perc"``, ``"basic"`` or ``"norm"``."""
        return boot_intervals(self.t, self.t0, level, type)

    @property
    def idata(self):
        """The replicates as an ArviZ 1.x ``xarray.DataTree``: group ``posterior`` (chain 1, draw nsim), plus attrs.

        ``az.summary(result.idata)`` and ``az.plot_dist(result.idata)`` work on it
        as on a posterior; ``attrs["inference"]`` says it is a bootstrap.
        """
        import xarray as xr  # xarray only for the DataTree view: import hierbayes stays light

        data = {c: xr.DataArray(self.t[c].to_numpy()[None, :], dims=("chain", "draw")) for c in self.t.columns}
        post = xr.Dataset(data, coords={"chain": [0], "draw": np.arange(len(self.t))})
        post.attrs.update(
            inference=f"{self.kind} bootstrap", nsim=self.nsim, seed=-1 if self.seed is None else self.seed,
            resample=",".join(self.resample), n_failed=self.n_failed,
        )  # fmt: skip
        return xr.DataTree.from_dict({"posterior": post})


def _g(v: float) -> str:
    return "NA" if not np.isfinite(v) else f"{v:.5g}"


def norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """boot's ``norm.inter``: quantiles of t interpolated on the normal scale between order statistics."""
    t = np.sort(t[np.isfinite(t)])
    R = len(t)
    alpha = np.asarray(alpha, dtype=float)
    rk = (R + 1) * alpha
    if not np.all((rk > 1) & (rk < R)):
        warn("extreme order statistics used as endpoints", HierbayesWarning)
    k = np.trunc(rk).astype(int)
    out = np.empty(len(alpha))
    for j in range(len(alpha)):
        if k[j] == rk[j]:
            out[j] = t[k[j] - 1]
        elif k[j] == 0:
            out[j] = t[0]
        elif k[j] >= R:
            out[j] = t[R - 1]
        else:
            z, z1, z2 = stats.norm.ppf([alpha[j], k[j] / (R + 1), (k[j] + 1) / (R + 1)])
            out[j] = t[k[j] - 1] + (z - z1) / (z2 - z1) * (t[k[j]] - t[k[j] - 1])
    return out


def boot_intervals(t: pd.DataFrame, t0: pd.Series, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
    """Intervals from replicates, like ``boot.ci`` (columns ``"2.5 %"``, ``"97.5 %"``)."""
    a = (1 - level) / 2
    cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
    rows = {}
    for name in t.columns:
        x = t[name].to_numpy(dtype=float)
        if type == "perc":
            rows[name] = norm_inter(x, np.array([a, 1 - a]))
        elif type == "basic":
            q = norm_inter(x, np.array([1 - a, a]))
            rows[name] = 2 * t0[name] - q
        elif type == "norm":
            x = x[np.isfinite(x)]
            bias = x.mean() - t0[name]
            half = stats.norm.ppf(1 - a) * x.std(ddof=1)
            rows[name] = np.array([t0[name] - bias - half, t0[name] - bias + half])
        else:
            raise ArgumentError(f"type must be 'perc', 'basic' or 'norm', not {type!r}")
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def _statistics(fit: LmerFit, theta: np.ndarray, sigma: np.ndarray, beta: np.ndarray,
                resid: np.ndarray) -> pd.DataFrame:  # fmt: skip
    blocks, layout = fit.design.blocks, fit.layout
    names = [*fit.sdcor.index, *_structure_names(fit), *fit.fixef.index]
    rows = np.full((len(sigma), len(names)), np.nan)
    for i in range(len(sigma)):
        if np.isfinite(sigma[i]):
            sd = sdcor_parameters(blocks, layout.covariances(theta[i], sigma[i]), sigma[i]).to_numpy()
            rows[i] = np.r_[sd, resid[i], beta[i]]
    return pd.DataFrame(rows, columns=names)


def _structure_names(fit: LmerFit) -> list[str]:
    return list(fit.residual_params) if getattr(fit, "structure", None) is not None else []


def bootstrap(
    fit: LmerFit,
    nsim: int = 1000,
    seed: int | None = None,
    resample: list[str] | str | None = None,
    use_re: bool = False,
    n_jobs: int | None = None,
    progress: bool | None = None,
    progressbar: bool | None = None,
) -> BootResult:
    """Bootstrap a REML/ML fit (lme4's ``bootMer``; a case bootstrap with ``resample``).

    Parameters
    ----------
    fit
        The fit to bootstrap.
    nsim
        Number of replicates.
    seed
        Seed of the replicates' ``SeedSequence``; results are reproducible and
        do not depend on ``n_jobs``.
    resample
        Grouping factor(s) whose groups are resampled with replacement (case
        bootstrap, e.g. ``["Subject"]``; nested factors outer first). None for
        the parametric bootstrap.
    use_re
        Parametric bootstrap conditional on the fitted random effects (bootMer's ``use.u = TRUE``).
    n_jobs
        Worker processes; all cores by default (1 runs in this process).
    progress
        The older spelling of ``progressbar``.
    progressbar
        A progress bar: by default in Jupyter and interactive sessions, never in a plain script
        (hierbayes' one convention, as :func:`hierbayes.bayes`); True or False to choose.

    Returns
    -------
    BootResult

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    >>> res = bootstrap(fit, nsim=20, seed=1, n_jobs=1)
    >>> res.t.shape
    (20, 4)
    """
    nsim = check_nsim(nsim)
    if isinstance(resample, str):
        resample = [resample]
    residual = ResidualDraw.of(fit)
    if resample and residual is not None:
        raise ModelError(
            "a case bootstrap (resample=) is not available with a residual structure (correlation=/variance=): "
            "the structure is bound to the rows, which resampling duplicates; use the parametric bootstrap "
            "(resample=None)"
        )
    plan = CasePlan.build(fit.design, list(resample)) if resample else None
    task = _Task(
        design=fit.design, reml=fit.reml, theta=fit.estimates.theta, beta=fit.fixef.to_numpy(), sigma=fit.sigma,
        use_re=use_re, b=fit._ranef_arrays() if use_re else None, plan=plan, control=_refit_control(fit),
        residual=residual,
    )  # fmt: skip
    seeds = np.random.SeedSequence(seed).spawn(nsim)
    items = list(enumerate(seeds))
    n_jobs = os.cpu_count() or 1 if n_jobs is None else max(1, int(n_jobs))
    show = resolve(progressbar, progress, "bootstrap")
    results = _run(task, items, n_jobs, show)
    results.sort(key=lambda r: r[0])
    theta = np.array([r[1] for r in results])
    sigma = np.array([r[2] for r in results])
    beta = np.array([r[3] for r in results])
    resid = np.array([r[4] for r in results])
    t = _statistics(fit, theta, sigma, beta, resid)
    t0 = pd.Series(np.r_[fit.sdcor.to_numpy(), list(fit.residual_params.values()), fit.fixef.to_numpy()],
                   index=t.columns)  # fmt: skip
    n_failed = int(np.sum(~np.isfinite(sigma)))
    if n_failed:
        warn(f"{n_failed} of {nsim} bootstrap refits failed (NaN rows)", HierbayesWarning)
    return BootResult(
        t=t, t0=t0, theta=theta, sigma=sigma, beta=beta, kind="case" if plan else "parametric", nsim=nsim,
        seed=seed, resample=tuple(resample or ()), n_failed=n_failed,
        info={"use_re": use_re, "n_jobs": n_jobs, "formula": str(getattr(fit, "formula", "")), "method": fit.method},
        residual_params=resid if residual is not None else None,
    )  # fmt: skip


def check_boot_options(options: dict, where: str) -> None:
    """Raise an ArgumentError for a keyword :func:`bootstrap` does not take, listing those it does."""
    allowed = [n for n in inspect.signature(bootstrap).parameters if n != "fit"]
    bad = [k for k in options if k not in allowed]
    if bad:
        raise ArgumentError(f"{where} got unknown keyword(s) {', '.join(map(repr, bad))}; valid: {', '.join(allowed)}")


def _refit_control(fit: LmerFit):
    """The fit's control for the replicates, without the derivatives (no convergence report is kept for them)."""
    return dataclasses.replace(as_control(fit.estimates.control, "lmer"), calc_derivs=False)


def _run(task: _Task, items: list, n_jobs: int, show: bool) -> list:
    bar = progress_bar(len(items), "bootstrap", show, unit="refit")
    out: list = []
    try:
        if n_jobs == 1 or len(items) < 4 * n_jobs:
            _init(task)
            for i, s in items:
                out.append(_replicate(i, s))
                bar.update(1)
            return out
        size = max(1, len(items) // (n_jobs * 8))
        chunks = [items[k : k + size] for k in range(0, len(items), size)]
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context(method), initializer=_init, initargs=(task,)) as ex:
            futures = [ex.submit(_chunk, c) for c in chunks]
            for f in as_completed(futures):
                res = f.result()
                out.extend(res)
                bar.update(len(res))
        return out
    finally:
        bar.close()
