"""The external suite's data, reference numbers, fits and comparisons.

The cases, their data and lme4's numbers come from
``tests/reference/make_external.R`` (see ``tests/reference/external/``).
Nothing here runs R.

* :func:`load_dataset` reads a CSV with the column types its JSON schema
  records (R factors become pandas ``Categorical`` with R's level order,
  ordered factors ordered ones), or, with ``raw=True``, as
  ``pandas.read_csv`` reads it, as a user who never saw the schema would.
* :func:`fit_case` fits a case with ``hb.lmer``/``hb.glmer``, formula spelled
  as in R.
* :func:`compare` lists every way the fit differs from lme4's tightly
  converged fit (empty: it matches).

Tolerances (relative to lme4's tightly converged refit, ``case["tight"]``):

=========================  ==================================================
criterion                  1e-8 relative (REML criterion, ML deviance,
                           -2 logLik of a GLMM)
fixef                      1e-6 x max(|estimate|, SE)
theta                      1e-5 x max(1, |theta|)
sigma                      1e-5 relative
SE (lmer)                  1e-5 relative (sigma^2 R_X^-1: exact in both)
SE (glmer)                 1e-4 relative, against ``tight["se_smooth"]`` where
                           make_external.R could make it: SEs from a Hessian
                           with steps of 0.5 and 1 SE and Richardson
                           extrapolation. lme4's own ``vcov`` (``tight["se"]``,
                           used where there is no ``se_smooth``) differences
                           with steps of 1e-4, where lme4's deviance does not
                           re-converge the modes: its SEs are off by up to 9e-4
                           (Salamanders), 3e-4 (Arabidopsis), 1e-4 (prLogistic)
VarCorr sd/cor             1e-5 x max(1, |value|) (functions of theta, sigma)
conditional modes          1e-4 x max(|value|, max |column|)
fitted values (first 6)    1e-6 x max(|value|, mean |value|)
Satterthwaite df           1e-3 relative (lmerTest differentiates numerically)
=========================  ==================================================

No tolerance is tighter than 10 times what the reference itself supports:
``case["tight_spread"]`` records how far the best tight refit of the other
optimizer route ended from the best one (criterion, theta, fixef, sigma, SE);
theta's spread also widens VarCorr and the conditional modes, fixef's the
fitted values. A case
can loosen a tolerance further in ``cases.py`` only with a stated reason.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hierbayes as hb

ROOT = Path(__file__).resolve().parents[2]
#: The CSVs hold R's 17-digit doubles: read them back exactly. pandas 3.1's C parser always converts
#: round-trip exactly (and deprecates ``float_precision``); older pandas needs ``float_precision="round_trip"``.
ROUND_TRIP: dict[str, str] = (
    {} if tuple(int(p) for p in pd.__version__.split(".")[:2]) >= (3, 1) else {"float_precision": "round_trip"}
)
EXTERNAL = ROOT / "tests" / "reference" / "external"
DATA = EXTERNAL / "data"


@cache
def reference() -> dict:
    """``tests/reference/external/external_reference.json``."""
    with open(EXTERNAL / "external_reference.json") as fh:
        return json.load(fh)


def cases() -> dict[str, dict]:
    return reference()["cases"]


@cache
def schema(name: str) -> dict:
    with open(DATA / f"{name}.json") as fh:
        return json.load(fh)


def load_dataset(name: str, raw: bool = False) -> pd.DataFrame:
    """A data set of the suite, typed by its schema (``raw=False``) or as ``pd.read_csv`` reads it."""
    return _load(name, raw).copy()


@cache
def _load(name: str, raw: bool) -> pd.DataFrame:
    sch = schema(name)
    path = DATA / sch["file"]
    if raw:
        return pd.read_csv(path)
    dtype: dict[str, Any] = {}
    for col in sch["columns"]:
        if col["class"] in ("factor", "ordered", "character"):
            dtype[col["name"]] = str
    df = pd.read_csv(path, dtype=dtype, na_values=["NA"], keep_default_na=False, **ROUND_TRIP)
    for col in sch["columns"]:
        name_, cls = col["name"], col["class"]
        x = df[name_]
        if cls in ("factor", "ordered"):
            df[name_] = pd.Categorical(x, categories=col["levels"], ordered=cls == "ordered")
        elif cls == "integer":
            df[name_] = x.astype("int64") if not x.isna().any() else x.astype(float)
        elif cls == "numeric":
            df[name_] = x.astype(float)
        elif cls == "logical":
            if x.isna().any():
                df[name_] = x.astype(object)
            else:
                df[name_] = x.map({True: True, False: False, "TRUE": True, "FALSE": False}).astype(bool)
    if len(df) != sch["nrow"]:
        raise AssertionError(f"{name}: {len(df)} rows read, schema says {sch['nrow']}")
    return df


@dataclass(frozen=True)
class Tolerances:
    criterion: float = 1e-8
    fixef: float = 1e-6
    theta: float = 1e-5
    sigma: float = 1e-5
    se_lmer: float = 1e-5
    se_glmer: float = 1e-4
    varcorr: float = 1e-5
    ranef: float = 1e-4
    fitted: float = 1e-6
    df: float = 1e-3

    def widened(self, case: dict) -> Tolerances:
        """Never tighter than 10x the spread of lme4's two tight routes."""
        spread = case.get("tight_spread") or {}
        crit = case["tight"]["criterion"]
        out = dict(self.__dict__)
        if spread:  # max() keeps an infinite (not compared) tolerance infinite
            out["criterion"] = max(self.criterion, 10 * abs(spread.get("criterion") or 0) / max(1.0, abs(crit)))
            out["theta"] = max(self.theta, 10 * (spread.get("theta") or 0))
            out["fixef"] = max(self.fixef, 10 * (spread.get("fixef_rel") or 0))
            out["sigma"] = max(self.sigma, 10 * (spread.get("sigma_rel") or 0))
            out["varcorr"] = max(self.varcorr, 10 * (spread.get("theta") or 0))
            out["ranef"] = max(self.ranef, 10 * (spread.get("theta") or 0))
            out["se_lmer"] = max(self.se_lmer, 10 * (spread.get("se_rel") or 0))
            smooth = bool(case["tight"].get("se_smooth"))
            se_spread = spread.get("se_smooth_rel") if smooth else spread.get("se_rel")
            out["se_glmer"] = max(self.se_glmer, 10 * (se_spread or 0))
            out["fitted"] = max(self.fitted, 10 * (spread.get("fixef_rel") or 0))
        return Tolerances(**out)


