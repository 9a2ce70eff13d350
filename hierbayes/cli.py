"""The ``hierbayes`` command line.

    hierbayes run models/sleepstudy.toml --out results/ [--fast] [--quiet]
    hierbayes fit "Reaction ~ Days + (Days | Subject)" --data sleepstudy.csv [--engine reml|ml|bayes]
    hierbayes models

Exit codes: 0 success; 2 bad input (spec, formula, data, options), reported
in one line ``error: ...`` without a traceback; 1 a fit or an output step
failed unexpectedly (with the traceback, for a bug report). Output piped into
a command that stops reading (``hierbayes models | head -1``) ends quietly.
``hierbayes run`` reports each step as it starts and ends on stderr (``--quiet``: not).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path

import pandas as pd

from hierbayes._warnings import ignore_not_actionable
from hierbayes.errors import HierbayesError
from hierbayes.model import Model
from hierbayes.runner import run_spec
from hierbayes.spec import load_spec

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """A command-line problem reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (``error: ...``) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def one_line(message: str) -> str:
    """A multi-line hierbayes message in one line: caret lines dropped, the others joined with " | "."""
    lines = [ln.strip() for ln in str(message).splitlines()]
    return " | ".join(ln for ln in lines if ln and set(ln) - {"^", " "})


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {value}")
        return value

    return parse


def models_dir() -> Path | None:
    """The folder of bundled specs: ./models, else the source tree's models/ (editable install)."""
    for cand in (Path.cwd() / "models", Path(__file__).resolve().parents[1] / "models"):
        if cand.is_dir() and any(cand.glob("*.toml")):
            return cand
    return None


def resolve_spec(name: str) -> Path:
    """A spec path, or the name of a bundled spec (``sleepstudy`` -> models/sleepstudy.toml)."""
    path = Path(name)
    if path.exists() or path.suffix == ".toml":
        return path
    folder = models_dir()
    if folder is not None and (folder / f"{name}.toml").is_file():
        return folder / f"{name}.toml"
    return path


def _cmd_models(args: argparse.Namespace) -> int:
    folder = models_dir()
    if folder is None:
        raise BadInput("no models/ folder found (run from the repository root)")
    for path in sorted(folder.glob("*.toml")):
        spec = load_spec(path)
        print(f"{path.stem:<26} {spec.formula}")
        print(f"{'':<26} {spec.title} [{', '.join(spec.engines)}]")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(resolve_spec(args.spec))
    out = Path(args.out) / spec.name
    for folder in (Path(args.out), out):
        if folder.exists() and not folder.is_dir():
            raise BadInput(f"--out {args.out}: {folder} is a file, not a folder; give a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--out {args.out}: cannot create {out} ({exc.strerror or exc})") from None

    def log(line: str) -> None:
        print(f"hierbayes run {spec.name}: {line}", file=sys.stderr, flush=True)

    # progress bars of the sampler and the bootstrap: when asked, else when stderr is a terminal; never with --quiet
    bars = False if args.quiet else (sys.stderr.isatty() if args.progress is None else args.progress)
    try:
        result = run_spec(spec, out, fast=args.fast, progressbar=bars, log=None if args.quiet else log)
    except HierbayesError as exc:
        text = one_line(str(exc))
        raise BadInput(text if text.startswith(str(spec.path)) else f"{spec.path}: {text}") from None
    print(f"\n{spec.title}: done. Outputs in {result.out}/")
    for label, path in result.files:
        print(f"  {label:<28} {path}")
    if result.warnings:
        print(f"\n{len(result.warnings)} warning(s) (also in the report):")
        for w in result.warnings:
            print(f"  - {w.splitlines()[0]}")
    return EXIT_OK


def _cmd_fit(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not data.is_file():
        raise BadInput(f"no data file at {data}")
    try:
        df = pd.read_csv(data)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise BadInput(f"--data {data} could not be read as CSV ({type(exc).__name__}: {one_line(str(exc))})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        ignore_not_actionable()  # "always" would bring back the warnings that ask nothing of the user
        model = Model(args.formula, df, family=args.family, link=args.link)
        kwargs = {}
        if args.engine == "bayes":
            kwargs = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "random_seed": args.seed}
        fit = model.fit(args.engine, **kwargs)
    print(fit.summary())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hierbayes", description="Multilevel regression: REML/ML and Bayes, side by side.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a model spec (TOML) and write tables, plots, posterior and a report")
    r.add_argument("spec", help="path to a spec, or the name of a bundled one (see `hierbayes models`)")
    r.add_argument("--out", default="results", help="outputs go to <out>/<spec name>/ (default: results)")
    r.add_argument("--fast", action="store_true", help="few draws (200 tune + 200 draws, 2 chains) for a quick look")
    r.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress bars of the sampler and the bootstrap (default: when stderr is a terminal)",
    )
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress: neither the steps nor the bars")
    r.set_defaults(func=_cmd_run)
    f = sub.add_parser("fit", help="fit one formula to a CSV file and print the summary")
    f.add_argument("formula", help='an lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    f.add_argument("--data", required=True, help="CSV file")
    f.add_argument("--engine", choices=("reml", "ml", "bayes"), default="reml")
    f.add_argument("--family", default="gaussian")
    f.add_argument("--link", default=None)
    f.add_argument("--draws", type=_count(1), default=1000)
    f.add_argument("--tune", type=_count(0), default=1000)
    f.add_argument("--chains", type=_count(1), default=4)
    f.add_argument("--seed", type=int, default=None)
    f.set_defaults(func=_cmd_fit)
    m = sub.add_parser("models", help="list the bundled model specs")
    m.set_defaults(func=_cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierbayes`` command."""
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        # the reader stopped (`hierbayes models | head -1`): nothing more to say; keep Python's exit-time
        # flush of stdout from raising again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (HierbayesError, BadInput) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure: say so, keep the traceback for a bug report
        traceback.print_exc()
        print("error: hierbayes failed unexpectedly (traceback above)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
