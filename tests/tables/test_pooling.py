"""hb.pooling: complete, no and partial pooling against the sleep2 numbers of
Barr's *Learning Statistical Models Through Simulation in R* (ch. 5) and independent fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ModelError
from hierbayes.tables.pooling import no_pooling
from tests.tables import fits

#: Barr (ch. 5): lm(Reaction ~ days_deprived, sleep2)
SEED_COMPLETE = {"(Intercept)": 267.96742, "days_deprived": 11.43543}
#: Barr (ch. 5): per-subject intercept and slope of lm(Reaction ~ days_deprived * Subject) (three decimals printed)
SEED_NO_POOLING = {"308": (288.217, 21.690), "335": (262.874, -4.209)}
#: Barr (ch. 5): ranef(pp_mod) for two subjects
SEED_RANEF = {"308": (24.4992891, 8.6020000), "335": (-16.9737887, -12.0702333)}


@pytest.fixture(scope="module")
def sleep2_table() -> pd.DataFrame:
    return hb.pooling(fits.reml(fits.SLEEP2, "sleep2"))


def test_complete_pooling_is_lm_ignoring_subjects(sleep2_table) -> None:
    for term, value in SEED_COMPLETE.items():
        assert np.allclose(sleep2_table[("complete pooling", term)], value, atol=5e-6)


def test_no_pooling_is_a_line_per_subject(sleep2_table) -> None:
    for subject, (a, b) in SEED_NO_POOLING.items():
        row = sleep2_table.loc[subject, "no pooling"]
        assert row["(Intercept)"] == pytest.approx(a, abs=1.5e-3)
        assert row["days_deprived"] == pytest.approx(b, abs=1.5e-3)
    # and equals a separate least-squares line for every subject
    data = fits.data("sleep2")
    for subject, rows in data.groupby("Subject"):
        slope, intercept = np.polyfit(rows["days_deprived"], rows["Reaction"], 1)
        assert sleep2_table.loc[str(subject), ("no pooling", "(Intercept)")] == pytest.approx(intercept, rel=1e-9)
        assert sleep2_table.loc[str(subject), ("no pooling", "days_deprived")] == pytest.approx(slope, rel=1e-9)


def test_partial_pooling_is_fixef_plus_ranef(sleep2_table) -> None:
    fit = fits.reml(fits.SLEEP2, "sleep2")
    # SEED_RANEF are lme4's printed modes at its default stop, ~4e-4 short of the optimum on sleep2 (lme4 with
    # tightened tolerances and hierbayes agree to 1e-7 there): compared at 1e-3
    for subject, (u0, u1) in SEED_RANEF.items():
        row = sleep2_table.loc[subject, "partial pooling (REML)"]
        assert row["(Intercept)"] == pytest.approx(fit.fixef["(Intercept)"] + u0, abs=1e-3)
        assert row["days_deprived"] == pytest.approx(fit.fixef["days_deprived"] + u1, abs=1e-3)
    assert (sleep2_table["n"] == 8).all()
    # shrinkage: partial pooling lies between no pooling and the population line for the intercepts' spread
    spread = sleep2_table.xs("(Intercept)", axis=1, level="term").std()
    assert spread["partial pooling (REML)"] < spread["no pooling"]


def test_shared_fixed_effects_stay_common_and_level_constants_are_not_identified() -> None:
    """mathach ~ cses + sector + (1 | school): no pooling is lm(mathach ~ cses + school); sector is NaN."""
    import statsmodels.formula.api as smf

    data = fits.data("hsb")
    table = hb.pooling(fits.reml("mathach ~ cses + sector + (1 | school)", "hsb"))
    ols = smf.ols("mathach ~ 0 + C(school) + cses", data.assign(school=data["school"].astype(str))).fit()
    nop = table["no pooling"]
    assert np.allclose(nop["cses"], ols.params["cses"], rtol=1e-9)
    school = [f"C(school)[{s}]" for s in table.index]
    assert np.allclose(nop["(Intercept)"], ols.params[school].to_numpy(), rtol=1e-9)
    assert nop["sectorCatholic"].isna().all()
    assert table[("n", "")].sum() == len(data)


def test_levels_that_cannot_identify_their_line_get_nan() -> None:
    data = fits.data("sleepstudy")
    one_row = data[~((data["Subject"].astype(str) == "308") & (data["Days"] > 0))]
    fit = fits._quiet(hb.lmer, fits.SLEEP, one_row)
    nop = no_pooling(fit.design, fit.design.blocks[0])
    assert nop.loc["308"].isna().all()
    assert nop.drop(index="308").notna().all().all()


def test_bayes_column_and_group_argument() -> None:
    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    table = hb.pooling(reml, post, group="Subject")
    assert list(table.columns.get_level_values("pooling").unique()) == [
        "n", "complete pooling", "no pooling", "partial pooling (REML)", "partial pooling (Bayes)"
    ]  # fmt: skip
    assert np.allclose(table["partial pooling (Bayes)"], post.coef["Subject"].to_numpy())
    with pytest.raises(ModelError, match="no grouping factor 'school'"):
        hb.pooling(reml, group="school")
    with pytest.raises(ModelError, match="same response and data"):
        hb.pooling(reml, fits.reml(fits.SLEEP2, "sleep2"))


def test_glmm_pooling_is_glm_on_the_link_scale() -> None:
    """complete pooling = glm(cbind ~ period); no pooling = glm(cbind ~ 0 + herd + period) (statsmodels)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    g = fits.glmm()
    data = fits.data("cbpp").assign(herd=lambda d: d["herd"].astype(str), fail=lambda d: d["size"] - d["incidence"])
    table = hb.pooling(g)
    cp = smf.glm("incidence + fail ~ period", data, family=sm.families.Binomial()).fit()
    assert np.allclose(table["complete pooling"].iloc[0], cp.params.to_numpy(), rtol=1e-7)
    nop = smf.glm("incidence + fail ~ 0 + herd + period", data, family=sm.families.Binomial()).fit()
    herds = [f"herd[{h}]" for h in table.index]
    assert np.allclose(table[("no pooling", "(Intercept)")], nop.params[herds].to_numpy(), rtol=1e-7)
    assert np.allclose(table[("no pooling", "period4")], nop.params["period[T.4]"], rtol=1e-7)
    assert np.allclose(table["partial pooling (ML)"], g.coef["herd"].to_numpy())


def test_glmm_level_without_successes_gets_nan() -> None:
    data = fits.data("cbpp").copy()
    data.loc[data["herd"].astype(str) == "9", "incidence"] = 0
    g = fits._quiet(hb.glmer, fits.CBPP, data, family="binomial")
    nop = hb.pooling(g)["no pooling"]
    assert nop.loc["9", "(Intercept)"] != nop.loc["9", "(Intercept)"]  # NaN: the estimate runs off to -inf
    assert nop.drop(index="9")["(Intercept)"].notna().all() and nop["period2"].notna().all()
