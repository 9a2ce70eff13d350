"""Run a spec: fit every engine, make the tables and plots, save the posterior, write the report.

``run_spec`` is what ``hierbayes run`` calls; it can be used from Python too:

>>> from hierbayes.spec import load_spec
>>> from hierbayes.runner import run_spec
>>> result = run_spec(load_spec("models/sleepstudy.toml"), "results/sleepstudy", fast=True)  # doctest: +SKIP
>>> [label for label, _ in result.files]  # doctest: +SKIP
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hierbayes._progress import resolve
from hierbayes._version import __version__
from hierbayes._warnings import ignore_not_actionable
from hierbayes.errors import HierbayesError
from hierbayes.fits.base import MixedFit
from hierbayes.model import Model
from hierbayes.report import Section, write_html, write_markdown
from hierbayes.simulate import Simulation
from hierbayes.spec import Spec
from hierbayes.tables import compare, pooling
from hierbayes.tables.params import default_intervals


@dataclass
class RunResult:
    """What a run made: the fits, the files written (label, path) and the warnings raised."""

    spec: Spec
    out: Path
    fits: dict[str, MixedFit] = field(default_factory=dict)
    files: list[tuple[str, Path]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report: Path | None = None
    intervals: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """Column labels of the fits in tables and plots (REML, ML, Bayes)."""
        return [LABELS[e] for e in self.fits]


LABELS = {"reml": "REML", "ml": "ML", "bayes": "Bayes"}
#: significant digits of the numbers in the CSV tables (the fits' own precision is far beyond a report's)
CSV_DIGITS = 6


def _intervals(spec: Spec, fits: dict[str, MixedFit], fast: bool) -> dict[str, pd.DataFrame]:
    """Confidence intervals of the frequentist fits, computed once for tables and plots.

    The spec's ``confint`` when it names one; else hb.compare's default (profile intervals up to
    :data:`hierbayes.tables.params.PROFILE_MAX_NOBS` observations, Wald beyond), so the report's
    tables show what ``hb.compare(fit, post)`` shows.
    """
    out = {}
    for engine, fit in fits.items():
        if engine == "bayes" or not hasattr(fit, "confint"):
            continue
        method = spec.fit.get("confint")
        if method is None:
            ci, how = default_intervals(fit)
            ci = fit.confint(method="wald") if ci is None else ci
            method = how.lower()
        else:
            kwargs = {}
            if method == "boot":
                kwargs = {"nsim": 100 if fast else spec.fit.get("nsim", 500), "seed": spec.fit.get("seed", 1)}
            try:
                ci = fit.confint(method=method, **kwargs)
            except HierbayesError:
                method, ci = "wald", fit.confint(method="wald")
        ci.attrs["method"] = {"wald": "Wald", "boot": "bootstrap"}.get(method, method)
        out[LABELS[engine]] = ci
    return out


class _Steps:
    """Progress per step: a ``[2/9] fitting (bayes)`` line through ``log`` as each starts; each step's time."""

    def __init__(self, total: int, log: Callable[[str], None] | None):
        self.total, self.log, self.done = total, log, 0
        self.seconds: dict[str, float] = {}
        self._name, self._t = "", 0.0

    def start(self, name: str) -> None:
        self.finish()
        self._name, self._t = name, time.perf_counter()
        self.done += 1
        if self.log:
            self.log(f"[{self.done}/{self.total}] {name}")

    def finish(self) -> None:
        if self._name:
            secs = time.perf_counter() - self._t
            self.seconds[self._name] = secs
        self._name = ""


