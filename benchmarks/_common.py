"""Helpers shared by the benchmark scripts: isolated timed runs, R runs, peak memory, tables.

Every measured case runs in its own process, so its peak resident memory is
its own (``ru_maxrss`` of that process) and caches are as a user would meet
them: "cold" is the first call in a fresh process, "warm" the median of the
calls after it. Bytecode caching is on in the child even where the
environment sets ``PYTHONDONTWRITEBYTECODE`` (this machine does), as in a
normal installation; otherwise every "cold" run would include compiling
hierbayes' sources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 3600) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object on its last line.

    ``peak_rss_mb`` (the child's maximum resident set size) is added.
    """
    wrapper = textwrap.dedent(
        """
        import json, resource, sys
        __result = {}
        exec(compile(sys.stdin.read(), "<bench>", "exec"))
        __result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(__result))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-c", wrapper], input=code, text=True, capture_output=True, timeout=timeout, cwd=ROOT,
        env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark case failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def have_r(packages: tuple[str, ...] = ("lme4",)) -> bool:
    """Whether Rscript is installed with the given packages."""
    if shutil.which("Rscript") is None:
        return False
    check = " && ".join(f"requireNamespace('{p}', quietly=TRUE)" for p in packages)
    proc = subprocess.run(["Rscript", "-e", f"quit(status = if ({check}) 0 else 1)"], capture_output=True)
    return proc.returncode == 0


def run_r(code: str, timeout: float = 3600) -> dict:
    """Run R code that assigns a named list ``result``; returns it (plus ``peak_rss_mb`` of the R process)."""
    script = code + "\ncat(jsonlite::toJSON(result, auto_unbox = TRUE, digits = NA), '\\n')\n"
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "Rscript", "-e", script],
        text=True,
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"R case failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_rss_mb"] = int(proc.stderr.strip().splitlines()[-1]) / 1024
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
