"""hb.bayes (gaussian, marginalized) on data read in pieces: the same model as on the in-memory frame."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.bayesian.blocked import gaussian_crossproducts
from hierbayes.bayesian.model import build
from hierbayes.bayesian.priors import default_priors
from hierbayes.errors import DataError, ModelError
from hierbayes.sources import readers
from tests.sources.test_parquet import crossed

FORMULA = "y ~ x + (1 | g1) + (1 | g2)"


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(readers, "BATCH_ROWS", 400)


@pytest.fixture(scope="module")
def frame():
    return crossed(1500, seed=7)


def _models(frame, path, formula=FORMULA):
    frame.to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hb.Model(formula, frame), hb.Model(formula, path)


@pytest.mark.parametrize("formula", [FORMULA, "y ~ x + trt + (x | g1)"])
def test_same_model(frame, tmp_path, formula):
    """Same default priors, same cross-products, same log-density (to rounding)."""
    mem, src = _models(frame, tmp_path / "d.parquet", formula)
    pa, pb = default_priors(mem.design, mem.family), default_priors(src.design, src.family)
    assert list(pa) == list(pb)
    for k in pa:
        assert pa[k].dist == pb[k].dist
        for (na, va), (nb, vb) in zip(pa[k].params, pb[k].params, strict=True):
            assert na == nb and va == pytest.approx(vb, rel=1e-12, abs=1e-12)
    a, b = gaussian_crossproducts(mem.design), gaussian_crossproducts(src.design)
    assert abs(a.yty - b.yty) <= 1e-12 * a.yty
    np.testing.assert_allclose(b.XtX, a.XtX, rtol=1e-12)
    np.testing.assert_allclose(b.Z1ty, a.Z1ty, rtol=1e-10, atol=1e-9)
    m1, m2 = build(mem.design, mem.family, None).pymc_model, build(src.design, src.family, None).pymc_model
    point = m1.initial_point(random_seed=3)
    point = {k: v + 0.1 for k, v in point.items()}
    l1, l2 = m1.compile_logp()(point), m2.compile_logp()(point)
    assert abs(l1 - l2) <= 1e-9 * abs(l1)


@pytest.mark.slow
def test_sample_from_parquet(frame, tmp_path):
    _, src = _models(frame, tmp_path / "d.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = src.fit("bayes", draws=400, tune=400, chains=2, random_seed=1, progressbar=False)
        reml = hb.lmer(FORMULA, frame)
    assert fit.max_rhat < 1.01
    sd = np.sqrt(np.diag(reml.vcov.to_numpy()))
    assert np.all(np.abs(fit.fixef.to_numpy() - reml.fixef.to_numpy()) < 4 * sd)
    assert "observed_data" not in fit.idata.children
    new = frame.iloc[:20]
    assert np.isfinite(fit.predict(new)).sum() >= 18
    with pytest.raises(DataError, match="does not keep"):
        fit.predict()
    with pytest.raises(ModelError, match=r"integrated out|integrates"):
        src.fit("bayes", marginalize=False)