@dataclass
class CaseOptions:
    """Python-side details of a case (``cases.py``)."""

    python_args: Callable[[pd.DataFrame], dict] | None = None  # e.g. an offset computed from the data
    tolerances: dict[str, float] = field(default_factory=dict)  # loosened, with `reason`
    reason: str | None = None

    def tolerance(self) -> Tolerances:
        return Tolerances(**self.tolerances)


def python_args(case: dict, data: pd.DataFrame, opts: CaseOptions | None) -> dict:
    """Keyword arguments for hb.lmer/hb.glmer, from R's call."""
    kw: dict[str, Any] = {}
    if case["fn"] == "lmer":
        kw["reml"] = bool(case["REML"])
    else:
        kw["family"] = case["family"]
        kw["link"] = case["link"]
        kw["nAGQ"] = int(case["nAGQ"])
    r_args = case.get("args") or {}
    if "weights" in r_args:
        kw["weights"] = r_args["weights"]  # a column name, as lme4 evaluates it in the data
    if opts is not None and opts.python_args is not None:
        kw.update(opts.python_args(data))
    missing = set(r_args) - set(kw)
    if missing:
        raise AssertionError(f"{case['id']}: R arguments {sorted(missing)} have no Python translation in cases.py")
    return kw


def fit_case(case: dict, opts: CaseOptions | None = None, data: pd.DataFrame | None = None):
    """Fit a case as a user would: its data, its R formula, lme4's arguments."""
    if data is None:
        data = load_dataset(case["dataset"], raw=case["loader"] == "raw")
    kw = python_args(case, data, opts)
    fn = hb.lmer if case["fn"] == "lmer" else hb.glmer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        return fn(case["formula"], data, **kw)


