"""glmer families (issue 22): hierbayes against lme4 and glmmTMB on the same models, measured in one run.

Cases (data from tests/reference, see its README):

* grouseticks ``TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)``, negative binomial with theta
  estimated: ``hb.glmer_nb`` vs ``lme4::glmer.nb`` (default settings) vs ``glmmTMB(family = nbinom2)``;
* nb_sim ``z ~ x + (1 | f)`` (lme4's tests/nbinom.R), the same three;
* glmmExt.R's Gamma/log ``y_log ~ x + (1 | block)`` (2,600 rows): ``hb.glmer`` vs ``glmer(Gamma("log"))``
  (which maximises another function: docs/families.md) vs ``glmmTMB(family = Gamma("log"))``
  (the same Laplace maximum as hierbayes).

Times are whole fits (warm: median of the repetitions after the first); -2 logLik is printed
beside them (hierbayes' and glmmTMB's are the Laplace maximum; lme4's NB equals it to ~1e-6,
its Gamma is another function). Ratios are R's time over hierbayes' (> 1: hierbayes faster).

Bayesian ordinal rows (``--bayes-ordinal``): ``ordinal::wine``'s ``rating ~ temp + contact + (1 | judge)``
as a cumulative logit model in ``hb.bayes`` (PyMC's NUTS and nutpie) and in bambi 0.21 (its default
PyMC NUTS and ``inference_method="nutpie"``), the same priors in both (tests/bayesian/test_ordinal.py's
``WINE_PRIORS``) and 4 chains x 1000 draws after 1000 tuning. Printed: posterior means, wall time of
the whole fit call, minimum bulk ESS over the thresholds, coefficients and the judge SD, and ESS/s
(that ESS over the wall time), warm (after one cold run of each).

Run: ``python benchmarks/bench_families.py [--quick] [--no-r] [--bayes-ordinal]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _common import fmt_s, have_r, run_python, run_r, table

#: name -> (python data code, python fit call, R data code, lme4 call, glmmTMB call)
CASES = {
    "grouseticks NB": (
        'df = hb.datasets.load("grouseticks")',
        'hb.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", df)',
        'df <- read.csv("hierbayes/datasets/data/grouseticks.csv"); '
        'for (f in c("BROOD", "YEAR", "LOCATION")) df[[f]] <- factor(df[[f]])',
        "glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), df)",
        "glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), df, family = nbinom2)",
    ),
    "nb_sim NB": (
        'df = pd.read_csv("tests/reference/data/nb_sim.csv"); df["f"] = df["f"].astype("category")',
        'hb.glmer_nb("z ~ x + (1 | f)", df)',
        'df <- read.csv("tests/reference/data/nb_sim.csv"); df$f <- factor(df$f)',
        "glmer.nb(z ~ x + (1 | f), df)",
        "glmmTMB(z ~ x + (1 | f), df, family = nbinom2)",
    ),
    "glmmExt Gamma log": (
        'df = pd.read_csv("tests/reference/data/glmmext_gamma.csv")',
        'hb.glmer("y_log ~ x + (1 | block)", df, family="Gamma", link="log")',
        'df <- read.csv("tests/reference/data/glmmext_gamma.csv"); df$block <- factor(df$block)',
        'glmer(y_log ~ x + (1 | block), df, family = Gamma("log"))',
        'glmmTMB(y_log ~ x + (1 | block), df, family = Gamma("log"))',
    ),
}


def hierbayes_case(data: str, call: str, reps: int) -> dict:
    code = f"""
import time, statistics, warnings
import pandas as pd
import hierbayes as hb
import hierbayes.glmm
{data}
times = []
for i in range({reps} + 1):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = {call}
    times.append(time.perf_counter() - t)
__result.update(cold=times[0], warm=statistics.median(times[1:]), m2ll=fit.deviance)
"""
    return run_python(code)


def r_case(data: str, call: str, reps: int, package: str) -> dict:
    code = f"""
