"""tidy / augment against lmerTest's tables and the fits' own extractors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hierbayes.tables import augment, tidy
from tests.refdata import assert_close, cases
from tests.tables import fits

COLUMNS = ["effect", "group", "term", "estimate", "std.error", "statistic", "df", "p.value", "conf.low", "conf.high"]


def test_tidy_fixed_rows_are_lmertest_satterthwaite() -> None:
    ref = pd.DataFrame(cases("inference")["sleep_slope_reml"]["coef_satterthwaite"]).set_index("term")
    t = fits.reml(fits.SLEEP, "sleepstudy").tidy()
    assert t.columns.tolist() == COLUMNS
    fixed = t[t["effect"] == "fixed"].set_index("term")
    assert_close(fixed["estimate"], ref["Estimate"], rtol=1e-5)
    assert_close(fixed["std.error"], ref["Std. Error"], rtol=1e-4)
    assert_close(fixed["df"], ref["df"], rtol=1e-3)
    assert_close(fixed["statistic"], ref["t value"], rtol=1e-4)
    ran = t[t["effect"] == "ran_pars"]
    assert ran["term"].tolist() == ["sd__(Intercept)", "sd__Days", "cor__(Intercept).Days", "sd__Observation"]
    assert ran["group"].tolist() == ["Subject"] * 3 + ["Residual"]
    assert ran[["statistic", "df", "p.value"]].isna().all().all()


def test_tidy_glmm_has_z_tests_without_df() -> None:
    g = fits.glmm()
    t = tidy(g, effects=("fixed",))
    ct = g.coef_table()
    assert np.allclose(t["statistic"], ct["z value"]) and np.allclose(t["p.value"], ct["Pr(>|z|)"])
    assert t["df"].isna().all()


def test_tidy_ran_vals_have_conditional_sd_intervals() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    t = tidy(fit, effects=("ran_vals",), conf_level=0.9)
    assert len(t) == 36 and "level" in t.columns
    row = t[(t["level"] == "309") & (t["term"] == "Days")].iloc[0]
    sd = np.sqrt(fit.ranef_condvar["Subject"].loc["309", "Days"])
    assert row["estimate"] == pytest.approx(fit.ranef["Subject"].loc["309", "Days"])
    assert row["std.error"] == pytest.approx(sd)
    assert row["conf.high"] - row["estimate"] == pytest.approx(1.6448536 * sd, rel=1e-6)
    with pytest.raises(ValueError, match="effects"):
        tidy(fit, effects=("random",))


def test_augment_rows_add_up_and_align_with_the_users_rows() -> None:
    data = fits.data("sleepstudy").copy()
    data.index = [f"r{i}" for i in range(len(data))]
    data.loc["r3", "Reaction"] = np.nan
    fit = fits._quiet(__import__("hierbayes").lmer, fits.SLEEP, data)
    a = augment(fit)
    assert list(a.index) == [i for i in data.index if i != "r3"]
    assert np.allclose(a[".fitted"] + a[".resid"], a["Reaction"])
    fe = fit.fixef
    assert np.allclose(a[".fixed"], fe["(Intercept)"] + fe["Days"] * a["Days"])
    full = fit.augment(data=data)
    assert list(full.index) == list(data.index) and np.isnan(full.loc["r3", ".fitted"])
    assert full.loc["r4", ".fitted"] == a.loc["r4", ".fitted"]


def test_bayes_tidy_and_augment() -> None:
    post = fits.bayes()
    t = post.tidy(conf_level=0.5)
    days = post.fixef_draws().sel(fixef="Days").values.ravel()
    row = t[t["term"] == "Days"].iloc[0]
    assert row["estimate"] == pytest.approx(days.mean()) and row["std.error"] == pytest.approx(days.std())
    assert row["conf.low"] == pytest.approx(np.quantile(days, 0.25))
    assert np.isnan(row["statistic"]) and np.isnan(row["p.value"])
    a = post.augment(prob=0.9)
    assert {".lower", ".upper"} <= set(a.columns)
    assert (a[".lower"] < a[".fitted"]).all() and (a[".fitted"] < a[".upper"]).all()
    inside = ((a["Reaction"] >= a[".lower"]) & (a["Reaction"] <= a[".upper"])).mean()
    assert 0.8 < inside <= 1.0  # a 90% predictive interval covers about 90% of the data it was fitted to
    pp = post.idata.posterior_predictive["y"].values.reshape(-1, post.nobs)
    assert a[".upper"].iloc[0] == pytest.approx(np.quantile(pp[:, 0], 0.95))