def criterion(fit, case: dict) -> float:
    """The number lme4 optimises: REML criterion, ML deviance, or the GLMM's -2 logLik."""
    if case["fn"] == "lmer":
        return float(fit.reml_criterion if case["REML"] else fit.deviance)
    return float(-2 * fit.loglik)


def _close(a: float, d: float, tol: float) -> bool:
    return bool(np.isfinite(a)) and abs(a - d) <= tol


def compare(case: dict, fit, tol: Tolerances | None = None) -> list[str]:
    """Every difference between the fit and lme4's tight fit, as readable lines (empty: match)."""
    ref = case["tight"]
    tol = (tol or Tolerances()).widened(case)
    out: list[str] = []

    crit = criterion(fit, case)
    if not _close(crit, ref["criterion"], tol.criterion * max(1.0, abs(ref["criterion"]))):
        out.append(
            f"criterion {crit:.10g} vs lme4 {ref['criterion']:.10g} "
            f"(diff {crit - ref['criterion']:.3g}, {ref['criterion_name']})"
        )
    if not _close(float(fit.loglik), ref["logLik"], tol.criterion * max(1.0, abs(ref["logLik"])) * 2):
        out.append(f"logLik {float(fit.loglik):.10g} vs lme4 {ref['logLik']:.10g}")
    if int(fit.nobs) != int(ref["nobs"]):
        out.append(f"nobs {int(fit.nobs)} vs lme4 {ref['nobs']}")

    # fixed effects: names (R's column names, dropped columns absent) and values
    fe = fit.fixef
    rfe = pd.Series(ref["fixef"], dtype=float)
    rse = pd.Series(ref["se"], dtype=float)
    smooth = case["fn"] == "glmer" and bool(ref.get("se_smooth"))
    if smooth:
        rse = pd.Series(ref["se_smooth"], dtype=float)
    if list(fe.index) != list(rfe.index):
        out.append(f"fixef names {list(fe.index)} vs lme4 {list(rfe.index)}")
    else:
        se = np.sqrt(np.diag(fit.vcov.to_numpy()))
        se_tol = tol.se_lmer if case["fn"] == "lmer" else tol.se_glmer
        for i, name in enumerate(rfe.index):
            d, a = rfe[name], float(fe.iloc[i])
            if not _close(a, d, tol.fixef * max(abs(d), rse[name])):
                out.append(f"fixef[{name}] {a:.10g} vs lme4 {d:.10g} ({(a - d) / rse[name]:.2g} SE)")
            if not _close(float(se[i]), rse[name], se_tol * rse[name]):
                out.append(f"SE[{name}] {se[i]:.8g} vs lme4 {rse[name]:.8g}")

    # theta: lme4's order; names compared too
    # theta: values matched by name; lme4's order matters too (start= is positional)
    th = fit.theta
    rth = pd.Series(ref["theta"], dtype=float)
    if len(th) != len(rth):
        out.append(f"theta has {len(th)} elements {list(th.index)} vs lme4 {len(rth)} {list(rth.index)}")
    else:
        by_name = sorted(th.index) == sorted(rth.index) and th.index.is_unique
        if list(th.index) != list(rth.index):
            out.append(f"theta order/names {list(th.index)} vs lme4 {list(rth.index)}")
        for i, name in enumerate(rth.index):
            a, d = float(th[name] if by_name else th.iloc[i]), rth[name]
            if not _close(a, d, tol.theta * max(1.0, abs(d))):
                out.append(f"theta[{name}] {a:.8g} vs lme4 {d:.8g}")

    if case["fn"] == "lmer":
        s = float(fit.sigma)
        if not _close(s, ref["sigma"], tol.sigma * ref["sigma"]):
            out.append(f"sigma {s:.10g} vs lme4 {ref['sigma']:.10g}")

    out += _compare_varcorr(fit, ref, tol)
    out += _compare_ranef(fit, ref, tol)

    # conditional fitted values: identified even where theta is not (overparameterised models)
    head = np.asarray(fit.fitted, dtype=float)[: len(ref["fitted_head"])]
    rhead = np.array(ref["fitted_head"], dtype=float)
    scale = max(float(np.abs(rhead).mean()), 1e-300)
    bad = ~(np.abs(head - rhead) <= tol.fitted * np.maximum(np.abs(rhead), scale))
    if bad.any():
        out.append(f"fitted[:{len(rhead)}] {head} vs lme4 {rhead}")

    ngrps = {str(k): int(v) for k, v in ref["ngrps"].items()}
    ours = {b.group: len(b.levels) for b in fit.design.blocks}
    for g, n in ngrps.items():
        if g in ours and ours[g] != n:
            out.append(f"ngrps[{g}] {ours[g]} vs lme4 {n}")

    if out and not out[0].startswith("criterion"):
        # not a problem in itself: tells a flat optimum (same criterion) from one stopped short
        out.insert(
            0,
            f"(criterion {crit:.12g}, lme4 {ref['criterion']:.12g}: hierbayes - lme4 = {crit - ref['criterion']:.3g})",
        )
    df_ref = ref.get("satterthwaite_df")
    if df_ref and not out:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hb.HierbayesWarning)
            table = fit.coef_table()
        for name, d in df_ref.items():
            a = float(table.loc[name, "df"]) if name in table.index else math.nan
            if not _close(a, d, tol.df * d):
                out.append(f"Satterthwaite df[{name}] {a:.6g} vs lmerTest {d:.6g}")
    return out


