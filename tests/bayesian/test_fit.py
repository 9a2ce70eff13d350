"""PosteriorFit: the extractors of LmerFit with the same names and shapes, the DataTree, predictions."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import SamplingWarning
from tests.bayesian.conftest import SLEEP, quiet_fit


def test_extractors_have_lmer_names_and_shapes(sleep_fit, sleep_lmer):
    assert sleep_fit.method == "bayes"
    pd.testing.assert_index_equal(sleep_fit.fixef.index, sleep_lmer.fixef.index)
    assert sleep_fit.ranef.keys() == sleep_lmer.ranef.keys()
    for g, re in sleep_lmer.ranef.items():
        pd.testing.assert_index_equal(sleep_fit.ranef[g].index, re.index)
        pd.testing.assert_index_equal(sleep_fit.ranef[g].columns, re.columns)
        assert sleep_fit.coef[g].shape == sleep_lmer.coef[g].shape
    vc, vl = sleep_fit.varcorr, sleep_lmer.varcorr
    assert list(vc.columns[:5]) == list(vl.columns)
    assert list(vc.columns[5:]) == ["sdcor_lower", "sdcor_upper"]
    pd.testing.assert_frame_equal(vc[["grp", "var1", "var2"]], vl[["grp", "var1", "var2"]])
    assert (vc["sdcor_lower"] < vc["sdcor"]).all() and (vc["sdcor"] < vc["sdcor_upper"]).all()
    assert isinstance(sleep_fit.sigma, float)
    assert sleep_fit.fitted.shape == sleep_lmer.fitted.shape == sleep_fit.residuals.shape
    assert sleep_fit.nobs == 180 and sleep_fit.ngroups == {"Subject": 18}
    # the point estimates are those of a sensible fit of sleepstudy
    np.testing.assert_allclose(sleep_fit.fixef, sleep_lmer.fixef, atol=3.0)
    assert np.corrcoef(sleep_fit.fitted, sleep_lmer.fitted)[0, 1] > 0.99


def test_summary_uses_readable_names(sleep_fit):
    s = sleep_fit.summary()
    assert list(s.index) == [
        "b[(Intercept)]", "b[Days]", "sd[Subject:(Intercept)]", "sd[Subject:Days]",
        "corr[Subject:(Intercept),Days]", "sigma",
    ]  # fmt: skip
    assert {"mean", "sd", "eti_2.5%", "eti_97.5%", "ess_bulk", "r_hat"} <= set(s.columns)
    with_re = sleep_fit.summary(ranef=True, prob=0.9)
    assert "r[Subject:308,Days]" in with_re.index and "eti_5%" in with_re.columns


def test_datatree_groups_and_arviz_functions(sleep_fit):
    import xarray as xr

    idata = sleep_fit.idata
    assert isinstance(idata, xr.DataTree) and sleep_fit.datatree is idata
    assert set(idata.children) == {"posterior", "sample_stats", "observed_data", "log_likelihood",
                                   "posterior_predictive"}  # fmt: skip
    post = idata.posterior
    assert post["r__Subject"].dims == ("chain", "draw", "Subject__level", "Subject__term")
    assert post["beta"].dims == ("chain", "draw", "fixef")
    assert idata.log_likelihood["y"].shape == (2, 1000, 180)
    assert idata.posterior.attrs["inference_library"] == sleep_fit.info.sampler == "nutpie"  # the compiled backend
    assert f"NUTS: nutpie {sleep_fit.info.sampler_version} (compiled log-density)" in repr(sleep_fit)
    loo = az.loo(idata, pointwise=True)
    assert np.isfinite(loo.elpd) and loo.pareto_k.shape == (180,)
    assert sleep_fit.loo().elpd == loo.elpd
    cmp = az.compare({"slopes": idata, "again": idata}, round_to="none")  # "auto" rounds elpd by its SE (to tens)
    assert list(cmp.index) == ["slopes", "again"] and np.allclose(cmp["elpd"], loo.elpd, rtol=1e-12)
    # ArviZ's summary of the raw variables: one row per element, ArviZ 1.x columns
    s = az.summary(idata, var_names=["beta", "sigma"], round_to="none")
    assert list(s.index) == ["beta[(Intercept)]", "beta[Days]", "sigma"]
    np.testing.assert_allclose(s["mean"], [*sleep_fit.fixef, sleep_fit.sigma])
    assert {"ess_bulk", "r_hat", "mcse_mean"} <= set(s.columns)


def test_binomial_trials_are_constant_data():
    cbpp = hb.datasets.load("cbpp")
    m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    fit = quiet_fit(m, draws=50, tune=50, chains=1, random_seed=2, warn=False, log_likelihood=False,
                    posterior_predictive=False)  # fmt: skip
    np.testing.assert_array_equal(fit.idata.constant_data["trials"].values, cbpp["size"])
    np.testing.assert_array_equal(fit.idata.observed_data["y"].values, cbpp["incidence"])
    assert set(fit.idata.children) == {"posterior", "sample_stats", "observed_data", "constant_data"}


def test_draw_accessors_and_intervals(sleep_fit):
    r = sleep_fit.ranef_draws("Subject")
    assert r.dims == ("chain", "draw", "level", "term")
    assert list(r.term.values) == ["(Intercept)", "Days"] and r.sizes["level"] == 18
    assert sleep_fit.sd_draws("Subject").dims == ("chain", "draw", "term")
    assert sleep_fit.corr_draws("Subject").dims == ("chain", "draw", "term", "term2")
    assert sleep_fit.cov_draws("Subject").sizes == {"chain": 2, "draw": 1000, "term": 2, "term2": 2}
    fe = sleep_fit.fixef_interval(prob=0.5)
    wide = sleep_fit.fixef_interval()
    assert (wide["lower"] < fe["lower"]).all() and (fe["upper"] < wide["upper"]).all()
    tab = sleep_fit.ranef_interval("Subject")
    assert tab.shape == (36, 4) and tab.index.names == ["level", "term"]
    with pytest.raises(KeyError, match="no grouping factor 'Sbj'"):
        sleep_fit.ranef_draws("Sbj")


def test_predict_new_levels(sleep_fit, sleep_data):
    new = pd.DataFrame({"Days": [0.0, 5.0, 5.0], "Subject": ["308", "999", "999"]})
    with pytest.raises(hb.DataError, match="new levels detected in newdata"):
        sleep_fit.predict(new)  # lme4's default: allow.new.levels = FALSE
    pop = sleep_fit.predict(new, allow_new_levels=True)
    fe = sleep_fit.fixef
    assert pop[1] == pytest.approx(fe["(Intercept)"] + 5 * fe["Days"])
    assert pop[0] == pytest.approx(sleep_fit.predict(new.iloc[:1])[0])
    assert pop[0] != pytest.approx(pop[1], abs=1.0)  # a seen subject keeps its own effect
    draws_pop = sleep_fit.predict(new, kind="draws", allow_new_levels=True)
    draws_new = sleep_fit.predict(new, new_levels="sample", kind="draws", random_seed=1)
    assert draws_new.dims == ("chain", "draw", "obs")
    # a new subject's effect adds the between-subject spread to the uncertainty
    assert float(draws_new[:, :, 1].std()) > 2 * float(draws_pop[:, :, 1].std())
    # rows of the same new level share one effect per draw
    np.testing.assert_array_equal(draws_new[:, :, 1].values, draws_new[:, :, 2].values)
    again = sleep_fit.predict(new, new_levels="sample", kind="draws", random_seed=1)
    np.testing.assert_array_equal(draws_new.values, again.values)
    with pytest.raises(hb.DataError, match="not seen when fitting: 999"):
        sleep_fit.predict(new, new_levels="error")
    pp = sleep_fit.predict(kind="predictive", random_seed=2)
    assert pp.shape == (2, 1000, 180)
    assert float(pp.std(("chain", "draw")).mean()) > sleep_fit.sigma * 0.9
    np.testing.assert_allclose(sleep_fit.predict(re_form="~0"), sleep_fit.design.X @ sleep_fit.fixef.to_numpy())


def test_same_seed_same_draws_and_data_untouched(sleep_data):
    before = sleep_data.copy(deep=True)
    m = hb.Model("Reaction ~ Days + (1 | Subject)", sleep_data)
    a = quiet_fit(m, draws=60, tune=60, chains=2, random_seed=5, warn=False)
    b = quiet_fit(m, draws=60, tune=60, chains=2, random_seed=5, warn=False)
    c = quiet_fit(m, draws=60, tune=60, chains=2, random_seed=6, warn=False)
    for v in ("beta", "sigma", "r__Subject"):
        np.testing.assert_array_equal(a.posterior[v].values, b.posterior[v].values)
    np.testing.assert_array_equal(a.idata.posterior_predictive["y"].values, b.idata.posterior_predictive["y"].values)
    assert not np.array_equal(a.posterior["beta"].values, c.posterior["beta"].values)
    pd.testing.assert_frame_equal(sleep_data, before)


def test_poor_sampling_is_warned_and_counted(sleep_data):
    m = hb.Model(SLEEP, sleep_data)
    with pytest.warns(SamplingWarning, match="effective sample size") as rec:
        fit = quiet_fit(m, draws=15, tune=15, chains=2, random_seed=1)
    assert any("Draw more" in str(w.message) for w in rec if w.category is SamplingWarning)
    assert fit.min_ess_bulk < 200 and isinstance(fit.n_divergences, int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        quiet_fit(m, draws=15, tune=15, chains=2, random_seed=1, warn=False)


def test_store_switches_and_no_residual_row_without_sigma():
    cbpp = hb.datasets.load("cbpp")
    m = hb.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    fit = quiet_fit(m, draws=150, tune=300, chains=2, random_seed=3, posterior_predictive=False)
    assert "posterior_predictive" not in fit.idata.children and "log_likelihood" in fit.idata.children
    assert fit.sigma is None and "Residual" not in set(fit.varcorr["grp"])
    p = fit.fitted
    assert ((p > 0) & (p < 1)).all()
    # (no value check here: these short chains need not converge; the binomial posterior's values are checked
    # on converged chains in test_families.py)
