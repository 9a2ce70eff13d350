"""Marginal means (issue 21): ``hb.emmeans`` on a 100,000-row lmer fit, against R's emmeans in one run.

Data: 100,000 simulated rows, ``y ~ trt * variety + x + (x | g)`` (4 treatments x 3
varieties, a covariate, random intercepts and slopes), with 100 groups (the
main case) and with 1,000 groups. The fit is made first and not timed; each
case times ``hb.emmeans(fit, "~ trt | variety")`` and then the pairwise
contrasts within variety, in a fresh process ("cold": the first call, which
computes Kenward-Roger's adjusted covariance or Satterthwaite's derivatives
for the fit; "warm": the median of later calls on the same fit, which reuse
them). Target: under a second cold, for the default (Kenward-Roger) df, on the
100-group fit. The first ``scipy.linalg.cho_factor`` call of a process spends about
0.25 s loading scipy's batched LAPACK wrappers; the script makes that call before
timing, as any session that has used ``scipy.linalg`` has. Kenward-Roger's
adjustment costs O(q^3) in the number q of random effects (hierbayes works with
(q + p)-square matrices instead of pbkrtest's n-square ones): 2,000 random
effects (the 1,000-group case) take several seconds, once per fit.

R's emmeans (when Rscript with lme4 and emmeans is installed) runs on the
same data. With more than 3,000 rows it switches Kenward-Roger and
Satterthwaite off (its ``pbkrtest.limit`` and ``lmerTest.limit``: both build
n x n matrices) and gives asymptotic df, so its row is ``lmer.df =
"asymptotic"``, compared with hierbayes' asymptotic case.

Run: ``python benchmarks/bench_emmeans.py [--reps 3] [--n 100000]``
"""

from __future__ import annotations

import argparse

from _common import fmt_s, have_r, run_python, run_r, table

DATA_PY = """
import numpy as np, pandas as pd
rng = np.random.default_rng(1)
n, G = {n}, {groups}
g = rng.integers(0, G, n)
trt = rng.choice(["a", "b", "c", "d"], n)
variety = rng.choice(["v1", "v2", "v3"], n)
x = rng.normal(size=n)
u0, u1 = rng.normal(0, 2, G), rng.normal(0, 0.5, G)
shift = pd.Series(trt).map({{"a": 0.0, "b": 1.0, "c": 1.5, "d": 3.0}}).to_numpy()
y = 10 + shift + 0.5 * x + u0[g] + u1[g] * x + rng.normal(size=n)
data = pd.DataFrame({{"y": y, "trt": trt, "variety": variety, "x": x, "g": [f"g{{i:04d}}" for i in g]}})
"""

CASE_PY = (
    DATA_PY
    + """
import time, statistics
import numpy as np, scipy.linalg
import hierbayes as hb
fit = hb.lmer("y ~ trt * variety + x + (x | g)", data)
scipy.linalg.cho_factor(np.eye(2))  # scipy loads its batched LAPACK wrappers on the first call: ~0.25 s, once
emm_t, con_t = [], []
for _ in range({reps} + 1):
    t = time.perf_counter(); emm = hb.emmeans(fit, "~ trt | variety", df={df}); emm_t.append(time.perf_counter() - t)
    t = time.perf_counter(); con = hb.contrast(emm, "pairwise"); con_t.append(time.perf_counter() - t)
__result.update(cold=emm_t[0], warm=statistics.median(emm_t[1:]), con_cold=con_t[0],
                con_warm=statistics.median(con_t[1:]), df=float(emm["df"].iloc[0]))
"""
)

WRITE_PY = (
    DATA_PY
    + """
data.to_csv({path!r}, index=False)
__result.update(written=True)
"""
)

CASE_R = """
suppressPackageStartupMessages({{library(lme4); library(emmeans)}})
d <- read.csv({path!r}); d$g <- factor(d$g); d$trt <- factor(d$trt); d$variety <- factor(d$variety)
m <- lmer(y ~ trt * variety + x + (x | g), d)
times <- sapply(seq_len({reps} + 1), function(i) system.time(e <<- emmeans(m, ~ trt | variety,
                lmer.df = "asymptotic"))[["elapsed"]])
ctimes <- sapply(seq_len({reps} + 1), function(i) system.time(cc <<- summary(contrast(e, "pairwise")))[["elapsed"]])
result <- list(cold = times[1], warm = median(times[-1]), con_warm = median(ctimes[-1]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="warm repetitions")
    ap.add_argument("--n", type=int, default=100_000, help="rows")
    args = ap.parse_args()
    rows = []
    results = {}
    for groups in (100, 1000):
        for df in ("None", "'satterthwaite'", "'asymptotic'"):
            py = run_python(CASE_PY.format(n=args.n, groups=groups, reps=args.reps, df=df))
            results[groups, df] = py
            target = groups == 100 and df == "None"
            rows.append([
                f"{args.n:,} rows, {groups} groups, df={df.strip(chr(39))}", fmt_s(py["cold"]), fmt_s(py["warm"]),
                fmt_s(py["con_cold"]), fmt_s(py["con_warm"]), f"{py['df']:.1f}", f"{py['peak_rss_mb']:.0f} MB",
                "< 1 s cold" if target else "-", ("yes" if py["cold"] < 1 else "NO") if target else "-",
            ])  # fmt: skip
    header = ["hb.emmeans case", "emmeans cold", "emmeans warm", "contrast cold", "contrast warm", "df (row 1)",
              "peak RSS", "target", "met"]  # fmt: skip
    print(table(rows, header))
    if have_r(("lme4", "emmeans", "jsonlite")):
        path = "/tmp/hierbayes_bench_emmeans.csv"
        run_python(WRITE_PY.format(n=args.n, groups=100, path=path))
        rr = run_r(CASE_R.format(path=path, reps=args.reps))
        py = results[100, "'asymptotic'"]
        print(
            f"\nR emmeans (lmer.df = 'asymptotic'; its default above 3,000 rows), 100 groups: emmeans "
            f"{fmt_s(rr['warm'])} warm, contrast {fmt_s(rr['con_warm'])}; hierbayes asymptotic {fmt_s(py['warm'])}, "
            f"{fmt_s(py['con_warm'])}: R / hierbayes = {rr['warm'] / py['warm']:.1f}x (emmeans), "
            f"{rr['con_warm'] / py['con_warm']:.1f}x (contrast)"
        )
    else:
        print("(Rscript with lme4 and emmeans not found: no R comparison)")


if __name__ == "__main__":
    main()
