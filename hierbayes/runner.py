"""Run a spec: fit every engine, make the tables and plots, save the posterior, write the report.

``run_spec`` is what ``hierbayes run`` calls; it can be used from Python too:

>>> from hierbayes.spec import load_spec
>>> from hierbayes.runner import run_spec
>>> result = run_spec(load_spec("models/sleepstudy.toml"), "results/sleepstudy", fast=True)  # doctest: +SKIP
>>> [label for label, _ in result.files]  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from hierbayes.errors import HierbayesError
from hierbayes.fits.base import MixedFit
from hierbayes.model import Model
from hierbayes.report import Section, write_html, write_markdown
from hierbayes.simulate import Simulation
from hierbayes.spec import Spec
from hierbayes.tables import compare, pooling


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

    @property
    def labels(self) -> list[str]:
        """Column labels of the fits in tables and plots (REML, ML, Bayes)."""
        return [LABELS[e] for e in self.fits]


LABELS = {"reml": "REML", "ml": "ML", "bayes": "Bayes"}
#: Profile intervals for REML/ML fits up to this many observations (Wald beyond, unless the spec says).
PROFILE_MAX_NOBS = 20_000


def _intervals(spec: Spec, fits: dict[str, MixedFit], fast: bool) -> dict[str, pd.DataFrame]:
    """Confidence intervals of the frequentist fits, computed once for tables and plots."""
    out = {}
    for engine, fit in fits.items():
        if engine == "bayes" or not hasattr(fit, "confint"):
            continue
        method = spec.fit.get("confint") or ("profile" if fit.nobs <= PROFILE_MAX_NOBS else "wald")
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


def run_spec(spec: Spec, out: str | Path, fast: bool = False, progress: bool | None = None) -> RunResult:
    """Execute a spec and write everything under ``out``.

    Parameters
    ----------
    spec
        A validated spec (:func:`hierbayes.spec.load_spec`).
    out
        Output directory (created).
    fast
        Few draws for a quick look (at most 200 draws and tune, 2 chains).
    progress
        Progress bars; by default when writing to a terminal.
    """
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    result = RunResult(spec=spec, out=out)
    steps = len(spec.engines) + len(spec.tables) + len(spec.plots) + 1
    with warnings.catch_warnings(record=True) as caught, tqdm(total=steps, disable=not progress, unit="step") as bar:
        warnings.simplefilter("always")
        # ArviZ announces its coming 1.0 refactor on import: news about a dependency, not about this analysis
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
        bar.set_description("loading data")
        df, sim = spec.load_data()
        model = Model(spec.formula, df, family=spec.family, link=spec.link, priors=spec.priors or None,
                      na_action=spec.na_action, weights=spec.weights, offset=spec.offset)  # fmt: skip
        for engine in spec.engines:
            bar.set_description(f"fitting ({engine})")
            kwargs = spec.sampler_settings(fast) if engine == "bayes" else {}
            if engine == "bayes":
                kwargs.setdefault("progressbar", progress)
            result.fits[engine] = model.fit(engine, **kwargs)
            bar.update()
        bar.set_description("intervals")
        result.intervals = _intervals(spec, result.fits, fast)
        sections = [_model_section(spec, model)]
        tables = Section("Tables")
        for name in spec.tables:
            bar.set_description(f"table: {name}")
            _table(name, result, tables)
            bar.update()
        if sim is not None:
            _recovery(sim, result, tables)
        sections.append(tables)
        figures = Section("Figures")
        for name in spec.plots:
            bar.set_description(f"plot: {name}")
            _plot(name, result, figures)
            bar.update()
        sections.append(figures)
        bar.set_description("writing report")
        if "bayes" in result.fits:
            nc = out / "posterior.nc"
            result.fits["bayes"].idata.to_netcdf(str(nc))
            result.files.append(("posterior (netCDF)", nc))
        bar.update()
    result.warnings = _unique(f"{w.category.__name__}: {w.message}" for w in caught)
    if result.warnings:
        sections.append(Section("Warnings").pre("\n".join(result.warnings)))
    writer, name = (write_html, "report.html") if spec.report == "html" else (write_markdown, "report.md")
    result.report = writer(out / name, spec.title, spec.description, sections)
    result.files.append(("report", result.report))
    return result


def _model_section(spec: Spec, model: Model) -> Section:
    d = model.design
    s = Section("Model")
    s.text(f"Formula: `{spec.formula}` ({model.family.name}, {model.family.link.name} link)")
    groups = ", ".join(f"{b.group} ({b.nlevels} levels)" for b in d.blocks)
    s.text(f"{d.n} observations; grouping factors: {groups}; engines: {', '.join(spec.engines)}.")
    if d.n_dropped:
        s.text(f"{d.n_dropped} rows were dropped for missing, infinite or empty values.")
    return s


def _save_table(result: RunResult, name: str, df: pd.DataFrame) -> None:
    path = result.out / "tables" / f"{name}.csv"
    df.to_csv(path)
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
