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

Bayesian families (``--bayes``): ESS/s of ``hb.bayes`` beside bambi 0.21 on the same simulated data
and model, each with its default sampler (PyMC's NUTS) and with nutpie, measured in one run. Each
library's fits run in a fresh process: "cold" is its first fit (model compilation included), "warm"
the median of the fits after it (``--reps``). ESS/s is the minimum bulk ESS over every parameter
(fixed effects, SDs, random effects, family parameters; bambi's ``_offset`` variables excluded)
divided by the wall time of the whole fit call. Both libraries use their default priors. A new
family is one more entry in ``BAYES_CASES`` (data maker, hierbayes formula and family, bambi's).

Run: ``python benchmarks/bench_families.py [--quick] [--no-r] [--bayes | --all] [--cases NAME ...] [--bayes-ordinal]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
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


# --- Bayesian families vs bambi -------------------------------------------------------------------------------


def simulate(family: str, n_groups: int = 30, n_per: int = 20, seed: int = 1) -> pd.DataFrame:
    """``y`` of the family with log/logit mean ``0.5 + 0.5 x + u_g`` (SD(u) = 0.4); ``z`` drives the auxiliary."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_per)
    x, z = rng.normal(size=g.size), rng.normal(size=g.size)
    eta = 0.5 + 0.5 * x + rng.normal(0, 0.4, n_groups)[g]
    mu, psi = np.exp(eta), 0.7
    if family == "gamma":
        y = rng.gamma(3.0, mu / 3.0)
    elif family == "negative_binomial":
        y = rng.poisson(rng.gamma(2.0, mu / 2.0))
    elif family == "beta":
        p = 1 / (1 + np.exp(-(eta - 0.5)))
        y = np.clip(rng.beta(p * 10, (1 - p) * 10), 1e-4, 1 - 1e-4)
    elif family == "zero_inflated_poisson":
        y = np.where(rng.random(g.size) < psi, rng.poisson(mu), 0)
    elif family == "zero_inflated_negative_binomial":
        y = np.where(rng.random(g.size) < psi, rng.poisson(rng.gamma(2.0, mu / 2.0)), 0)
    elif family in ("hurdle_poisson", "hurdle_negative_binomial"):
        from scipy import stats

        dist = stats.poisson(mu) if family == "hurdle_poisson" else stats.nbinom(2.0, 2.0 / (2.0 + mu))
        p0 = dist.cdf(0)
        pos = dist.ppf(p0 + (1 - p0) * rng.random(g.size))
        y = np.where(rng.random(g.size) < psi, np.maximum(pos, 1), 0)
    elif family == "gaussian_sigma":
        y = rng.normal(eta, np.exp(-0.3 + 0.4 * z))
    else:
        raise ValueError(family)
    return pd.DataFrame({"y": y.astype(float), "x": x, "z": z, "g": [f"g{i:02d}" for i in g]})


#: name -> (data family, hierbayes formula (code), hierbayes family, bambi formula (code), bambi family)
BAYES_CASES = {
    "Gamma (log)": ("gamma", '"y ~ x + (1 | g)"', "gamma", '"y ~ x + (1 | g)"', 'family="gamma", link="log"'),
    "negative binomial": ("negative_binomial", '"y ~ x + (1 | g)"', "negative_binomial", '"y ~ x + (1 | g)"',
                          'family="negativebinomial"'),
    "beta": ("beta", '"y ~ x + (1 | g)"', "beta", '"y ~ x + (1 | g)"', 'family="beta"'),
    "zero-inflated Poisson": ("zero_inflated_poisson", '"y ~ x + (1 | g)"', "zero_inflated_poisson",
                              '"y ~ x + (1 | g)"', 'family="zero_inflated_poisson"'),
    "zero-inflated NB": ("zero_inflated_negative_binomial", '"y ~ x + (1 | g)"', "zero_inflated_negative_binomial",
                         '"y ~ x + (1 | g)"', 'family="zero_inflated_negativebinomial"'),
    "hurdle Poisson": ("hurdle_poisson", '"y ~ x + (1 | g)"', "hurdle_poisson", '"y ~ x + (1 | g)"',
                       'family="hurdle_poisson"'),
    "hurdle NB": ("hurdle_negative_binomial", '"y ~ x + (1 | g)"', "hurdle_negative_binomial", '"y ~ x + (1 | g)"',
                  'family="hurdle_negativebinomial"'),
    "gaussian, sigma ~ z + (1|g)": ("gaussian_sigma", 'hb.Formula("y ~ x + (1 | g)", sigma="~ z + (1 | g)")',
                                    "gaussian", 'bmb.Formula("y ~ x + (1 | g)", "sigma ~ z + (1 | g)")',
                                    'family="gaussian"'),
}  # fmt: skip

_BAYES_HEAD = """
import logging, statistics, sys, time, warnings
import numpy as np
import arviz as az
warnings.filterwarnings("ignore")
logging.getLogger("pymc").setLevel(logging.ERROR)
logging.getLogger("bambi").setLevel(logging.ERROR)
sys.path.insert(0, "benchmarks")
from bench_families import simulate
df = simulate({data!r})
settings = dict(draws={draws}, tune={tune}, chains=4, cores=2, progressbar=False)

def min_ess(post):
    names = [v for v in post.data_vars if not v.endswith("_offset") and not v.startswith("corr__") and v != "mu"]
    ess = az.ess(post[names], method="bulk")
    return float(min(np.nanmin(ess[v].values) for v in names))

runs = []
for seed in range({reps} + 1):
    t = time.perf_counter()
"""
_BAYES_OURS = """    import hierbayes as hb
    fit = hb.bayes({formula}, df, family={family!r}, random_seed=seed, warn=False, sampler={sampler!r}, **settings)
    wall = time.perf_counter() - t
    runs.append((wall, min_ess(fit.posterior)))
"""
_BAYES_BAMBI = """    import bambi as bmb
    model = bmb.Model({formula}, df, {family})
    idata = model.fit(random_seed=seed, inference_method={sampler!r}, **settings)
    wall = time.perf_counter() - t
    runs.append((wall, min_ess(idata["posterior"].to_dataset())))
"""
_BAYES_TAIL = """__result.update(cold=runs[0][0], warm=statistics.median(w for w, _ in runs[1:]),
                ess=statistics.median(e for _, e in runs[1:]),
                ess_s=statistics.median(e / w for w, e in runs[1:]))
"""


def bayes_case(name: str, library: str, sampler: str, reps: int, draws: int, tune: int) -> dict:
    data, ours, family, theirs, bambi_family = BAYES_CASES[name]
    head = _BAYES_HEAD.format(data=data, draws=draws, tune=tune, reps=reps)
    if library == "hierbayes":
        body = _BAYES_OURS.format(formula=ours, family=family, sampler=sampler)
    else:
        body = _BAYES_BAMBI.format(formula=theirs, family=bambi_family, sampler=sampler)
    return run_python(head + body + _BAYES_TAIL)


def bench_bayes(names: list[str], reps: int, draws: int, tune: int) -> None:
    print(f"Bayesian families: 4 chains x {draws} draws after {tune} tuning, 2 cores; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    rows = []
    for name in names:
        res = {}
        for library in ("hierbayes", "bambi"):
            for sampler in ("pymc", "nutpie"):
                res[library, sampler] = bayes_case(name, library, sampler, reps, draws, tune)
        row = [name]
        for key in res:
            r = res[key]
            row += [f"{fmt_s(r['cold'])} / {fmt_s(r['warm'])}", f"{r['ess']:.0f}", f"{r['ess_s']:.1f}"]
        row += [f"{res['hierbayes', 'pymc']['ess_s'] / res['bambi', 'pymc']['ess_s']:.2f}x",
                f"{res['hierbayes', 'nutpie']['ess_s'] / res['bambi', 'nutpie']['ess_s']:.2f}x"]  # fmt: skip
        rows.append(row)
        print(f"  {' | '.join(row)} (load average {os.getloadavg()[0]:.1f})", flush=True)
    header = ["case"]
    for lib in ("hb", "hb nutpie", "bambi", "bambi nutpie"):
        header += [f"{lib} cold/warm", f"{lib} ESS", f"{lib} ESS/s"]
    header += ["hb/bambi ESS/s", "hb/bambi nutpie ESS/s"]
    print(table(rows, header))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


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
    ap.add_argument("--bayes", action="store_true", help="only the Bayesian families vs bambi")
    ap.add_argument("--all", action="store_true", help="glmer and the Bayesian families")
    ap.add_argument("--cases", nargs="*", default=None, help="Bayesian cases by name (default: all)")
    ap.add_argument("--reps", type=int, default=None, help="warm repetitions (default 2, --quick 1)")
    args = ap.parse_args()
    if args.bayes or args.all:
        quick = args.quick
        bench_bayes(args.cases or list(BAYES_CASES), args.reps or (1 if quick else 2), 500 if quick else 1000,
                    500 if quick else 1000)  # fmt: skip
        if args.bayes:
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
