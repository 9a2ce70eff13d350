"""fit.save / hb.load: every number survives the round trip and predict(newdata) still works."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _same_extractors(a, b) -> None:
    pd.testing.assert_series_equal(a.fixef, b.fixef)
    pd.testing.assert_frame_equal(a.varcorr, b.varcorr)
    for group in a.ranef:
        pd.testing.assert_frame_equal(a.ranef[group], b.ranef[group])
        pd.testing.assert_frame_equal(a.coef[group], b.coef[group])
    assert a.sigma == b.sigma
    assert (a.nobs, a.ngroups, a.n_dropped) == (b.nobs, b.ngroups, b.n_dropped)
    np.testing.assert_array_equal(a.fitted, b.fitted)


def test_lmer_round_trip_keeps_every_number(tmp_path: Path) -> None:
    hsb = hb.datasets.load("hsb").copy()
    hsb.loc[[3, 10], "mathach"] = np.nan  # dropped rows must be dropped (and counted) again
    fit = _quiet(hb.lmer, "mathach ~ sector * cses + (cses | school)", hsb)
    fit.save(tmp_path / "fit.nc")
    back = hb.load(tmp_path / "fit.nc")
    assert type(back) is type(fit) and back.n_dropped == 2
    _same_extractors(fit, back)
    pd.testing.assert_frame_equal(fit.vcov, back.vcov)
    np.testing.assert_array_equal(fit.estimates.theta, back.estimates.theta)
    for group in fit.ranef_condvar:
        pd.testing.assert_frame_equal(fit.ranef_condvar[group], back.ranef_condvar[group])
    assert (fit.loglik, fit.aic, fit.deviance, fit.reml_criterion) == (
        back.loglik,
        back.aic,
        back.deviance,
        back.reml_criterion,
    )
    assert str(fit.summary()) == str(back.summary())
    assert back.optinfo.feval == fit.optinfo.feval
    new = hsb.dropna().sample(50, random_state=1)
    new["school"] = new["school"].astype(str)
    new.loc[new.index[:3], "school"] = "a new school"
    np.testing.assert_array_equal(fit.predict(new), back.predict(new))
    assert list(back.design.x_names) == ["(Intercept)", "sectorCatholic", "cses", "sectorCatholic:cses"]


def test_glmer_round_trip_with_weights_array(tmp_path: Path) -> None:
    cbpp = hb.datasets.load("cbpp")
    prop = cbpp.assign(p=cbpp["incidence"] / cbpp["size"])
    fit = _quiet(hb.glmer, "p ~ period + (1 | herd)", prop, weights=prop["size"].to_numpy())
    fit.save(tmp_path / "g.nc")
    back = hb.load(tmp_path / "g.nc")
    _same_extractors(fit, back)
    pd.testing.assert_frame_equal(fit.vcov, back.vcov)
    assert back.deviance == fit.deviance
    assert str(fit.summary()) == str(back.summary())
    np.testing.assert_array_equal(fit.predict(prop.head(), type="response"), back.predict(prop.head(), type="response"))


def test_posterior_round_trip_keeps_draws_and_predicts(tmp_path: Path) -> None:
    sleep = hb.datasets.load("sleepstudy")
    fit = _quiet(hb.bayes, "Reaction ~ Days + (Days | Subject)", sleep, draws=100, tune=100, chains=2,
                 random_seed=3, progressbar=False)  # fmt: skip
    fit.save(tmp_path / "b.nc")
    back = hb.load(tmp_path / "b.nc")
    _same_extractors(fit, back)
    assert set(back.idata.children) == set(fit.idata.children)
    for group in fit.idata.children:
        xr_a, xr_b = fit.idata[group], back.idata[group]
        for var in xr_a.data_vars:
            np.testing.assert_array_equal(xr_a[var].values, xr_b[var].values)
    new = sleep.head(12).assign(Subject="someone new")
    np.testing.assert_array_equal(fit.predict(new), back.predict(new))
    assert back.info == fit.info


def test_load_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(hb.HierbayesError, match="no file"):
        hb.load(tmp_path / "missing.nc")
    import xarray as xr

    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(tmp_path / "other.nc", group="hierbayes")
    with pytest.raises(hb.HierbayesError, match="not written by hierbayes"):
        hb.load(tmp_path / "other.nc")
