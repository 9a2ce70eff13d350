"""The in-memory 2,000,000-row crossed design (issue 19's in-memory target, issue 23).

``y ~ x + (x | g) + (1 | h)``: g has 100,000 levels with a random intercept
and slope (20 rows each), crossed with h, 500 levels, drawn at random per row.
The block of g against h, A[2,1] = Zh'Zg, is sparse (about 2 million of its
100 million entries are nonzero); with g's block diagonal eliminated first,
L[2,1] keeps exactly that sparsity (no fill-in) and only the 500 x 500 block
of h (plus X and y) is dense.

Target: the whole fit (design building included, data simulated beforehand)
under 10 s and 2 GiB peak RSS, with the same estimates as before.

Run: ``python benchmarks/bench_crossed.py [--rows N] [--levels G] [--ids int|category] [--json PATH]``.
The fit runs in a fresh process; peak RSS is that process's (the simulated
data frame included, about 50 MB).
"""

from __future__ import annotations

import argparse
import json
import os

from _common import run_python

SIM = """
import numpy as np, pandas as pd
rng = np.random.default_rng(2025)
G, H, n = {levels}, 500, {rows}
g = np.repeat(np.arange(G), n // G); h = rng.integers(0, H, n); x = rng.normal(size=n)
b0 = rng.normal(0, 1.0, G); b1 = rng.normal(0, 0.5, G); c = rng.normal(0, 0.7, H)
y = 2.0 + 0.3 * x + b0[g] + b1[g] * x + c[h] + rng.normal(0, 1.0, n)
if {ids!r} == "int":
    df = pd.DataFrame({{"y": y, "x": x, "g": g, "h": h}})
else:  # labels as text, as a pandas category
    df = pd.DataFrame({{"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)}})
    df["g"] = df["g"].astype("category"); df["h"] = df["h"].astype("category")
"""

FIT = """
import time, resource
import hierbayes as hb
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t, c = time.perf_counter(), time.process_time()
fit = hb.lmer("y ~ x + (x | g) + (1 | h)", df)
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
__result.update(seconds=elapsed, cpu_seconds=cpu, feval=fit.optinfo.feval, objective=float(fit.objective),
                theta=[float(v) for v in fit.theta], fixef=[float(v) for v in fit.fixef],
                sigma=float(fit.sigma), rss_before_fit_mb=rss0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--levels", type=int, default=100_000)
    ap.add_argument(
        "--ids",
        choices=("int", "category"),
        default="int",
        help="grouping columns as integer ids (default) or text labels in a pandas category",
    )
    ap.add_argument("--json", help="write the result here too")
    args = ap.parse_args()
    res = run_python(SIM.format(levels=args.levels, rows=args.rows, ids=args.ids) + FIT)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"rows {args.rows:,}, g levels {args.levels:,} (x | g), h levels 500 (1 | h), ids {args.ids}; load {load}")
    print(f"fit: {res['seconds']:.2f} s wall, {res['cpu_seconds']:.2f} s CPU, {res['feval']} evaluations, "
          f"peak RSS {res['peak_rss_mb'] / 1024:.2f} GiB "
          f"(data alone {res['rss_before_fit_mb'] / 1024:.2f} GiB)")  # fmt: skip
    print(f"REML criterion {res['objective']:.6f}; theta {[round(v, 6) for v in res['theta']]}")
    print(f"fixef {[round(v, 6) for v in res['fixef']]}; sigma {res['sigma']:.6f}")
    print(f"target < 10 s: {'met' if res['seconds'] < 10 else 'NOT met'}; "
          f"< 2 GiB: {'met' if res['peak_rss_mb'] < 2048 else 'NOT met'}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
