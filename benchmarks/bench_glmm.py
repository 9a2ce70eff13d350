"""GLMM fits (issue 7): hierbayes against lme4's glmer on the same models, measured in one run.

Cases:

* cbpp ``cbind(incidence, size - incidence) ~ period + (1 | herd)``, Laplace
  (nAGQ = 1) and adaptive Gauss-Hermite (nAGQ = 25);
* grouseticks ``TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)``, Poisson, nested;
* VerbAgg ``r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)``,
  binomial, crossed (7,584 rows; MixedModels.jl's benchmark model);
* Contraception ``use ~ urban + age + livch + (urban | district)``, binomial,
  a correlated random slope (1,934 rows);
* sim_poisson_crossed ``count ~ x + (1 | site) + (1 | year)``, Poisson, crossed;
* a simulated bernoulli model, 20,000 rows in 500 groups,
  ``y ~ x + (x | g)``.

Target (issue 23): at least 2x glmer on cbpp (Laplace and nAGQ = 25),
grouseticks, VerbAgg and Contraception, and no slower than glmer on any
model that takes glmer more than 50 ms. Times are whole fits (design building, both
optimisation stages, the Hessian for vcov and the convergence checks, as
glmer computes them). Every case runs in a fresh process: "cold" is its
first fit (after ``import hierbayes.glmm``, as R's after ``library(lme4)``),
"warm" the median of the following ones; peak RSS is per process. Wall-clock
and CPU times (user + system, all threads) are both printed: on a machine
shared with other work the CPU-time ratio is the steadier one.
The -2 logLik of both fits is printed too (hierbayes converges PIRLS to
machine precision, so its value is at or below glmer's).

Run: ``python benchmarks/bench_glmm.py [--quick] [--no-r]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import fmt_s, have_r, run_python, run_r, table

SIM_BERNOULLI = """
import numpy as np, pandas as pd
rng = np.random.default_rng(7)
G, per = 500, 40
g = np.repeat(np.arange(G), per)
x = rng.normal(size=G * per)
u0 = rng.normal(0, 1.0, G); u1 = rng.normal(0, 0.5, G)
eta = -0.5 + 0.8 * x + u0[g] + u1[g] * x
df = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": [f"g{i:03d}" for i in g]})
"""

#: name -> (python data expression, formula, family, nAGQ, R data code)
CASES = {
    "cbpp laplace": (
        'hb.datasets.load("cbpp")',
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        1,
        'df <- read.csv("hierbayes/datasets/data/cbpp.csv"); df$herd <- factor(df$herd); '
        "df$period <- factor(df$period)",
    ),
    "cbpp agq25": (
        'hb.datasets.load("cbpp")',
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        25,
        'df <- read.csv("hierbayes/datasets/data/cbpp.csv"); df$herd <- factor(df$herd); '
        "df$period <- factor(df$period)",
    ),
    "grouseticks": (
        'hb.datasets.load("grouseticks")',
        "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)",
        "poisson",
        1,
        'df <- read.csv("hierbayes/datasets/data/grouseticks.csv"); '
        'for (f in c("BROOD", "YEAR", "LOCATION")) df[[f]] <- factor(df[[f]])',
    ),
    "VerbAgg": (
        'load_dataset("verbagg")',
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "binomial",
        1,
        'df <- read.csv("tests/reference/external/data/verbagg.csv", stringsAsFactors = TRUE); df$id <- factor(df$id)',
    ),
    "Contraception": (
        'load_dataset("contraception")',
        "use ~ urban + age + livch + (urban | district)",
        "binomial",
        1,
        'df <- read.csv("tests/reference/external/data/contraception.csv", stringsAsFactors = TRUE); '
        "df$district <- factor(df$district)",
    ),
    "poisson crossed": (
        'pd.read_csv("tests/reference/data/sim_poisson_crossed.csv")',
        "count ~ x + (1 | site) + (1 | year)",
        "poisson",
        1,
        'df <- read.csv("tests/reference/data/sim_poisson_crossed.csv"); df$site <- factor(df$site); '
        "df$year <- factor(df$year)",
    ),
}


def hierbayes_case(data_expr: str, formula: str, family: str, nagq: int, reps: int, setup: str = "") -> dict:
    code = f"""
