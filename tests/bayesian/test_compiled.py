"""The compiled backend (hierbayes.bayesian.compiled) and the fit's lazily computed groups.

The compiled log-density must be PyMC's model's, term by term: its value (up to a constant) and gradient are
compared with PyTensor's compiled ``logp``/``dlogp`` of the same model at random points. Fits with it must give
the PyMC path's posterior (tests/bayesian/test_agreement.py compares the two samplers' draws; the slow
test_stack_agreement.py compares with the old stack's quantiles) and be reproducible draw for draw.
"""

from __future__ import annotations

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.bayesian.model import build
from hierbayes.bayesian.priors import Prior, resolve_priors
from tests.bayesian.conftest import SLEEP, quiet_fit

pytest.importorskip("nutpie")

from hierbayes.bayesian import compiled


def _check_against_pymc(model: hb.Model, n_points: int = 3) -> None:
    pset = resolve_priors(model.design, model.family, model.priors)
    pl, why = compiled.plan(model.design, model.family, pset, "full")
    assert pl is not None, why
    pm_model = build(model.design, model.family, model.priors, "full").pymc_model
    logp, dlogp = pm_model.compile_logp(mode="FAST_COMPILE"), pm_model.compile_dlogp(mode="FAST_COMPILE")
    start = pm_model.initial_point()
    sizes = [int(np.prod(start[v.name].shape)) for v in pm_model.value_vars]
    assert sum(sizes) == pl.n_dim
    rng = np.random.default_rng(0)
    mode, _ = compiled.start_point(pl)
    diffs = []
    for _ in range(n_points):
        x = mode + 0.3 * rng.standard_normal(pl.n_dim)
        parts = np.split(x, np.cumsum(sizes)[:-1])
        point = {v.name: part.reshape(start[v.name].shape) for v, part in zip(pm_model.value_vars, parts, strict=True)}
        ours, grad = compiled.logp(pl, x)
        diffs.append(ours - float(logp(point)))
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-7)  # the same density up to a constant


def test_compiled_density_equals_pymcs_correlated_bar(sleep_data):
    _check_against_pymc(hb.Model(SLEEP, sleep_data))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("formula", "priors"),
    [
        ("Reaction ~ Days + (1 | Subject)", None),
        (
            "Reaction ~ Days + (Days || Subject)",
            {"sd": Prior("HalfStudentT", nu=3, sigma=20), "sigma": Prior("Exponential", lam=0.05)},
        ),
        (
            "Reaction ~ Days + (Days | Subject)",
            {"sd[Subject]": Prior("HalfCauchy", beta=10), "eta": 1.5, "Days": Prior("Normal", mu=5, sigma=3)},
        ),
        ("Reaction ~ Days + D2 + (Days + D2 | Subject)", None),  # k = 3
    ],
)
def test_compiled_density_equals_pymcs(sleep_data, formula, priors):
    data = sleep_data.assign(D2=(sleep_data["Days"] - 4.5) ** 2 / 10)
    _check_against_pymc(hb.Model(formula, data, priors=priors))


def test_the_plan_refuses_what_it_does_not_implement(sleep_data):
    def why(formula, data, priors=None, family="gaussian", mode="full"):
        m = hb.Model(formula, data, family=family, priors=priors)
        pl, reason = compiled.plan(m.design, m.family, resolve_priors(m.design, m.family, priors), mode)
        assert pl is None
        return reason

    pen = hb.datasets.load("penicillin")
    assert why("diameter ~ 1 + (1 | plate) + (1 | sample)", pen) == "more than one grouping factor"
    assert why(SLEEP, sleep_data, {"Days": Prior("StudentT", nu=3)}) == "a fixed-effect prior other than Normal"
    assert "SD or sigma prior" in why(SLEEP, sleep_data, {"sigma": Prior("Gamma", alpha=2, beta=0.1)})
    assert why(SLEEP, sleep_data, mode="none") == "marginalize='none'"
    cbpp = hb.datasets.load("cbpp")
    assert why("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial") == (
        "the binomial family"
    )


