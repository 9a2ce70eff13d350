"""Render the README's example figures into docs/images/ (committed PNGs).

Run from the repository root::

    python docs/make_images.py            # all figures (a few minutes: two Bayesian fits)
    python docs/make_images.py --fast     # few draws, for checking the script itself

Figures: sleepstudy ``Reaction ~ Days + (Days | Subject)`` by REML and by
Bayes (shrinkage, caterpillar, pooling, forest, posterior predictive check,
diagnostics) and High School and Beyond ``mathach ~ 1 + (1 | school)``
(empirical Bayes school means against school size, caterpillar of 160 schools).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import hierbayes as hb

OUT = Path(__file__).resolve().parent / "images"
DPI = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="few draws (for checking the script)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/images)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sampling = dict(draws=200, tune=200, chains=2) if args.fast else dict(draws=1000, tune=1000, chains=4)

    sleep = hb.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    reml = hb.lmer(formula, sleep)
    post = hb.bayes(formula, sleep, random_seed=2024, progressbar=False, **sampling)
    _save(hb.plots.shrinkage(reml, post), args.out / "sleepstudy_shrinkage.png")
    _save(hb.plots.caterpillar(reml, post), args.out / "sleepstudy_caterpillar.png")
    _save(hb.plots.pooling(reml, post), args.out / "sleepstudy_pooling.png")
    _save(hb.plots.forest(reml, post, intervals="profile"), args.out / "sleepstudy_forest.png")
    _save(hb.plots.ppc(reml, post, nsim=100, seed=1), args.out / "sleepstudy_ppc.png")
    _save(hb.plots.diagnostics(reml, post), args.out / "sleepstudy_diagnostics.png")
    print(hb.compare(reml, post, intervals="profile"))

    hsb = hb.datasets.load("hsb")
    null = "mathach ~ 1 + (1 | school)"
    hsb_reml = hb.lmer(null, hsb)
    hsb_post = hb.bayes(null, hsb, random_seed=2024, progressbar=False, **sampling)
    _save(hb.plots.shrinkage(hsb_reml, hsb_post), args.out / "hsb_shrinkage.png")
    _save(hb.plots.caterpillar(hsb_reml, hsb_post), args.out / "hsb_caterpillar.png")


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    print(f"wrote {path} ({path.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        main()
    print(f"done in {time.perf_counter() - start:.0f} s")
