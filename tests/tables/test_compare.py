"""hb.compare: rows, intervals and the printed table, for REML/ML, GLMM and posterior fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.errors import ModelError
from hierbayes.tables import parameter_table
from tests.refdata import assert_close, cases
from tests.tables import fits

SLEEP2_REF = cases("inference")["sleep2_reml"]


def _ref_confint(key: str) -> pd.DataFrame:
    rows = SLEEP2_REF[key]["rows"]
    return pd.DataFrame({"2.5 %": [r["lower"] for r in rows], "97.5 %": [r["upper"] for r in rows]},
                        index=[r["term"] for r in rows])  # fmt: skip


def test_rows_follow_broom_names_and_lme4_order() -> None:
    table = hb.compare(fits.reml(fits.SLEEP, "sleepstudy")).frame
    assert table.index.names == ["effect", "group", "term"]
    assert list(table.index) == [
        ("fixed", "", "(Intercept)"), ("fixed", "", "Days"), ("ran_pars", "Subject", "sd__(Intercept)"),
        ("ran_pars", "Subject", "sd__Days"), ("ran_pars", "Subject", "cor__(Intercept).Days"),
        ("ran_pars", "Residual", "sd__Observation"),
    ]  # fmt: skip


def test_reml_values_are_the_fits_and_wald_intervals_match_lme4() -> None:
    fit = fits.reml(fits.SLEEP2, "sleep2")
    t = hb.compare(fit, intervals="wald").frame["REML"]
    vc = fit.varcorr
    assert t.loc[("ran_pars", "Subject", "sd__days_deprived"), "estimate"] == pytest.approx(vc["sdcor"][1])
    assert t.loc[("ran_pars", "Subject", "cor__(Intercept).days_deprived"), "estimate"] == pytest.approx(vc["sdcor"][2])
    assert t.loc[("ran_pars", "Residual", "sd__Observation"), "estimate"] == pytest.approx(fit.sigma)
    wald = _ref_confint("confint_wald").dropna()
    fixed = t.xs("fixed", level="effect").droplevel("group")
    assert_close(fixed.loc[wald.index, "conf.low"], wald["2.5 %"], rtol=1e-5)
    assert_close(fixed.loc[wald.index, "conf.high"], wald["97.5 %"], rtol=1e-5)
    assert set(fixed["interval"]) == {"Wald"}
    ran = t.xs("ran_pars", level="effect")
    assert ran["conf.low"].isna().all() and set(ran["interval"]) == {"none"}


def test_default_intervals_are_profile_intervals_for_every_parameter() -> None:
    """By default no row shows "—": REML SDs and correlations get lme4's default (profile) intervals (issue 17)."""
    fit = fits.reml(fits.SLEEP2, "sleep2")
    table = hb.compare(fit)
    t = table.frame["REML"]
    assert set(t["interval"]) == {"profile"} and t[["conf.low", "conf.high"]].notna().all().all()
    prof = _ref_confint("confint_profile")
    assert t.loc[("ran_pars", "Subject", "sd__(Intercept)"), "conf.low"] == pytest.approx(prof.loc[".sig01", "2.5 %"],
                                                                                         rel=1e-3)  # fmt: skip
    assert "—" not in str(table)
    assert "SDs, correlations and sigma profile" in str(table)
    # a GLMM too, and the same numbers in a tidy table and a forest plot
    g = fits.glmm()
    assert set(hb.compare(g).frame[("ML", "interval")]) == {"profile"}
    tidy = fit.tidy()
    assert np.allclose(tidy["conf.low"].to_numpy(), t["conf.low"].to_numpy())


def test_prob_sets_the_wald_width() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    t = hb.compare(fit, prob=0.8, intervals="wald").frame["REML"].loc[("fixed", "", "Days")]
    se = np.sqrt(fit.vcov.loc["Days", "Days"])
    assert t["conf.high"] - t["estimate"] == pytest.approx(stats.norm.ppf(0.9) * se)


def test_confint_frame_is_mapped_to_sd_and_correlation_rows() -> None:
    """lme4's profile rows (.sig01 = SD intercept, .sig02 = correlation, .sig03 = SD slope) land on their rows."""
    fit = fits.reml(fits.SLEEP2, "sleep2")
    prof = _ref_confint("confint_profile")
    t = hb.compare(fit, intervals=prof).frame["REML"]
    assert t.loc[("ran_pars", "Subject", "sd__(Intercept)"), "conf.low"] == prof.loc[".sig01", "2.5 %"]
    assert t.loc[("ran_pars", "Subject", "cor__(Intercept).days_deprived"), "conf.high"] == prof.loc[".sig02", "97.5 %"]
    assert t.loc[("ran_pars", "Subject", "sd__days_deprived"), "conf.low"] == prof.loc[".sig03", "2.5 %"]
    assert t.loc[("ran_pars", "Residual", "sd__Observation"), "conf.high"] == prof.loc[".sigma", "97.5 %"]
    assert t.loc[("fixed", "", "days_deprived"), "conf.low"] == prof.loc["days_deprived", "2.5 %"]
    # every interval brackets its estimate
    assert (t["conf.low"] < t["estimate"]).all() and (t["estimate"] < t["conf.high"]).all()


def test_uncorrelated_bars_get_their_own_groups() -> None:
    t = hb.compare(fits.reml("Reaction ~ Days + (Days || Subject)", "sleepstudy")).frame
    assert ("ran_pars", "Subject.1", "sd__Days") in t.index
    assert not any(term.startswith("cor__") for term in t.index.get_level_values("term"))