import time, statistics, warnings
import pandas as pd
import hierbayes as hb
import hierbayes.glmm  # the engine is loaded before the timer, as library(lme4) loads lme4 before R's
from tests.external.loader import load_dataset  # the external suite's data with R's column types
{setup}
df = {data_expr}
times, cpu = [], []
for i in range({reps} + 1):
    t, c = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = hb.glmer({formula!r}, df, family={family!r}, nAGQ={nagq})
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
__result.update(cold=times[0], warm=statistics.median(times[1:]), cpu_cold=cpu[0], cpu_warm=statistics.median(cpu[1:]),
                m2ll=fit.deviance, evals=fit.optinfo[0].feval + fit.optinfo[1].feval)
"""
    return run_python(code)


def r_case(r_data: str, formula: str, family: str, nagq: int, reps: int) -> dict:
    code = f"""
suppressMessages(library(lme4))
{r_data}
fit <- function() suppressWarnings(glmer({formula}, df, family = {family}, nAGQ = {nagq}))
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
t0 <- system.time(m <- fit())
ts <- replicate({reps}, system.time(m <- fit()))
result <- list(cold = t0[["elapsed"]], warm = median(ts["elapsed", ]), cpu_cold = cpu(t0),
               cpu_warm = median(ts["user.self", ] + ts["sys.self", ]), m2ll = -2 * as.numeric(logLik(m)))
"""
    return run_r(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    reps = 3 if args.quick else 10
    use_r = not args.no_r and have_r(("lme4", "jsonlite"))
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; R: {use_r}")

    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "sim_bernoulli.csv")
        run_python(SIM_BERNOULLI + f"\ndf.to_csv({csv!r}, index=False)\n")
        cases = dict(CASES)
        cases["bernoulli 20k x 500"] = (
            f"pd.read_csv({csv!r})",
            "y ~ x + (x | g)",
            "binomial",
            1,
            f'df <- read.csv("{csv}"); df$g <- factor(df$g)',
        )
        rows = []
        for name, (data_expr, formula, family, nagq, r_data) in cases.items():
            n_reps = max(2, reps // 3) if "20k" in name else reps
            hb_ = hierbayes_case(data_expr, formula, family, nagq, n_reps)
            r = r_case(r_data, formula, family, nagq, n_reps) if use_r else None
            rows.append(
                [
                    name,
                    fmt_s(hb_["cold"]),
                    fmt_s(hb_["warm"]),
                    str(hb_["evals"]),
                    fmt_s(r["cold"]) if r else "-",
                    fmt_s(r["warm"]) if r else "-",
                    f"{r['cold'] / hb_['cold']:.2f}x" if r else "-",
                    f"{r['warm'] / hb_['warm']:.2f}x" if r else "-",
                    f"{r['cpu_cold'] / hb_['cpu_cold']:.2f}x / {r['cpu_warm'] / hb_['cpu_warm']:.2f}x" if r else "-",
                    f"{hb_['m2ll']:.6f}" + (f" / {r['m2ll']:.6f}" if r else ""),
                    f"{hb_['peak_rss_mb']:.0f}" + (f"/{r['peak_rss_mb']:.0f}" if r else ""),
                ]
            )
    print("\nGLMM fits (speed-up = glmer time / hierbayes time; > 1 means hierbayes is faster)")
    print("'CPU': the same ratios of process CPU time (user + system; steadier than wall time on a busy machine)")
    header = ["case", "hb cold", "hb warm", "evals", "glmer cold", "glmer warm", "vs cold", "vs warm",
              "CPU vs cold/warm", "-2 logLik hb / glmer", "RSS MB hb/R"]  # fmt: skip
    print(table(rows, header))


if __name__ == "__main__":
    main()
