"""Inference (issue 3): profiles and parametric bootstraps, hierbayes against lme4 in one run.

Cases:

* profile of all parameters of sleepstudy ``Reaction ~ Days + (Days | Subject)``
  (REML fit, profiled through its ML refit as lme4 does): hierbayes'
  ``fit.profile()`` against lme4's ``profile(m)``. Target: < 2 s warm.
* 1000 parametric bootstrap refits of High School and Beyond
  ``mathach ~ cses + (1 | school)`` (REML): hierbayes' ``fit.bootstrap(nsim=1000)``
  on 2 worker processes against ``bootMer(m, FUN, nsim = 1000)`` with lme4's
  ``confint(method = "boot")`` statistic. Target: < 1 minute on 2 cores.

Each case runs in a fresh process: "cold" is its first call (imports and
first compilation included in neither: the model is fitted first), "warm" the
median of the following ones; peak RSS is that process's (for the bootstrap
the workers' peak is reported separately). R's times come from the same run
(``system.time``), when Rscript with lme4 is installed.

Run: ``python benchmarks/bench_inference.py [--reps 3] [--nsim 1000]``
"""

from __future__ import annotations

import argparse

from _common import fmt_s, have_r, run_python, run_r, table

PROFILE_PY = """
import time, statistics, warnings
import hierbayes as hb
fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
times = []
for _ in range({reps} + 1):
    t = time.perf_counter(); pr = fit.profile(); times.append(time.perf_counter() - t)
__result.update(cold=times[0], warm=statistics.median(times[1:]), npoints=len(pr.table),
                ci=pr.confint().round(4).values.tolist())
"""

PROFILE_R = """
suppressPackageStartupMessages(library(lme4))
d <- read.csv("hierbayes/datasets/data/sleepstudy.csv"); d$Subject <- factor(d$Subject)
m <- lmer(Reaction ~ Days + (Days | Subject), d)
times <- sapply(seq_len({reps} + 1), function(i) system.time(pr <<- profile(m))[["elapsed"]])
result <- list(cold = times[1], warm = median(times[-1]), npoints = nrow(as.data.frame(pr)))
"""

BOOT_PY = """
import time, resource, warnings
import hierbayes as hb
fit = hb.lmer("mathach ~ cses + (1 | school)", hb.datasets.load("hsb"))
times = []
for r in range({reps}):
    t = time.perf_counter()
    res = fit.bootstrap(nsim={nsim}, seed=r + 1, n_jobs=2, progress=False)
    times.append(time.perf_counter() - t)
__result.update(cold=times[0], warm=min(times[1:]) if len(times) > 1 else times[0], failed=res.n_failed,
                ci=res.confint().round(3).values.tolist(),
                workers_peak_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""

BOOT_R = """
suppressPackageStartupMessages(library(lme4))
d <- read.csv("hierbayes/datasets/data/hsb.csv"); d$school <- factor(d$school)
m <- lmer(mathach ~ cses + (1 | school), d)
FUN <- function(x) c(getME(x, "theta") * sigma(x), sigma(x), fixef(x))
el <- system.time(b <- bootMer(m, FUN, nsim = {nsim}, seed = 1))[["elapsed"]]
result <- list(time = el, failed = sum(is.na(b$t[, 1])))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="warm repetitions")
    ap.add_argument("--nsim", type=int, default=1000, help="bootstrap replicates")
    args = ap.parse_args()
    r = have_r(("lme4", "jsonlite"))
    rows = []

    py = run_python(PROFILE_PY.format(reps=args.reps))
    rr = run_r(PROFILE_R.format(reps=args.reps)) if r else None
    rows.append([
        "profile sleepstudy (Days|Subject)", fmt_s(py["cold"]), fmt_s(py["warm"]), fmt_s(rr and rr["warm"]),
        f"{rr['warm'] / py['warm']:.1f}x" if rr else "-", f"{py['peak_rss_mb']:.0f} MB",
        f"{rr['peak_rss_mb']:.0f} MB" if rr else "-", "< 2 s warm", "yes" if py["warm"] < 2 else "NO",
    ])  # fmt: skip
    print(f"profile points: hierbayes {py['npoints']}, lme4 {rr['npoints'] if rr else '-'}")

    py = run_python(BOOT_PY.format(reps=max(1, min(args.reps, 2)), nsim=args.nsim))
    rr = run_r(BOOT_R.format(nsim=args.nsim)) if r else None
    rows.append([
        f"bootstrap hsb cses, {args.nsim} refits, 2 cores", fmt_s(py["cold"]), fmt_s(py["warm"]),
        fmt_s(rr and rr["time"]), f"{rr['time'] / py['warm']:.1f}x" if rr else "-",
        f"{py['peak_rss_mb']:.0f} MB (+ workers {py['workers_peak_rss_mb']:.0f} MB each)",
        f"{rr['peak_rss_mb']:.0f} MB" if rr else "-", "< 60 s", "yes" if py["warm"] < 60 else "NO",
    ])  # fmt: skip
    print(f"bootstrap failures: hierbayes {py['failed']}, lme4 {rr['failed'] if rr else '-'}; "
          f"hierbayes percentile CI {py['ci']}")  # fmt: skip
    header = ["case", "hierbayes cold", "hierbayes warm", "lme4", "lme4 / hierbayes", "hierbayes peak RSS",
              "lme4 peak RSS", "target", "met"]  # fmt: skip
    print(table(rows, header))
    if not r:
        print("(Rscript with lme4 not found: lme4 columns left empty)")


if __name__ == "__main__":
    main()
