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
    np.testing.assert_array_equal(fit.predict(new, allow_new_levels=True), back.predict(new, allow_new_levels=True))
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
    np.testing.assert_array_equal(fit.predict(new, allow_new_levels=True), back.predict(new, allow_new_levels=True))
    assert back.info == fit.info


def test_load_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(hb.HierbayesError, match="no file"):
        hb.load(tmp_path / "missing.nc")
    import xarray as xr

    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(tmp_path / "other.nc", group="hierbayes")
    with pytest.raises(hb.HierbayesError, match="not written by hierbayes"):
        hb.load(tmp_path / "other.nc")


def test_save_to_a_missing_directory_or_under_a_file_names_the_path(tmp_path: Path) -> None:
    fit = _quiet(hb.lmer, "Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    with pytest.raises(hb.errors.FileError, match=r"the directory .*nowhere does not exist") as exc:
        fit.save(tmp_path / "nowhere" / "fit.nc")
    assert isinstance(exc.value, OSError)
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(hb.errors.FileError, match=r"plain.txt is a file, not a directory"):
        fit.save(tmp_path / "plain.txt" / "fit.nc")
    with pytest.raises(hb.errors.FileError, match="it is a directory"):
        fit.save(tmp_path)
    with pytest.raises(hb.errors.FileError, match="a file path"):
        fit.save(42)


def test_load_of_truncated_foreign_or_non_netcdf_files_names_the_file(tmp_path: Path) -> None:
    import xarray as xr

    fit = _quiet(hb.lmer, "Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    fit.save(tmp_path / "fit.nc")
    data = (tmp_path / "fit.nc").read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(hb.errors.FileError, match=r"cut.nc: the netCDF file is damaged or truncated"):
        hb.load(tmp_path / "cut.nc")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(hb.errors.FileError, match=r"notes.csv is not a netCDF file"):
        hb.load(tmp_path / "notes.csv")
    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(tmp_path / "foreign.nc")
    with pytest.raises(hb.errors.FileError, match=r"foreign.nc is a netCDF file not written by hierbayes.save"):
        hb.load(tmp_path / "foreign.nc")
    with pytest.raises(hb.errors.FileError, match="no file at"):
        hb.load(tmp_path / "absent.nc")


def _as_format_1(fit, path: Path) -> None:
    """Write ``fit`` as hierbayes did on ArviZ 0.x (file format 1).

    The layout is that of a file written by hierbayes 0.1.0 with arviz 0.23 / PyMC 5
    (``InferenceData.to_netcdf``, then the hierbayes group appended): at the root,
    one netCDF group per ArviZ group (posterior, posterior_predictive, log_likelihood,
    sample_stats, observed_data; no constant_data), each written by
    ``xarray.Dataset.to_netcdf(mode="a", group=...)``; PyMC 5's NUTS statistics
    (``reached_max_treedepth``, ``tree_depth``, ``lp``, ...); the posterior's attrs
    carry ``arviz_version``; the hierbayes group has ``format = 1`` and a
    ``SamplingInfo`` without ``sampler_version``.
    """
    import json

    import xarray as xr

    from hierbayes.io import GROUP

    fit.save(path.with_suffix(".new.nc"))
    with xr.open_dataset(path.with_suffix(".new.nc"), group=GROUP) as h:
        meta = h.load()
    meta.attrs["format"] = 1
    content = json.loads(str(meta["content_json"].values))
    content["fields"].pop("sampler_version")
    meta["content_json"] = xr.Variable((), json.dumps(content))
    stats = fit.idata["sample_stats"].to_dataset()
    stats = stats[[v for v in ("diverging", "reached_max_treedepth", "step_size", "tree_depth", "lp") if v in stats]]
    mode = "w"
    for group in ("posterior", "posterior_predictive", "log_likelihood", "sample_stats", "observed_data"):
        ds = stats if group == "sample_stats" else fit.idata[group].to_dataset()
        if group in ("posterior", "sample_stats"):
            ds = ds.assign_attrs(arviz_version="0.23.4", inference_library="pymc", inference_library_version="5.28.5")
        else:
            ds = ds.drop_attrs()
        ds.to_netcdf(path, mode=mode, group=group)
        mode = "a"
    meta.to_netcdf(path, mode="a", group=GROUP)


def test_a_file_written_before_arviz_1_still_loads(tmp_path: Path) -> None:
    import netCDF4

    sleep = hb.datasets.load("sleepstudy")
    fit = _quiet(hb.bayes, "Reaction ~ Days + (Days | Subject)", sleep, draws=60, tune=60, chains=2,
                 random_seed=3, progressbar=False, warn=False, sampler="pymc")  # fmt: skip
    _as_format_1(fit, tmp_path / "old.nc")
    with netCDF4.Dataset(tmp_path / "old.nc") as nc:  # the layout described above
        assert list(nc.groups) == ["posterior", "posterior_predictive", "log_likelihood", "sample_stats",
                                   "observed_data", "hierbayes"]  # fmt: skip
        assert nc["hierbayes"].getncattr("format") == 1
    back = hb.load(tmp_path / "old.nc")
    _same_extractors(fit, back)
    assert back.info.sampler == "pymc" and back.info.sampler_version == ""
    np.testing.assert_array_equal(back.posterior["r__Subject"].values, fit.posterior["r__Subject"].values)
    assert back.idata.posterior.attrs["arviz_version"] == "0.23.4"
    assert back.diagnostics == fit.diagnostics
    import arviz as az

    assert np.isfinite(az.loo(back.idata).elpd)


def test_a_file_from_a_newer_hierbayes_says_to_upgrade(tmp_path: Path) -> None:
    import xarray as xr

    xr.Dataset(attrs={"format": 99}).to_netcdf(tmp_path / "future.nc", group="hierbayes")
    with pytest.raises(hb.errors.FileError, match="newer hierbayes \\(file format 99\\); upgrade hierbayes"):
        hb.load(tmp_path / "future.nc")


def test_estimates_written_by_earlier_versions_are_rebuilt():
    """Classes named at their old place (reml/optimize.py, glmm/glm_family.py, one Family class) still load."""
    import xarray as xr

    from hierbayes._serialize import decode
    from hierbayes.families import Binomial
    from hierbayes.optim import OptSummary

    ds = xr.Dataset({"a": xr.Variable(("a_d0",), np.array([0.5, 1.0]))})
    node = {"dataclass": "hierbayes.reml.optimize:OptSummary", "fields": {
        "method": {"value": "BOBYQA (NLopt)"}, "initial": {"array": "a"}, "final": {"array": "a"},
        "lower": {"array": "a"}, "fmin": {"float": "1.5"}, "feval": {"int": 3}, "converged": {"value": True},
        "message": {"value": "NLOPT xtol reached"}, "seconds": {"float": "0.01"}}}  # fmt: skip
    opt = decode(node, ds)
    assert isinstance(opt, OptSummary) and opt.feval == 3 and opt.messages == () and opt.settings is None
    family = {"dataclass": "hierbayes.families:Family", "fields": {
        "name": {"value": "binomial"}, "link": {"dataclass": "hierbayes.families:Link", "fields": {
            "name": {"value": "probit"}}}}}  # fmt: skip
    fam = decode(family, ds)
    assert isinstance(fam, Binomial) and fam.link.name == "probit"
