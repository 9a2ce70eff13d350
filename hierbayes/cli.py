"""The ``hierbayes`` command line.

    hierbayes run models/sleepstudy.toml --out results/ [--fast]
    hierbayes fit "Reaction ~ Days + (Days | Subject)" --data sleepstudy.csv [--engine reml|ml|bayes]
    hierbayes models

Exit codes: 0 success; 2 bad input (spec, formula, data, options); 1 a fit
or an output step failed unexpectedly.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


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
    from hierbayes.spec import load_spec

    folder = models_dir()
    if folder is None:
        print("no models/ folder found (run from the repository root)", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in sorted(folder.glob("*.toml")):
        spec = load_spec(path)
        print(f"{path.stem:<26} {spec.formula}")
        print(f"{'':<26} {spec.title} [{', '.join(spec.engines)}]")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from hierbayes.runner import run_spec
    from hierbayes.spec import load_spec

    spec = load_spec(resolve_spec(args.spec))
    out = Path(args.out) / spec.name
    result = run_spec(spec, out, fast=args.fast, progress=None if args.progress is None else args.progress)
    print(f"\n{spec.title}: done. Outputs in {result.out}/")
    for label, path in result.files:
        print(f"  {label:<28} {path}")
    if result.warnings:
        print(f"\n{len(result.warnings)} warning(s) (also in the report):")
        for w in result.warnings:
            print(f"  - {w.splitlines()[0]}")
    return EXIT_OK


def _cmd_fit(args: argparse.Namespace) -> int:
    import pandas as pd

    from hierbayes.model import Model

    data = Path(args.data)
    if not data.is_file():
        print(f"error: no data file at {data}", file=sys.stderr)
        return EXIT_BAD_INPUT
    df = pd.read_csv(data)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        model = Model(args.formula, df, family=args.family, link=args.link)
        kwargs = {}
        if args.engine == "bayes":
            kwargs = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "random_seed": args.seed}
        fit = model.fit(args.engine, **kwargs)
    print(fit.summary())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hierbayes", description="Multilevel regression: REML/ML and Bayes, side by side.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a model spec (TOML) and write tables, plots, posterior and a report")
    r.add_argument("spec", help="path to a spec, or the name of a bundled one (see `hierbayes models`)")
    r.add_argument("--out", default="results", help="outputs go to <out>/<spec name>/ (default: results)")
    r.add_argument("--fast", action="store_true", help="few draws (200 tune + 200 draws, 2 chains) for a quick look")
    r.add_argument("--progress", dest="progress", action="store_true", default=None, help="force progress bars")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    r.set_defaults(func=_cmd_run)
    f = sub.add_parser("fit", help="fit one formula to a CSV file and print the summary")
    f.add_argument("formula", help='an lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    f.add_argument("--data", required=True, help="CSV file")
    f.add_argument("--engine", choices=("reml", "ml", "bayes"), default="reml")
    f.add_argument("--family", default="gaussian")
    f.add_argument("--link", default=None)
    f.add_argument("--draws", type=int, default=1000)
    f.add_argument("--tune", type=int, default=1000)
    f.add_argument("--chains", type=int, default=4)
    f.add_argument("--seed", type=int, default=None)
    f.set_defaults(func=_cmd_fit)
    m = sub.add_parser("models", help="list the bundled model specs")
    m.set_defaults(func=_cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierbayes`` command."""
    from hierbayes.errors import HierbayesError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HierbayesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure: say so, keep the traceback for a bug report
        import traceback

        traceback.print_exc()
        print("error: hierbayes failed unexpectedly (traceback above)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
