"""Data larger than memory (issue 19): streamed fits against the in-memory fit of the same rows, in one run.

A crossed design (a factor with ``--l1`` levels and a random slope, crossed
with one of ``--l2`` levels; by default the issue's 2,000,000 rows, 100,000
and 500 levels) is written as one Parquet file and as a directory of 8
files under ``--dir`` (never in the repository; deleted afterwards unless
``--keep``). Each case runs in its own process (its own peak RSS):

* ``memory``: ``pd.read_parquet`` + ``hb.lmer`` (the reference);
* ``file``, ``directory``, ``dataset``: ``hb.lmer`` on the path / the
  ``pyarrow.dataset`` (record batches, only the used columns);
* ``dask``: ``hb.lmer`` on ``dd.read_parquet`` with a 2-worker ``LocalCluster``.

Printed per case: the pass over the rows (seconds, rows per second and rows
per CPU second -- the machine is shared, so CPU time says what the wall time
would be on an idle one -- of the passes that build the design), the fit,
the time per optimizer evaluation (the criterion at the estimate, median of
5; the first evaluation apart: it sets up the factorization's pattern), peak
RSS (and after the passes), and the
differences from the in-memory fit: criterion (relative), fixed effects,
theta, and the criterion at the in-memory theta (relative). ``uptime`` is
printed beside them (the machine is shared).

``--no-fit`` stops the streamed cases after the passes and the criterion
at lme4's starting theta (the 50,000,000-row file: its fit takes hundreds of
evaluations). ``--keep`` keeps the files and reuses them.

``--sample M`` fits the first M rows in memory instead of all of them (the
README's 10-million-row file beside a 1-million-row sample: no equality
then). ``--cases`` picks cases.

Usage::

    python benchmarks/bench_outofcore.py                       # the issue's 2M-row design
    python benchmarks/bench_outofcore.py --rows 50000000 --cases file --sample 0 --no-fit   # the 50M-row target
    python benchmarks/bench_outofcore.py --rows 10000000 --sample 1000000 --cases memory,file
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_python

FORMULA = "y ~ x + (x | g1) + (1 | g2)"

WRITE = """
import numpy as np, pyarrow as pa, pyarrow.parquet as pq, os
rows, l1, l2, path, parts, chunk, dirs = {rows}, {l1}, {l2}, {path!r}, {parts}, 2_000_000, {dirs}
rng = np.random.default_rng(19)
u = rng.normal(size=(l1, 2)) * [0.8, 0.3]
v = rng.normal(size=l2) * 0.6
if dirs:
    os.makedirs(path + ".d", exist_ok=True)
