"""Sampler settings and samplers: every bad setting is a ModelError naming it, before anything compiles."""

from __future__ import annotations

import importlib.util
import time

import pytest

import hierbayes as hb
from hierbayes.bayesian.sampling import SAMPLER_PACKAGES

FORMULA = "Reaction ~ Days + (1 | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return hb.datasets.load("sleepstudy")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"draws": 0}, "draws must be at least 1, not 0"),
        ({"draws": 10.5}, "draws must be an integer, not 10.5"),
        ({"draws": "100"}, "draws must be an integer, not '100'"),
        ({"chains": 0}, "chains must be at least 1, not 0"),
        ({"chains": True}, "chains must be an integer, not True"),
        ({"tune": -1}, "tune must be at least 0, not -1"),
        ({"target_accept": 1.0}, "target_accept must be a number strictly between 0 and 1, not 1.0"),
        ({"target_accept": 0}, "target_accept must be a number strictly between 0 and 1, not 0"),
        ({"target_accept": "high"}, "target_accept must be a number strictly between 0 and 1"),
        ({"random_seed": -3}, "random_seed must be at least 0"),
        ({"cores": 0}, "cores must be at least 1"),
        ({"sampler": "stan"}, "sampler must be None or one of 'pymc', 'nutpie', 'numpyro', 'blackjax', not 'stan'"),
        ({"progressbar": "yes"}, "progressbar must be True, False or None"),
        ({"marginalize": "some"}, "marginalize must be True, False, None or one of"),
        ({"draw": 100}, r"hb.bayes\(\) got unknown keyword argument\(s\) 'draw' \('draw': did you mean 'draws'\?\)"),
    ],
)
def test_bad_settings_are_model_errors_before_compiling(sleep, kwargs, message):
    t = time.perf_counter()
    with pytest.raises(hb.ModelError, match=message):
        hb.bayes(FORMULA, sleep, **kwargs)
    assert time.perf_counter() - t < 5  # nothing was compiled or sampled


@pytest.mark.parametrize("sampler", sorted(SAMPLER_PACKAGES))
def test_a_missing_sampler_names_the_extra_to_install(sleep, sampler):
    missing = [m for m in SAMPLER_PACKAGES[sampler] if importlib.util.find_spec(m) is None]
    if not missing:
        pytest.skip(f"{sampler} is installed")
    with pytest.raises(hb.ModelError, match=rf"pip install 'hierbayes\[{sampler}\]'"):
        hb.bayes(FORMULA, sleep, sampler=sampler, draws=10, tune=10)


def test_nutpie_runs_and_is_recorded(sleep):
    pytest.importorskip("nutpie")
    fit = hb.bayes(FORMULA, sleep, sampler="nutpie", draws=100, tune=100, chains=2, random_seed=1, warn=False)
    assert fit.info.sampler == "nutpie" and fit.info.sampler_version
    assert f"NUTS: nutpie {fit.info.sampler_version}" in repr(fit)
    assert fit.posterior["r__Subject"].shape == (2, 100, 18, 1)
    # the crossed model's likelihood is a NumPy Op: nutpie runs it through Numba's object mode
    pen = hb.bayes("diameter ~ 1 + (1 | plate) + (1 | sample)", hb.datasets.load("penicillin"), sampler="nutpie",
                   draws=100, tune=100, chains=1, random_seed=1, warn=False)  # fmt: skip
    assert pen.info.sampler == "nutpie" and pen.posterior["r__plate"].shape == (1, 100, 24, 1)