def test_default_fit_is_compiled_lazy_and_reproducible(sleep_data, sleep_fit):
    """The default sampler on a one-factor gaussian model: nutpie on the compiled density, recorded and printed;
    log_likelihood and posterior_predictive computed on first access, the same for the same seed."""
    assert sleep_fit.info.backend == "compiled" and sleep_fit.info.sampler == "nutpie"
    assert "(compiled log-density)" in repr(sleep_fit)
    m = hb.Model("Reaction ~ Days + (Days | Subject)", sleep_data)
    a = quiet_fit(m, draws=100, tune=100, chains=2, random_seed=4, warn=False)
    assert a._pending is not None and set(a._idata.children) == {"posterior", "sample_stats", "observed_data"}
    assert a.info.stored == ("log_likelihood", "posterior_predictive")
    b = quiet_fit(m, draws=100, tune=100, chains=2, random_seed=4, warn=False)
    for v in ("beta", "sd__Subject", "corr__Subject", "sigma", "r__Subject"):
        np.testing.assert_array_equal(a.posterior[v].values, b.posterior[v].values)
    assert set(a.idata.children) >= {"log_likelihood", "posterior_predictive"} and a._pending is None
    for g in ("log_likelihood", "posterior_predictive"):
        np.testing.assert_array_equal(a.idata[g]["y"].values, b.idata[g]["y"].values)
    assert a.idata.posterior_predictive["y"].shape == (2, 100, 180)
    # the lazily computed log-likelihood is the gaussian density of y given each draw's fitted values
    mu = a.predict(kind="draws").values
    sigma = a.sigma_draws().values[:, :, None]
    y = np.asarray(a.design.y)
    expected = -0.5 * np.log(2 * np.pi * sigma**2) - 0.5 * ((y - mu) / sigma) ** 2
    np.testing.assert_allclose(a.idata.log_likelihood["y"].values, expected, rtol=1e-10)
    c = quiet_fit(m, draws=100, tune=100, chains=2, random_seed=5, warn=False)
    assert not np.array_equal(a.posterior["beta"].values, c.posterior["beta"].values)


def test_a_saved_fit_holds_the_lazy_groups(sleep_fit, tmp_path):
    sleep_fit.save(tmp_path / "fit.nc")
    back = hb.load(tmp_path / "fit.nc")
    assert back.info.backend == "compiled" and "(compiled log-density)" in repr(back)
    for g in ("log_likelihood", "posterior_predictive"):
        np.testing.assert_array_equal(back.idata[g]["y"].values, sleep_fit.idata[g]["y"].values)


def test_switched_off_groups_are_not_computed(sleep_data):
    m = hb.Model("Reaction ~ Days + (1 | Subject)", sleep_data)
    fit = quiet_fit(m, draws=50, tune=50, chains=1, random_seed=1, warn=False, log_likelihood=False,
                    posterior_predictive=False)  # fmt: skip
    assert fit._pending is None and fit.info.stored == ()
    assert "log_likelihood" not in fit.idata.children
    with pytest.raises(ValueError, match="no log_likelihood group"):
        fit.loo()


def test_pymc_keywords_and_sampler_pymc_keep_the_pymc_model(sleep_data):
    m = hb.Model("Reaction ~ Days + (1 | Subject)", sleep_data)
    fit = quiet_fit(m, draws=30, tune=30, chains=1, random_seed=1, warn=False, sampler="pymc")
    assert fit.info.backend == "pymc" and fit.info.sampler == "pymc" and "compiled" not in repr(fit)


def test_vectorized_diagnostics_equal_arviz_stats():
    """diagnose's vectorized R-hat and bulk/tail ESS are arviz-stats' numbers (autocorrelated, constant, discrete,
    odd-length draws)."""
    import xarray as xr
    from arviz_stats import ess, rhat

    from hierbayes.bayesian.diagnostics import _vectorized

    rng = np.random.default_rng(0)
    ar = np.zeros((4, 301, 3))
    e = rng.standard_normal((4, 301, 3))
    for t in range(1, 301):
        ar[:, t] = 0.8 * ar[:, t - 1] + e[:, t]
    ds = xr.Dataset({
        "ar": (("chain", "draw", "k"), ar),
        "shifted": (("chain", "draw"), rng.standard_normal((4, 301)) + 0.3 * np.arange(4)[:, None]),
        "constant": (("chain", "draw"), np.ones((4, 301))),
        "discrete": (("chain", "draw", "m", "n"), rng.integers(0, 3, (4, 301, 2, 2)).astype(float)),
    })  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):  # the constant draws' R-hat is NaN (as diagnose has it)
        bulk, tail, rh = _vectorized(ds)
        for ours, theirs in ((bulk, ess(ds, method="bulk")), (tail, ess(ds, method="tail")), (rh, rhat(ds))):
            for v in ds.data_vars:
                np.testing.assert_allclose(ours[v].values, theirs[v].values, rtol=1e-10, equal_nan=True)
        assert _vectorized(ds.assign(bad=ds["shifted"].where(ds["shifted"] < 2))) is None  # NaN: arviz-stats