writer = None
per_part = -(-rows // parts)
part_writer, part_i, part_rows = None, 0, 0
for start in range(0, rows, chunk):
    n = min(chunk, rows - start)
    g1 = rng.integers(0, l1, n); g2 = rng.integers(0, l2, n); x = rng.normal(size=n)
    y = 3.0 + 0.5 * x + u[g1, 0] + u[g1, 1] * x + v[g2] + rng.normal(size=n)
    t = pa.table({{"y": y, "x": x, "g1": g1.astype(np.int32), "g2": g2.astype(np.int32), "w": rng.normal(size=n)}})
    if writer is None:
        writer = pq.ParquetWriter(path, t.schema)
    writer.write_table(t, row_group_size=1_000_000)
    off = 0
    while dirs and off < n:
        if part_writer is None:
            part_writer = pq.ParquetWriter(f"{{path}}.d/part-{{part_i:02d}}.parquet", t.schema)
        take = min(per_part - part_rows, n - off)
        part_writer.write_table(t.slice(off, take), row_group_size=1_000_000)
        off += take; part_rows += take
        if part_rows == per_part:
            part_writer.close(); part_writer, part_i, part_rows = None, part_i + 1, 0
writer.close()
if part_writer is not None:
    part_writer.close()
__result["bytes"] = os.path.getsize(path)
"""

CASE = """
import time, warnings, numpy as np
warnings.simplefilter("ignore")
import hierbayes as hb
from hierbayes.reml import LmmObjective
kind, path, formula, sample, theta_ref, do_fit = {kind!r}, {path!r}, {formula!r}, {sample}, {theta_ref}, {fit}
t0 = time.perf_counter()
client = None
if kind == "memory":
    import pandas as pd
    data = pd.read_parquet(path, columns=["y", "x", "g1", "g2"])
    if sample:
        data = data.iloc[:sample]
elif kind == "file":
    data = path
elif kind == "directory":
    data = path + ".d"
elif kind == "dataset":
    import pyarrow.dataset as pads
    data = pads.dataset(path + ".d", format="parquet")
else:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    data = dd.read_parquet(path + ".d")
t1, c1 = time.perf_counter(), time.process_time()
model = hb.Model(formula, data)  # the passes over the rows (the design, in memory)
t_pass, cpu_pass = time.perf_counter() - t1, time.process_time() - c1
import resource
rss_pass = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if do_fit:
    fit = model.fit("reml")
    design, th, nobs = fit.design, np.asarray(fit.estimates.theta), fit.nobs
else:  # the criterion at lme4's starting theta only (the fit's evaluations, counted)
    from hierbayes.reml.fit import start_theta
    design, nobs = model.design, model.design.n
    th = start_theta(design, None)
t_total = time.perf_counter() - t0
obj = LmmObjective(design, True)
s = time.perf_counter(); first = obj(th); t_first = time.perf_counter() - s
times = []
for _ in range(5 if do_fit else 3):
    s = time.perf_counter(); obj(th); times.append(time.perf_counter() - s)
__result.update(kind=kind, nobs=nobs, seconds_total=t_total, seconds_pass=t_pass, cpu_pass=cpu_pass,
                rss_pass_mb=rss_pass, seconds_read=t1 - t0, first_eval_seconds=t_first,
                eval_seconds=float(np.median(times)), theta=th.tolist())
if do_fit:
    __result.update(objective=fit.objective, fixef=fit.fixef.tolist(), sigma=fit.sigma,
                    evaluations=int(fit.optinfo.feval),
                    crit_at_ref=(obj(np.asarray(theta_ref)) if theta_ref is not None else None))
else:
    __result.update(objective=first, evaluations=0)
if client is not None:
    client.close(); cluster.close()
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--l1", type=int, default=100_000)
    ap.add_argument("--l2", type=int, default=500)
    ap.add_argument("--dir", default="/work/bench_data")
    ap.add_argument("--cases", default="memory,file,directory,dataset,dask")
    ap.add_argument("--sample", type=int, default=None, help="in-memory fit of the first SAMPLE rows (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the data files (and reuse them if they exist)")
    ap.add_argument(
        "--no-fit",
        action="store_true",
        help="streamed cases: the passes and the criterion at the starting theta only, not the fit",
    )
    args = ap.parse_args()
    cases = args.cases.split(",")
    os.makedirs(args.dir, exist_ok=True)
    path = str(Path(args.dir) / f"crossed_{args.rows}.parquet")
    print(f"disk free under {args.dir}: {shutil.disk_usage(args.dir).free / 2**30:.1f} GiB; load {uptime()}")
    dirs = any(c in cases for c in ("directory", "dataset", "dask"))
    if args.keep and Path(path).exists() and (not dirs or Path(path + ".d").exists()):
        print(f"reusing {path}")
    else:
        t = time.perf_counter()
        w = run_python(WRITE.format(rows=args.rows, l1=args.l1, l2=args.l2, path=path, parts=8, dirs=dirs))
        print(f"wrote {args.rows:,} rows ({w['bytes'] / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    results = {}
    ref = None
    try:
        for kind in cases:
            sample = (args.sample or 0) if kind == "memory" else 0
            if kind == "memory" and args.sample == 0:
                continue
            theta_ref = None if ref is None or args.sample else ref["theta"]
            fit = kind == "memory" or not args.no_fit
            code = CASE.format(kind=kind, path=path, formula=FORMULA, sample=sample, theta_ref=theta_ref, fit=fit)
            r = run_python(textwrap.dedent(code), timeout=7200)
            r["load"] = uptime()
            results[kind] = r
            if kind == "memory" and not args.sample:
                ref = r
            _print(r, ref if not args.sample else None)
    finally:
        if not args.keep:
            Path(path).unlink(missing_ok=True)
            shutil.rmtree(path + ".d", ignore_errors=True)
    print(json.dumps(results, default=str))


def _print(r: dict, ref: dict | None) -> None:
    import numpy as np

    rows_s = r["nobs"] / r["seconds_pass"] if r["seconds_pass"] > 0 else float("nan")
    rows_cpu = r["nobs"] / r["cpu_pass"] if r["cpu_pass"] > 0 else float("nan")
    fitted = f"{r['evaluations']} evaluations" if r["evaluations"] else "no fit (--no-fit)"
    line = (f"{r['kind']:>9}: n={r['nobs']:,} total {r['seconds_total']:.1f} s, pass {r['seconds_pass']:.1f} s "
            f"({rows_s / 1e6:.2f} M rows/s; CPU {r['cpu_pass']:.1f} s, {rows_cpu / 1e6:.2f} M rows per CPU s), "
            f"{fitted}, evaluation {r['eval_seconds'] * 1e3:.0f} ms (first {r['first_eval_seconds']:.1f} s), "
            f"peak RSS {r['peak_rss_mb'] / 1024:.2f} GiB (after the pass {r['rss_pass_mb'] / 1024:.2f}), "
            f"load {r['load']}")  # fmt: skip
    print(line)
    if ref is not None and r is not ref and r["evaluations"]:
        d_obj = abs(r["objective"] - ref["objective"]) / abs(ref["objective"])
        d_fix = float(np.max(np.abs(np.subtract(r["fixef"], ref["fixef"]))))
        d_th = float(np.max(np.abs(np.subtract(r["theta"], ref["theta"]))))
        d_crit = abs(r["crit_at_ref"] - ref["objective"]) / abs(ref["objective"])
        print(f"{'':>11}vs memory: criterion {d_obj:.1e} (rel), fixef {d_fix:.1e}, theta {d_th:.1e}, "
              f"criterion at the same theta {d_crit:.1e} (rel); eval time ratio "
              f"{r['eval_seconds'] / ref['eval_seconds']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