def _key(row: dict) -> tuple:
    return (row["grp"], row.get("var1") or None, row.get("var2") or None)


def _compare_varcorr(fit, ref: dict, tol: Tolerances) -> list[str]:
    out: list[str] = []
    ours = {}
    for row in fit.varcorr.to_dict("records"):
        clean = {k: (None if (v is None or (isinstance(v, float) and math.isnan(v))) else v) for k, v in row.items()}
        ours[_key(clean)] = float(clean["sdcor"])
    theirs = {_key(r): float(r["sdcor"]) for r in ref["varcorr"]}
    if set(ours) != set(theirs):
        out.append(f"VarCorr rows {sorted(map(str, ours))} vs lme4 {sorted(map(str, theirs))}")
        return out
    for k, d in theirs.items():
        if not _close(ours[k], d, tol.varcorr * max(1.0, abs(d))):
            out.append(f"VarCorr{k} sdcor {ours[k]:.8g} vs lme4 {d:.8g}")
    return out


def _compare_ranef(fit, ref: dict, tol: Tolerances) -> list[str]:
    out: list[str] = []
    ours = fit.ranef
    for g, r in ref["ranef_head"].items():
        if g not in ours:
            out.append(f"ranef: no factor {g!r} (have {list(ours)})")
            continue
        frame = ours[g]
        terms = list(r["terms"])
        if list(frame.columns) != terms:
            out.append(f"ranef[{g}] terms {list(frame.columns)} vs lme4 {terms}")
            continue
        idx = [str(x) for x in frame.index]
        values = np.array(r["values"], dtype=float)
        scale = np.abs(frame.to_numpy(dtype=float)).max(axis=0) if len(frame) else np.ones(len(terms))
        for lev, row in zip(r["levels"], values, strict=True):
            if lev not in idx:
                out.append(f"ranef[{g}] has no level {lev!r} (first levels {idx[:5]})")
                continue
            a = frame.iloc[idx.index(lev)].to_numpy(dtype=float)
            # a term with zero variance has modes of 0 (lme4: ~1e-17, hierbayes: ~1e-12): the floor
            # is relative to the factor's largest mode
            floor = 1e-9 * max(1.0, float(np.abs(frame.to_numpy(dtype=float)).max()))
            bad = ~(np.abs(a - row) <= tol.ranef * np.maximum(np.abs(row), scale) + floor)
            if bad.any():
                out.append(f"ranef[{g}][{lev}] {a} vs lme4 {row}")
    return out
