"""Spec files in models/: every bundled spec validates and builds; bad specs get clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.spec import SpecError, load_spec

MODELS = Path(__file__).resolve().parents[1] / "models"
SPECS = sorted(MODELS.glob("*.toml"))


def test_the_required_analyses_are_bundled() -> None:
    formulas = {load_spec(p).formula for p in SPECS}
    for f in [
        "Reaction ~ Days + (1 | Subject)",
        "Reaction ~ Days + (Days | Subject)",
        "Reaction ~ Days + (Days || Subject)",
        "mathach ~ (1 | school)",
        "mathach ~ cses + (1 | school)",
    ]:
        assert f in formulas
    families = {load_spec(p).family for p in SPECS}
    assert {"binomial", "poisson"} <= families


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_bundled_spec_builds_its_model(path: Path) -> None:
    spec = load_spec(path)
    df, sim = spec.load_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        model = hb.Model(spec.formula, df, family=spec.family, link=spec.link, weights=spec.weights)
    assert model.design.n > 0
    assert (sim is not None) == ("simulate" in spec.data)
    assert spec.sampler_settings(fast=True)["draws"] <= 200


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            '[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\nfamly = "x"\n',
            "unknown key 'famly'.*family",
        ),
        ('[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\nfamily = "gausian"\n', "unknown family"),
        ('[data]\npath = "nope.csv"\n[model]\nformula = "y ~ (1|g)"\n', "nope.csv does not exist"),
        (
            '[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\n[fit]\nengines = ["remll"]\n',
            "did you mean 'reml'",
        ),
        (
            '[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\n[output]\nplots = ["qq"]\n',
            "plots has 'qq'",
        ),
        ('[data]\ndataset = "sleepstudy"\n', "missing the \\[model\\] table"),
        ('[data]\ndataset = "sleepstudy"\npath = "x.csv"\n[model]\nformula = "y ~ (1|g)"\n', "exactly one of"),
        ("[data\n", "not valid TOML"),
        (
            '[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\noffset = 3\n',
            "offset must be a column name",
        ),
        (
            '[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\nweights = ""\n',
            "weights must be a column name",
        ),
        ('titel = "x"\n[data]\ndataset = "sleepstudy"\n[model]\nformula = "y ~ (1|g)"\n', "unknown key 'titel'"),
    ],
)
def test_bad_specs_are_reported_with_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match) as err:
        load_spec(_write(tmp_path, text))
    assert "spec.toml" in str(err.value)


def test_offset_in_a_spec_is_lme4s_offset_argument(tmp_path: Path) -> None:
    text = (
        '[data]\ndataset = "sleepstudy"\n[model]\nformula = "Reaction ~ Days + (Days | Subject)"\n'
        'offset = "10 * Days"\n'
    )
    spec = load_spec(_write(tmp_path, text))
    assert spec.offset == "10 * Days"
    import hierbayes as hb

    sleep = hb.datasets.load("sleepstudy")
    model = hb.Model(spec.formula, sleep, offset=spec.offset)
    np.testing.assert_allclose(model.design.offset, 10 * sleep["Days"].to_numpy())