suppressMessages(library({package}))
{data}
fit <- function() suppressWarnings({call})
t0 <- system.time(m <- fit())[["elapsed"]]
ts <- replicate({reps}, system.time(m <- fit())[["elapsed"]])
result <- list(cold = t0, warm = median(ts), m2ll = -2 * as.numeric(logLik(m)))
"""
    return run_r(code)


def ordinal_fit(library: str, sampler: str, seed: int) -> dict:
    """One fit of the wine cumulative model: posterior means, wall time, min bulk ESS."""
    import logging
    import warnings

    from arviz_stats import ess

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    import hierbayes as hb
    from tests.bayesian.test_ordinal import wine_priors_bambi, wine_priors_hierbayes  # the shared priors

    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    wine = hb.datasets.load("wine")  # factors as categoricals, the rating ordered
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2, "random_seed": seed, "progressbar": False}
    formula = "rating ~ temp + contact + (1 | judge)"
    t = time.perf_counter()
    if library == "hierbayes":
        fit = hb.bayes(formula, wine, family="cumulative", priors=wine_priors_hierbayes(), sampler=sampler,
                       warn=False, **settings)  # fmt: skip
        wall = time.perf_counter() - t
        post = fit.posterior
        flat = {**{f"threshold[{j}]": post["threshold"].isel(threshold_dim=j) for j in range(4)},
                "temp": post["beta"].sel(fixef="tempwarm"), "contact": post["beta"].sel(fixef="contactyes"),
                "judge SD": post["sd__judge"].isel(judge__term=0)}  # fmt: skip
    else:
        import bambi as bmb

        model = bmb.Model(formula, wine, family="cumulative", priors=wine_priors_bambi())
        idata = model.fit(inference_method=sampler, **settings)
        wall = time.perf_counter() - t
        post = idata["posterior"].to_dataset()
        flat = {**{f"threshold[{j}]": post["threshold"].isel(threshold_dim=j) for j in range(4)},
                "temp": post["temp"].squeeze(drop=True), "contact": post["contact"].squeeze(drop=True),
                "judge SD": post["1|judge_sigma"].squeeze(drop=True)}  # fmt: skip
    import xarray as xr

    ds = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in ("chain", "draw")]) for k, v in flat.items()})
    bulk = ess(ds, method="bulk")
    means = {k: float(v.mean()) for k, v in flat.items()}
    return {"wall": wall, "ess": float(min(float(bulk[k]) for k in flat)), "means": means}


def bench_ordinal(reps: int) -> None:
    """The Bayesian ordinal rows: hierbayes vs bambi on the wine cumulative model, measured in this run."""
    import numpy as np

    runs = {}
    for library, sampler in (("hierbayes", "pymc"), ("hierbayes", "nutpie"), ("bambi", "pymc"), ("bambi", "nutpie")):
        label = f"{library} {sampler}"
        ordinal_fit(library, sampler, 0)  # cold: compiles
        runs[label] = [ordinal_fit(library, sampler, 1 + r) for r in range(reps)]
        print(f"  {label}: done (load {os.getloadavg()[0]:.1f})", flush=True)
    names = list(runs["hierbayes pymc"][0]["means"])
    rows = []
    for label, warm in runs.items():
        wall = float(np.median([w["wall"] for w in warm]))
        ess_ = float(np.median([w["ess"] for w in warm]))
        rate = float(np.median([w["ess"] / w["wall"] for w in warm]))
        means = [f"{np.mean([w['means'][n] for w in warm]):.3f}" for n in names]
        rows.append([label, fmt_s(wall), f"{ess_:.0f}", f"{rate:.1f}", *means])
    print(table(rows, ["fit", "warm", "min bulk ESS", "ESS/s", *names]))
    rate = {r[0]: float(r[3]) for r in rows}
    print(f"ESS/s hierbayes / bambi: {rate['hierbayes pymc'] / rate['bambi pymc']:.2f}x (PyMC NUTS both), "
          f"{rate['hierbayes nutpie'] / rate['bambi nutpie']:.2f}x (nutpie both)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--bayes-ordinal", action="store_true", help="only the Bayesian ordinal rows (vs bambi)")
    args = ap.parse_args()
    if args.bayes_ordinal:
        print(f"load average: {os.getloadavg()[0]:.1f}")
        bench_ordinal(1 if args.quick else 2)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return
    reps = 2 if args.quick else 5
    use_r = not args.no_r and have_r(("lme4", "glmmTMB", "jsonlite"))
    print(f"load average: {os.getloadavg()[0]:.1f}; R: {use_r}")
    rows = []
    for name, (data, call, r_data, lme4_call, tmb_call) in CASES.items():
        hb_ = hierbayes_case(data, call, reps)
        row = [name, fmt_s(hb_["warm"]), f"{hb_['m2ll']:.6f}"]
        if use_r:
            for pkg, rc in (("lme4", lme4_call), ("glmmTMB", tmb_call)):
                r = r_case(r_data, rc, reps, pkg)
                row += [fmt_s(r["warm"]), f"{r['m2ll']:.6f}", f"{r['warm'] / hb_['warm']:.2f}x"]
        rows.append(row)
    header = ["case", "hierbayes warm", "-2logL"]
    if use_r:
        header += ["lme4 warm", "lme4 -2logL", "lme4/hb", "glmmTMB warm", "glmmTMB -2logL", "glmmTMB/hb"]
    print(table(rows, header))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
