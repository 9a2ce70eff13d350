"""Residual AR(1) structure at scale: hierbayes against nlme::lme, measured in one run (issue 20).

Case: 100,000 rows in 1,000 series of 100 consecutive times, ``y ~ x + (1 | g)``
with ``corAR1(form = ~ t | g)`` (simulated: Phi 0.6, random-intercept SD 1,
residual SD 1), fitted by REML. hierbayes whitens [Z X y] row by row at each
evaluation (O(n), no n x n matrix); nlme works per group with its own
factorisations. Reported: wall time of the whole fit (design included; R's
timing starts after ``library(nlme)``, Python's after the import), peak RSS
of each process, the REML log-likelihoods and Phi (they must agree), and the
ratio nlme / hierbayes.

Run: ``python benchmarks/bench_structures.py [--series 1000] [--times 100] [--no-r]``.
``uptime``'s load is printed beside the numbers (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

import numpy as np
import pandas as pd
from _common import fmt_s, have_r, run_python, run_r, table


def simulate(series: int, times: int, seed: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = series * times
    g = np.repeat(np.arange(series), times)
    t = np.tile(np.arange(1, times + 1), series)
    x = np.round(rng.normal(size=n), 6)
    phi, z = 0.6, rng.normal(size=(series, times))
    e = np.empty((series, times))
    e[:, 0] = z[:, 0]
    for j in range(1, times):
        e[:, j] = phi * e[:, j - 1] + np.sqrt(1 - phi**2) * z[:, j]
    y = np.round(1.0 + 0.5 * x + rng.normal(size=series)[g] + e.ravel(), 6)
    return pd.DataFrame({"g": g, "t": t, "x": x, "y": y})


def hierbayes_fit(path: str) -> dict:
    code = f"""
import time
import pandas as pd
import hierbayes as hb
import hierbayes.reml.structured, hierbayes.fits.lmer  # loaded before the timer, as library(nlme) before R's
d = pd.read_csv({path!r})
d["g"] = pd.Categorical(d["g"])
t = time.perf_counter()
fit = hb.lmer("y ~ x + (1 | g)", d, correlation=hb.corAR1("~ t | g"))
__result.update(seconds=time.perf_counter() - t, loglik=fit.loglik, phi=fit.residual_params["Phi"],
                feval=fit.optinfo.feval)
"""
    return run_python(code)


def nlme_fit(path: str) -> dict:
    code = f"""
suppressPackageStartupMessages(library(nlme))
d <- read.csv({path!r}); d$g <- factor(d$g)
t <- system.time(fit <- lme(y ~ x, random = ~ 1 | g, correlation = corAR1(form = ~ t | g), data = d,
                            method = "REML"))[["elapsed"]]
result <- list(seconds = t, loglik = as.numeric(logLik(fit)),
               phi = as.numeric(coef(fit$modelStruct$corStruct, unconstrained = FALSE)))
"""
    return run_r(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--times", type=int, default=100)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ar1.csv")
        simulate(args.series, args.times).to_csv(path, index=False)
        n = args.series * args.times
        print(f"corAR1(~ t | g), y ~ x + (1 | g), REML: {n:,} rows in {args.series:,} series")
        print(f"load before: {load}")
        hb_ = hierbayes_fit(path)
        rows = [["hierbayes", fmt_s(hb_["seconds"]), f"{hb_['peak_rss_mb']:.0f} MB", f"{hb_['loglik']:.6f}",
                 f"{hb_['phi']:.6f}", "1.0"]]  # fmt: skip
        if not args.no_r and have_r(("nlme", "jsonlite")):
            r = nlme_fit(path)
            rows.append(["nlme::lme", fmt_s(r["seconds"]), f"{r['peak_rss_mb']:.0f} MB", f"{r['loglik']:.6f}",
                         f"{r['phi']:.6f}", f"{r['seconds'] / hb_['seconds']:.1f}"])  # fmt: skip
            rel = abs(hb_["loglik"] - r["loglik"]) / abs(r["loglik"])
            print(table(rows, ["", "fit", "peak RSS", "REML logLik", "Phi", "time / hierbayes"]))
            print(f"logLik relative difference {rel:.2e}; hierbayes is {r['seconds'] / hb_['seconds']:.1f}x faster")
        else:
            print(table(rows, ["", "fit", "peak RSS", "REML logLik", "Phi", "time / hierbayes"]))
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"load after: {load}")


if __name__ == "__main__":
    main()