def test_two_frequentist_fits_side_by_side_and_labels() -> None:
    reml, ml = fits.reml(fits.SLEEP, "sleepstudy"), fits.reml(fits.SLEEP, "sleepstudy", reml=False)
    c = hb.compare(reml, ml)
    assert c.labels == ["REML", "ML"]
    assert c.frame[("ML", "estimate")].loc[("ran_pars", "Subject", "sd__(Intercept)")] == pytest.approx(
        ml.varcorr["sdcor"][0]
    )
    assert hb.compare(reml, reml).labels == ["REML 1", "REML 2"]
    assert hb.compare(reml, ml, labels=["a", "b"]).labels == ["a", "b"]
    with pytest.raises(ModelError, match="distinct"):
        hb.compare(reml, ml, labels=["a", "a"])
    with pytest.raises(ModelError, match="at least one"):
        hb.compare()


def test_glmm_has_no_residual_row() -> None:
    g = fits.glmm()
    t = hb.compare(g).frame
    assert "Residual" not in t.index.get_level_values("group")
    assert t.loc[("ran_pars", "herd", "sd__(Intercept)"), ("ML", "estimate")] == pytest.approx(g.varcorr["sdcor"][0])


def test_printed_table_lines_up_every_parameter() -> None:
    c = hb.compare(fits.reml(fits.SLEEP, "sleepstudy"))
    text = str(c)
    for label in ("(Intercept)", "SD Days", "Cor (Intercept), Days", "Residual", "95% interval"):
        assert label in text
    lines = text.splitlines()
    rows = [ln for ln in lines[3:] if ln.startswith("  ")]
    assert len(rows) == 6 and len({len(r) for r in rows} | {len(lines[1])}) == 1  # one width: columns line up
    assert "251.4" in text and "[237.7, 265.1]" in text  # lme4 profile: 237.68, 265.13
    md = c.to_markdown()
    assert md.splitlines()[0].startswith("| Parameter | REML estimate")
    assert "Subject SD (Intercept)" in md
    assert "<table>" in c._repr_html_()


def test_parameter_table_rejects_bad_arguments() -> None:
    fit = fits.reml(fits.SLEEP, "sleepstudy")
    with pytest.raises(ValueError, match="prob"):
        parameter_table(fit, prob=1.5)
    with pytest.raises(ValueError, match="intervals"):
        parameter_table(fit, intervals="bogus")


# --- with a posterior ------------------------------------------------------------------------------
def test_posterior_columns_are_summaries_of_the_draws() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    c = hb.compare(reml, post, prob=0.9)
    assert c.labels == ["REML", "Bayes"]
    b = c.frame["Bayes"]
    assert "median" in b.columns and "median" not in c.frame["REML"].columns
    days = post.fixef_draws().sel(fixef="Days").values.ravel()
    row = b.loc[("fixed", "", "Days")]
    assert row["estimate"] == pytest.approx(days.mean())
    assert row["median"] == pytest.approx(np.median(days))
    assert row["conf.low"] == pytest.approx(np.quantile(days, 0.05))
    assert row["conf.high"] == pytest.approx(np.quantile(days, 0.95))
    corr = post.corr_draws("Subject").isel(term=1, term2=0).values.ravel()
    assert b.loc[("ran_pars", "Subject", "cor__(Intercept).Days"), "estimate"] == pytest.approx(corr.mean())
    sigma = post.sigma_draws().values.ravel()
    assert b.loc[("ran_pars", "Residual", "sd__Observation"), "conf.high"] == pytest.approx(np.quantile(sigma, 0.95))
    assert set(b["interval"]) == {"ETI"}
    # the posterior agrees with REML about the fixed effects
    assert abs(row["estimate"] - reml.fixef["Days"]) < 2 * row["std.error"]
    text = str(c)
    assert "90% CrI" in text and "median" in text


def test_profile_intervals_are_lme4s() -> None:
    fit = fits.reml(fits.SLEEP2, "sleep2")
    prof = _ref_confint("confint_profile")
    t = hb.compare(fit, intervals="profile").frame["REML"]
    names = {
        ".sig01": ("ran_pars", "Subject", "sd__(Intercept)"),
        ".sigma": ("ran_pars", "Residual", "sd__Observation"),
        "(Intercept)": ("fixed", "", "(Intercept)"),
    }
    for row, key in names.items():
        assert t.loc[key, "conf.low"] == pytest.approx(prof.loc[row, "2.5 %"], rel=1e-3)
        assert t.loc[key, "conf.high"] == pytest.approx(prof.loc[row, "97.5 %"], rel=1e-3)
        assert t.loc[key, "interval"] == "profile"


def test_auto_uses_bootstrap_replicates_the_fit_holds() -> None:
    fit = fits._quiet(hb.lmer, "Reaction ~ Days + (1 | Subject)", fits.data("sleepstudy"))
    assert set(hb.compare(fit).frame[("REML", "interval")]) == {"profile"}
    fit.bootstrap(nsim=30, seed=1, n_jobs=1, progress=False)
    t = hb.compare(fit, prob=0.9).frame["REML"]
    ci = fit.boot.confint(0.9)
    assert set(t["interval"]) == {"boot"}
    assert t.loc[("ran_pars", "Subject", "sd__(Intercept)"), "conf.low"] == ci.iloc[0, 0]
    assert t.loc[("fixed", "", "Days"), "conf.high"] == ci.loc["Days"].iloc[1]
    assert set(hb.compare(fit, intervals="wald").frame[("REML", "interval")]) == {"Wald", "none"}
