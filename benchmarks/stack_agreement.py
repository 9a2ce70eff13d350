"""Posterior agreement across software stacks (issue 16): the same fits, old stack against new.

The move from PyMC 5 / PyTensor 2 / ArviZ 0.x to PyMC 6 / PyTensor 3 / ArviZ 1.x must not change
results: every parameter's posterior quantiles agree within Monte Carlo error. Three fits (sleepstudy
with correlated slopes and HSB, both gaussian and marginalized; cbpp, binomial and sampled in full),
4 chains x 1000 draws after 1000 tuning, fixed seeds, every parameter including each random effect.

Two steps, each in its own environment (``PYTHONPATH`` says which hierbayes is measured; the script
does not add its own checkout to the path)::

    # old stack (hierbayes before the move, Python 3.11, pymc<6), then this checkout on the new stack:
    PYTHONPATH=/path/to/old/checkout python3.11 benchmarks/stack_agreement.py dump old.npz
    PYTHONPATH=$PWD python benchmarks/stack_agreement.py dump new.npz
    # compare (new stack: MCSEs from arviz-stats), and write the reference the slow test reads:
    PYTHONPATH=$PWD python benchmarks/stack_agreement.py compare old.npz new.npz \
        --json tests/reference/old_stack_quantiles.json

``dump`` uses only public hierbayes API that both versions have (``hb.bayes``, ``fit.parameters``), so
the old code runs unchanged. ``compare`` computes, for each parameter and each quantile in ``PROBS``,
the standardized difference ``z = (q_new - q_old) / sqrt(mcse_old^2 + mcse_new^2)`` with the quantile
MCSE of arviz-stats; with about 2,000 comparisons, |z| up to about 4 is Monte Carlo error (the
two-sided 1e-4 quantile of a normal is 3.9).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

CASES = {
    "sleepstudy": {"formula": "Reaction ~ Days + (Days | Subject)", "data": "sleepstudy", "family": "gaussian"},
    "hsb": {"formula": "mathach ~ cses + (cses | school)", "data": "hsb", "family": "gaussian"},
    "cbpp": {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "data": "cbpp",
             "family": "binomial"},
}  # fmt: skip
SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 20261207}
PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
Z_MAX = 4.5


def fit_case(case: str, **overrides):
    """One case's fit with the shared settings (``overrides`` e.g. fewer draws for a quick check)."""
    import hierbayes as hb

    spec = CASES[case]
    kw = {**SETTINGS, **overrides}
    return hb.bayes(spec["formula"], hb.datasets.load(spec["data"]), family=spec["family"], progressbar=False,
                    warn=False, **kw)  # fmt: skip


def draws_of(fit) -> tuple[list[str], np.ndarray]:
    """Names and (parameter, chain, draw) draws of every parameter, random effects included."""
    ds = fit.parameters(ranef=True)
    names = [str(v) for v in ds.data_vars]
    return names, np.stack([np.asarray(ds[v].transpose("chain", "draw").values, dtype=float) for v in names])


def versions() -> dict:
    import platform

    import arviz
    import pymc
    import pytensor

    import hierbayes

    return {"python": platform.python_version(), "pymc": pymc.__version__, "pytensor": pytensor.__version__,
            "arviz": arviz.__version__, "numpy": np.__version__, "hierbayes": hierbayes.__version__}  # fmt: skip


def dump(out: Path) -> None:
    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    arrays, meta = {}, {"versions": versions(), "settings": SETTINGS, "cases": {}}
    for case in CASES:
        t = time.perf_counter()
        fit = fit_case(case)
        names, draws = draws_of(fit)
        arrays[case] = draws
        meta["cases"][case] = {**CASES[case], "names": names, "seconds": time.perf_counter() - t,
                               "sampler": getattr(fit.info, "sampler", "?")}  # fmt: skip
        print(f"{case}: {len(names)} parameters, {time.perf_counter() - t:.1f} s", flush=True)
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)


def quantiles_and_mcse(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(parameter, prob) quantiles over chains and draws, and their MCSE (arviz-stats)."""
    import xarray as xr
    from arviz_stats import mcse

    q = np.quantile(draws.reshape(draws.shape[0], -1), PROBS, axis=1).T
    da = xr.DataArray(draws, dims=("parameter", "chain", "draw"))
    se = np.stack([np.asarray(mcse(da, method="quantile", prob=p).values) for p in PROBS], axis=1)
    return q, se


def load(path: Path) -> tuple[dict, dict]:
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        return meta, {case: f[case] for case in meta["cases"]}


def compare(old_path: Path, new_path: Path, json_out: Path | None, note: str = "") -> int:
    old_meta, old = load(old_path)
    new_meta, new = load(new_path)
    print(f"old: {old_meta['versions']}\nnew: {new_meta['versions']}")
    reference = {"meta": {"made_by": "benchmarks/stack_agreement.py", "versions": old_meta["versions"],
                          "settings": old_meta["settings"], "probs": list(PROBS), "note": note,
                          "mcse": "arviz-stats mcse(method='quantile') of the old draws"}, "cases": {}}  # fmt: skip
    worst_all = 0.0
    for case in old_meta["cases"]:
        names = old_meta["cases"][case]["names"]
        if names != new_meta["cases"][case]["names"]:
            raise SystemExit(f"{case}: the parameters differ between the two dumps")
        q_old, se_old = quantiles_and_mcse(old[case])
        q_new, se_new = quantiles_and_mcse(new[case])
        z = (q_new - q_old) / np.sqrt(se_old**2 + se_new**2)
        i, j = np.unravel_index(np.nanargmax(np.abs(z)), z.shape)
        worst_all = max(worst_all, float(np.abs(z[i, j])))
        rel = np.abs(q_new - q_old) / np.maximum(np.abs(q_old), 1e-12)
        print(
            f"{case:10s} {len(names):4d} parameters x {len(PROBS)} quantiles: max |z| {np.abs(z).max():.2f} "
            f"({names[i]}, q{PROBS[j]:g}: old {q_old[i, j]:.4g}, new {q_new[i, j]:.4g}), "
            f"share |z| > 2: {np.mean(np.abs(z) > 2):.3f}, > 3: {np.mean(np.abs(z) > 3):.4f}; "
            f"median relative difference {np.median(rel):.2e}; seconds old {old_meta['cases'][case]['seconds']:.1f}, "
            f"new {new_meta['cases'][case]['seconds']:.1f}"
        )
        reference["cases"][case] = {
            **{k: old_meta["cases"][case][k] for k in ("formula", "data", "family")},
            "parameters": {n: {"quantiles": q_old[k].tolist(), "mcse": se_old[k].tolist()}
                           for k, n in enumerate(names)},
        }  # fmt: skip
    if json_out is not None:
        json_out.write_text(json.dumps(reference, indent=1) + "\n")
        print(f"wrote {json_out}")
    print(f"max |z| over everything: {worst_all:.2f} (limit {Z_MAX})")
    return 0 if worst_all <= Z_MAX else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    c.add_argument("--json", type=Path, default=None)
    c.add_argument("--note", default="", help="stored in the reference's meta (e.g. which checkout made the old dump)")
    args = parser.parse_args()
    if args.cmd == "dump":
        dump(args.out)
    else:
        raise SystemExit(compare(args.old, args.new, args.json, args.note))


if __name__ == "__main__":
    main()
