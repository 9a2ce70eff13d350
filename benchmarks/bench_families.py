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

Run: ``python benchmarks/bench_families.py [--quick] [--no-r]``.
"""

from __future__ import annotations

import argparse
import os

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
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