def run_spec(
    spec: Spec,
    out: str | Path,
    fast: bool = False,
    progressbar: bool | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Execute a spec and write everything under ``out``.

    Parameters
    ----------
    spec
        A validated spec (:func:`hierbayes.spec.load_spec`).
    out
        Output directory (created).
    fast
        Few draws for a quick look (at most 200 draws and tune, 2 chains).
    progressbar
        Progress bars of the sampler and the bootstrap (hierbayes' convention: by default in
        Jupyter and interactive sessions only).
    log
        Called with one line per step as it starts and ends (``hierbayes run`` prints them on
        stderr); None for silence.
    progress
        The older spelling of ``progressbar``.
    """
    t_start = time.perf_counter()
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    bars = resolve(progressbar, progress, "run_spec")
    result = RunResult(spec=spec, out=out)
    steps = _Steps(3 + len(spec.engines) + len(spec.tables) + len(spec.plots), log)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_not_actionable()  # "always" would bring back the warnings that ask nothing of the user
        steps.start("loading data")
        df, sim = spec.load_data()
        model = Model(spec.formula, df, family=spec.family, link=spec.link, priors=spec.priors or None,
                      na_action=spec.na_action, weights=spec.weights, offset=spec.offset)  # fmt: skip
        for engine in spec.engines:
            steps.start(f"fitting ({engine})")
            kwargs = spec.sampler_settings(fast) if engine == "bayes" else {}
            if engine == "bayes":
                kwargs.setdefault("progressbar", bars)
            result.fits[engine] = model.fit(engine, **kwargs)
        steps.start("intervals")
        result.intervals = _intervals(spec, result.fits, fast)
        tables = Section("Tables")
        for name in spec.tables:
            steps.start(f"table: {name}")
            _table(name, result, tables)
        if sim is not None:
            _recovery(sim, result, tables)
        figures = Section("Figures")
        for name in spec.plots:
            steps.start(f"plot: {name}")
            _plot(name, result, figures)
        steps.start("writing posterior and report")
        if "bayes" in result.fits:
            nc = out / "posterior.nc"
            result.fits["bayes"].idata.to_netcdf(str(nc))
            result.files.append(("posterior (netCDF)", nc))
    result.warnings = _unique(f"{w.category.__name__}: {w.message}" for w in caught)
    result.seconds = dict(steps.seconds)
    result.seconds["total"] = time.perf_counter() - t_start
    sections = [_methods_section(spec, model, result, fast), tables, figures]
    if result.warnings:
        sections.append(Section("Warnings").pre("\n".join(result.warnings)))
    writer, name = (write_html, "report.html") if spec.report == "html" else (write_markdown, "report.md")
    result.report = writer(out / name, spec.title, spec.description, sections)
    result.files.append(("report", result.report))
    steps.finish()
    if log:
        log(f"finished in {time.perf_counter() - t_start:.1f} s")
    return result


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on, for a methods section."""
    out = {"hierbayes": __version__, "Python": platform.python_version()}
    for pkg, label in (("numpy", "NumPy"), ("scipy", "SciPy"), ("pandas", "pandas"), ("pymc", "PyMC"),
                       ("pytensor", "PyTensor"), ("arviz", "ArviZ"), ("nutpie", "nutpie")):  # fmt: skip
        try:
            out[label] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _methods_section(spec: Spec, model: Model, result: RunResult, fast: bool) -> Section:
    """Everything a methods section needs: data, model, each engine's settings and convergence, software, time."""
    d = model.design
    s = Section("Methods")
    groups = ", ".join(f"{b.group} ({b.nlevels} levels)" for b in d.blocks)
    dropped = f"; {d.n_dropped} rows dropped for missing, infinite or empty values" if d.n_dropped else ""
    rows = [("Data", f"{_data_source(spec)}: {d.n} observations{dropped}; grouping factors: {groups}"),
            ("Model formula", f"`{spec.formula}`"),
            ("Family", f"{model.family.name}, {model.family.link.name} link")]  # fmt: skip
    if model.design.weights is not None:
        rows.append(("Prior weights", f"column `{spec.weights}`"))
    for engine, fit in result.fits.items():
        rows += _engine_rows(engine, fit, result)
    if fast:
        rows.append(("Note", "run with --fast: few draws, for a quick look only; not for reporting"))
    s.table(pd.DataFrame(rows, columns=["", "setting"]).set_index(""), "")
    if "bayes" in result.fits:
        priors = result.fits["bayes"].describe_priors()
        s.table(priors, "Priors (`describe_priors()`; 'default': hierbayes' weakly informative priors scaled to the "
                "data)")  # fmt: skip
    soft = ", ".join(f"{k} {v}" for k, v in versions().items())
    s.text(f"Software: {soft}.")
    per_step = "; ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if k != "total")
    s.text(f"Time taken: {result.seconds['total']:.1f} s ({per_step}).")
    return s


def _data_source(spec: Spec) -> str:
    d = spec.data
    if "dataset" in d:
        return f"data set `{d['dataset']}` (hierbayes.datasets)"
    if "path" in d:
        return f"file `{d['path']}`"
    return f"simulated (`hierbayes.simulate.{d['simulate']}`, {d.get('params', {})})"


def _engine_rows(engine: str, fit: MixedFit, result: RunResult) -> list[tuple[str, str]]:
    label = LABELS[engine]
    if engine == "bayes":
        i, dg = fit.info, fit.diagnostics
        how = "random effects integrated out while sampling, drawn afterwards" if i.marginalized else (
            "random effects sampled with the other parameters")  # fmt: skip
        sampler = "PyMC's NUTS" if i.sampler == "pymc" else f"NUTS ({i.sampler})"
        if getattr(i, "backend", "pymc") == "compiled":
            sampler = f"NUTS ({i.sampler}) on hierbayes' compiled marginal log-density"
        return [
            (f"{label}: estimation", f"Bayesian, posterior by MCMC: {sampler}, {i.sampler} {i.sampler_version}; {how}"),
            (f"{label}: chains, draws, tune", f"{i.chains} chains x {i.draws} draws after {i.tune} tuning steps"),
            (f"{label}: target_accept, seed", f"{i.target_accept:g}, {i.random_seed}"),
            (f"{label}: convergence",
             f"{dg.n_divergences} divergent transitions; max R-hat {dg.max_rhat:.3f}; min bulk ESS "
             f"{dg.min_ess_bulk:.0f}, min tail ESS {dg.min_ess_tail:.0f}"
             + ("" if not dg.problems() else " (NOT converged: see Warnings)")),
            (f"{label}: intervals", "posterior means and medians, equal-tailed 95% credible intervals"),
        ]  # fmt: skip
    what = {"reml": "restricted maximum likelihood (REML)", "ml": "maximum likelihood (ML)"}[engine]
    if hasattr(fit, "nAGQ"):
        agq = f"adaptive Gauss-Hermite quadrature, {fit.nAGQ} points"
        what += f", {'Laplace approximation' if fit.nAGQ <= 1 else agq}"
    rows = [(f"{label}: estimation", f"{what}, as lme4's {'glmer' if hasattr(fit, 'nAGQ') else 'lmer'}")]
    opts = fit.optinfo if isinstance(fit.optinfo, tuple) else (fit.optinfo,)
    for k, opt in enumerate(opts):
        stage = f" (stage {k + 1})" if len(opts) > 1 else ""
        status = "converged" if opt.converged else "did NOT converge"
        rows.append((f"{label}: optimizer{stage}", f"{opt.method}, {opt.feval} evaluations, {status}: {opt.message}"))
    conv = getattr(fit, "convergence", None)
    if conv is not None:
        grad = float(np.max(np.abs(conv.gradient))) if np.size(conv.gradient) else 0.0
        msgs = "; ".join(conv.messages) if conv.messages else "no convergence warnings"
        rows.append((f"{label}: convergence checks", f"max |gradient| {grad:.2g}; {msgs}"))
    if getattr(fit, "is_singular", False):
        rows.append((f"{label}: singular fit", "yes (a variance component at zero or a correlation at ±1)"))
    ci = result.intervals.get(label)
    how = ci.attrs.get("method", "Wald") if ci is not None else "Wald (fixed effects only)"
    rows.append((f"{label}: intervals", f"95% {how} confidence intervals"))
    return rows


def _save_table(result: RunResult, name: str, df: pd.DataFrame) -> None:
    path = result.out / "tables" / f"{name}.csv"
    df.to_csv(path, float_format=f"%.{CSV_DIGITS}g")
    result.files.append((f"table: {name}", path))


def _table(name: str, result: RunResult, section: Section) -> None:
    fits = result.fits
    freq = {k: f for k, f in fits.items() if k in ("reml", "ml")}
    try:
        if name == "summary":
            for engine, fit in fits.items():
                summary = fit.summary()
                if isinstance(summary, pd.DataFrame):
                    _save_table(result, f"summary_{engine}", summary)
                    section.table(summary, f"Posterior summary ({LABELS[engine]})")
                    continue
                path = result.out / "tables" / f"summary_{engine}.txt"
                path.write_text(f"{summary}\n")
                result.files.append((f"summary ({engine})", path))
                section.pre(str(summary))
        elif name == "compare":
            table = compare(*fits.values(), intervals=result.intervals, labels=result.labels)
            _save_table(result, "compare", table.frame)
            section.pre(str(table))
        elif name == "pooling":
            df = pooling(*fits.values())
            _save_table(result, "pooling", df)
            section.table(df.head(40), "Complete, no and partial pooling per group")
        elif name == "loo":
            if "bayes" in fits:
                section.pre(str(fits["bayes"].loo()))
        else:
            for engine, fit in freq.items():
                df = _freq_table(name, fit, result.intervals)
                if df is not None:
                    _save_table(result, f"{name}_{engine}", df)
                    section.table(df, f"{name} ({engine})")
    except HierbayesError as exc:
        section.text(f"{name}: not available for this model ({exc})")


def _freq_table(name: str, fit: Any, intervals: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    if name == "coef_table":
        return fit.coef_table()
    if name == "anova" and hasattr(fit, "anova"):
        return fit.anova()
    if name == "ranova" and hasattr(fit, "ranova"):
        return fit.ranova()
    if name == "confint":
        return intervals.get(LABELS[fit.method])
    if name == "icc" and hasattr(fit, "icc"):
        return fit.icc().to_frame()
    if name == "r2" and hasattr(fit, "r2"):
        r2 = fit.r2()
        return r2.to_frame() if isinstance(r2, pd.Series) else pd.DataFrame(r2)
    return None


def _recovery(sim: Simulation, result: RunResult, section: Section) -> None:
    rows = {"truth": pd.concat([sim.fixef, _vc_series(sim.varcorr)])}
    for engine, fit in result.fits.items():
        rows[engine] = pd.concat([fit.fixef, _vc_series(fit.varcorr)])
    df = pd.DataFrame(rows)
    _save_table(result, "recovery", df)
    section.table(df, "Simulated data: true parameters next to each engine's estimates")


def _vc_series(vc: pd.DataFrame) -> pd.Series:
    names = []
    for grp, v1, v2 in vc[["grp", "var1", "var2"]].itertuples(index=False):
        if grp == "Residual":
            names.append("sigma")
        elif isinstance(v2, str):
            names.append(f"cor[{grp}: {v1}, {v2}]")
        else:
            names.append(f"sd[{grp}: {v1}]")
    return pd.Series(vc["sdcor"].to_numpy(), index=names)


def _plot(name: str, result: RunResult, section: Section) -> None:
    from hierbayes import plots  # matplotlib only when plots are drawn: import hierbayes stays light

    fits = list(result.fits.values())
    kwargs: dict[str, Any] = {}
    if result.spec.group and name in ("shrinkage", "caterpillar", "pooling"):
        kwargs["group"] = result.spec.group
    if name == "forest":
        kwargs.update(intervals=result.intervals, labels=result.labels)
    try:
        fig = getattr(plots, name)(*fits, **kwargs)
    except HierbayesError as exc:
        section.text(f"{name} plot: not available for this model ({exc})")
        return
    path = result.out / "plots" / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    result.files.append((f"plot: {name}", path))
    section.figure(path, name)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
