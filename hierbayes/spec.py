"""Declarative analysis specs (TOML files in ``models/``): parsing and validation.

A spec names the data (a bundled dataset, a CSV file, or a simulation), the
model (formula, family, link, priors), the engines to run and what to
produce. The format is documented in ``models/README.md``. Validation errors
name the file, the key and what is allowed.

>>> from hierbayes.spec import load_spec
>>> spec = load_spec("models/sleepstudy.toml")  # doctest: +SKIP
>>> spec.formula  # doctest: +SKIP
'Reaction ~ Days + (Days | Subject)'
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hierbayes import datasets, simulate
from hierbayes.errors import HierbayesError
from hierbayes.families import get_family
from hierbayes.query import select_rows

ENGINES = ("reml", "ml", "bayes")
TABLES = ("summary", "compare", "coef_table", "anova", "ranova", "confint", "icc", "r2", "pooling", "loo")
PLOTS = ("shrinkage", "caterpillar", "pooling", "ppc", "diagnostics", "forest")
SIMULATIONS = {"longitudinal": simulate.longitudinal, "nested": simulate.nested, "crossed": simulate.crossed}

_SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("name", "title", "description", "data", "model", "fit", "bayes", "priors", "output"),
    "data": ("dataset", "path", "simulate", "params", "query", "factors"),
    "model": ("formula", "family", "link", "weights", "offset", "na_action"),
    "fit": ("engines", "confint", "nsim", "seed"),
    "bayes": ("draws", "tune", "chains", "seed", "target_accept", "sampler", "marginalize", "cores"),
    "output": ("tables", "plots", "report", "group"),
}
FAST_BAYES = {"draws": 200, "tune": 200, "chains": 2}


class SpecError(HierbayesError, ValueError):
    """A spec file that cannot be run as written."""


@dataclass(frozen=True)
class Spec:
    """A validated analysis spec.

    Attributes
    ----------
    path
        Where the spec was read from.
    name, title, description
        Identification for the report.
    data
        The ``[data]`` table: one of ``dataset``, ``path`` or ``simulate``.
    formula, family, link
        The model.
    engines
        Which of ``reml``, ``ml``, ``bayes`` to run.
    bayes
        Sampler settings for the Bayesian fit.
    priors
        Prior overrides by parameter name.
    tables, plots
        What the run produces.
    """

    path: Path
    name: str
    title: str
    description: str
    data: dict[str, Any]
    formula: str
    family: str = "gaussian"
    link: str | None = None
    weights: str | None = None
    offset: str | None = None
    na_action: str = "omit"
    engines: tuple[str, ...] = ("reml", "bayes")
    fit: dict[str, Any] = field(default_factory=dict)
    bayes: dict[str, Any] = field(default_factory=dict)
    priors: dict[str, Any] = field(default_factory=dict)
    tables: tuple[str, ...] = ("summary", "compare")
    plots: tuple[str, ...] = ("caterpillar",)
    report: str = "markdown"
    group: str | None = None

    def load_data(self) -> tuple[pd.DataFrame, simulate.Simulation | None]:
        """The data frame the spec names, and the simulation truth when simulated."""
        d = self.data
        where = str(self.path)
        sim = None
        if "dataset" in d:
            df = datasets.load(d["dataset"])
        elif "path" in d:
            df = _read_csv(self.path.parent / d["path"], where)
        else:
            try:
                sim = SIMULATIONS[d["simulate"]](**d.get("params", {}))
            except TypeError as exc:  # a parameter the simulation does not take
                raise SpecError(f"{where}: [data] params: {exc}") from None
            df = sim.data
        for col in d.get("factors", []):
            if col not in df.columns:
                raise SpecError(f"{where}: [data] factors names '{col}', which the data does not have "
                                f"(columns: {', '.join(map(str, df.columns))})")  # fmt: skip
            df[col] = df[col].astype(str)
        if "query" in d:
            try:
                keep = select_rows(df, d["query"], "query")
            except HierbayesError as exc:
                raise SpecError(f"{where}: [data] {str(exc).splitlines()[0]}") from None
            if not keep.any():
                raise SpecError(f"{where}: [data] query {d['query']!r} selects none of the {len(df)} rows")
            df = df.loc[keep].reset_index(drop=True)
        return df, sim

    def sampler_settings(self, fast: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``fit("bayes")`` (fewer draws with ``fast``)."""
        out = {k: v for k, v in self.bayes.items() if k != "seed"}
        if "seed" in self.bayes:
            out["random_seed"] = self.bayes["seed"]
        if fast:
            out.update({k: min(v, out.get(k, v)) for k, v in FAST_BAYES.items()})
        return out


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file.

    Raises
    ------
    SpecError
        Naming the file and the offending key or value.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no spec file at {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    where = str(path)
    _check_keys(raw, "", where)
    for section in ("data", "model", "fit", "bayes", "output"):
        if section in raw:
            if not isinstance(raw[section], dict):
                raise SpecError(f"{where}: [{section}] must be a table")
            _check_keys(raw[section], section, where)
    for required in ("data", "model"):
        if required not in raw:
            raise SpecError(f"{where}: missing the [{required}] table")
    model = raw["model"]
    if "formula" not in model:
        raise SpecError(f'{where}: [model] needs a formula, e.g. formula = "y ~ x + (1 | g)"')
    try:
        get_family(model.get("family", "gaussian"), model.get("link"))
    except HierbayesError as exc:
        raise SpecError(f"{where}: [model] {exc}") from exc
    _check_data(raw["data"], path)
    _check_bayes(raw.get("bayes", {}), where)
    fit = raw.get("fit", {})
    engines = tuple(fit.get("engines", ("reml", "bayes")))
    _check_choice(engines, ENGINES, "[fit] engines", where)
    output = raw.get("output", {})
    tables = tuple(output.get("tables", ("summary", "compare")))
    plots = tuple(output.get("plots", ("caterpillar",)))
    _check_choice(tables, TABLES, "[output] tables", where)
    _check_choice(plots, PLOTS, "[output] plots", where)
    report = output.get("report", "markdown")
    if report not in ("markdown", "html"):
        raise SpecError(f'{where}: [output] report must be "markdown" or "html", not {report!r}')
    for key in ("weights", "offset"):
        if key in model and not (isinstance(model[key], str) and model[key].strip()):
            raise SpecError(
                f'{where}: [model] {key} must be a column name or an expression of columns such as "log(expo)", '
                f"not {model[key]!r}"
            )
    return Spec(
        path=path,
        name=raw.get("name", path.stem),
        title=raw.get("title", raw.get("name", path.stem)),
        description=raw.get("description", ""),
        data=raw["data"],
        formula=model["formula"],
        family=model.get("family", "gaussian"),
        link=model.get("link"),
        weights=model.get("weights"),
        offset=model.get("offset"),
        na_action=model.get("na_action", "omit"),
        engines=engines,
        fit=fit,
        bayes=raw.get("bayes", {}),
        priors=raw.get("priors", {}),
        tables=tables,
        plots=plots,
        report=report,
        group=output.get("group"),
    )


def _check_keys(table: dict, section: str, where: str) -> None:
    allowed = _SCHEMA[section]
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            label = f"[{section}]" if section else "the top level"
            raise SpecError(f"{where}: unknown key '{key}' in {label}{hint} (allowed: {', '.join(allowed)})")


def _check_choice(values: tuple, allowed: tuple, label: str, where: str) -> None:
    for v in values:
        if v not in allowed:
            close = difflib.get_close_matches(str(v), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SpecError(f"{where}: {label} has '{v}'{hint} (choose from {', '.join(allowed)})")


#: [bayes] settings: (type, smallest allowed, whether the smallest is excluded)
_BAYES_NUMBERS = {"draws": (int, 1, False), "tune": (int, 0, False), "chains": (int, 1, False),
                  "cores": (int, 1, False), "seed": (int, 0, False), "target_accept": (float, 0.0, True)}  # fmt: skip


def _check_bayes(bayes: dict, where: str) -> None:
    """Sampler settings are checked when the spec is read, before anything is fitted."""
    for key, (kind, low, strict) in _BAYES_NUMBERS.items():
        if key not in bayes:
            continue
        v = bayes[key]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or float(v).is_integer())
        if ok and (v <= low if strict else v < low):
            ok = False
        if ok and key == "target_accept" and not v < 1:
            ok = False
        if not ok:
            rule = "a number strictly between 0 and 1" if key == "target_accept" else f"a whole number >= {low}"
            raise SpecError(f"{where}: [bayes] {key} must be {rule}, not {v!r}")


def _read_csv(path: Path, where: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise SpecError(f"{where}: [data] path {path} could not be read as CSV ({type(exc).__name__}: {exc})") from None


def _check_data(data: dict, path: Path) -> None:
    where = str(path)
    sources = [k for k in ("dataset", "path", "simulate") if k in data]
    if len(sources) != 1:
        raise SpecError(f"{where}: [data] needs exactly one of dataset, path or simulate (found {sources or 'none'})")
    if "dataset" in data and data["dataset"] not in datasets.names():
        raise SpecError(f"{where}: unknown dataset '{data['dataset']}' (bundled: {', '.join(datasets.names())})")
    if "path" in data and not (path.parent / data["path"]).is_file():
        raise SpecError(f"{where}: data file {path.parent / data['path']} does not exist")
    if "simulate" in data and data["simulate"] not in SIMULATIONS:
        raise SpecError(f"{where}: unknown simulation '{data['simulate']}' (choose from {', '.join(SIMULATIONS)})")
    if "query" in data and not isinstance(data["query"], str):
        raise SpecError(f'{where}: [data] query must be a condition such as "Days >= 2", not {data["query"]!r}')
    if "factors" in data and not (
        isinstance(data["factors"], list) and all(isinstance(f, str) for f in data["factors"])
    ):
        raise SpecError(f"{where}: [data] factors must be a list of column names, not {data['factors']!r}")
