"""How many external cases fit and match lme4, and why the others do not.

Run from the repository root::

    python -m tests.external.summary            # every case but the slow ones
    python -m tests.external.summary --slow     # every case
    python -m tests.external.summary ID [ID..]  # some cases, with every difference listed

Each case is fitted as ``test_external.py`` fits it and compared with the same tolerances.
Cases that fail are grouped by the root cause ``cases.py`` records for them; a failure with
no recorded cause is listed as ``UNEXPECTED``, a recorded one that now matches as ``FIXED``
(remove its ``XFAIL`` entry).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import defaultdict

from tests.external import loader
from tests.external.cases import ROOT_CAUSES, XFAIL, options


def run_case(case_id: str) -> tuple[str, str, float]:
    """(status, detail, seconds): status is MATCH, DIFF or ERROR."""
    case = loader.cases()[case_id]
    t0 = time.perf_counter()
    try:
        opts = options(case_id)
        fit = loader.fit_case(case, opts)
        problems = loader.compare(case, fit, opts.tolerance())
    except Exception as exc:  # the point is to report it
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/hierbayes/" in f.filename]
        where = f" (raised in {frames[-1].filename.split('/hierbayes/')[-1]}:{frames[-1].lineno})" if frames else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "ERROR", f"{type(exc).__name__}: {first}{where}", time.perf_counter() - t0
    status = "MATCH" if not problems else "DIFF"
    return status, "; ".join(problems), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="case ids (default: all)")
    parser.add_argument("--slow", action="store_true", help="include the cases marked slow")
    args = parser.parse_args(argv)
    all_cases = loader.cases()
    unknown = [i for i in args.ids if i not in all_cases]
    if unknown:
        parser.error(f"unknown case ids: {', '.join(unknown)}")
    ids = args.ids or [i for i, c in all_cases.items() if args.slow or not c["slow"]]
    skipped = len(all_cases) - len(ids)

    results: dict[str, tuple[str, str, float]] = {}
    for cid in ids:
        results[cid] = run_case(cid)
        status, detail, secs = results[cid]
        line = f"{cid:28s} {status:5s} {secs:7.2f}s"
        if status != "MATCH" and (args.ids or cid not in XFAIL):
            line += "  " + (detail if args.ids else detail[:200])
        print(line, flush=True)

    by_cause: dict[str, list[str]] = defaultdict(list)
    unexpected, fixed = [], []
    for cid, (status, _, _) in results.items():
        if status == "MATCH":
            if cid in XFAIL:
                fixed.append(cid)
        elif cid in XFAIL:
            for i, cause in enumerate(XFAIL[cid]):
                by_cause[cause].append(cid if i == 0 else f"{cid} (also; found behind {XFAIL[cid][0]})")
        else:
            unexpected.append(cid)

    n = len(results)
    n_match = sum(s == "MATCH" for s, _, _ in results.values())
    n_diff = sum(s == "DIFF" for s, _, _ in results.values())
    n_err = sum(s == "ERROR" for s, _, _ in results.values())
    print()
    print(
        f"{n} cases run ({skipped} slow ones skipped): {n_match} fit and match lme4, "
        f"{n_diff} fit with different numbers, {n_err} do not fit (error)"
    )
    for cause in ROOT_CAUSES:
        if by_cause.get(cause):
            first = sum(" " not in e for e in by_cause[cause])
            print(
                f"\n[{cause}] stops {first} case(s), also behind {len(by_cause[cause]) - first}: {ROOT_CAUSES[cause]}"
            )
            for entry in by_cause[cause]:
                cid = entry.split(" ")[0]
                print(f"    {entry} [{results[cid][0]}]")
    if unexpected:
        print(f"\nUNEXPECTED (failing, no recorded cause): {', '.join(unexpected)}")
    if fixed:
        print(f"\nFIXED (recorded cause, now matching: remove from XFAIL): {', '.join(fixed)}")
    print(f"\ntotal time {sum(t for _, _, t in results.values()):.1f}s")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
