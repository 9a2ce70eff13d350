"""What hb.predictions, hb.comparisons and hb.slopes compute for REML/ML and GLMM fits, and emmeans on a posterior.

The delta method is checked against its definition: the gradient of the
reported quantity in the fixed effects, by finite differences of the quantity
recomputed with perturbed fixed effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import hierbayes as hb
from hierbayes.interpret.comparisons import comparisons_with_draws, slopes_with_draws
from hierbayes.interpret.predictions import predictions_with_draws
from tests.interpret import refcases as rc


@pytest.fixture(scope="module")
def sleep():
    return rc.fit("sleep_slope")


@pytest.fixture(scope="module")
def cbpp():
    return rc.fit("cbpp")


def _se(fit, jac):
    V = fit.vcov.to_numpy()
    return np.sqrt(np.einsum("ij,jk,ik->i", jac, V, jac))


def test_unit_level_predictions_are_the_fitted_values(sleep, cbpp):
    p = hb.predictions(sleep)
    assert p.columns.tolist() == ["Days", "Subject", "estimate", "std_error", "lower", "upper"]
    np.testing.assert_allclose(p["estimate"], sleep.fitted)
    q = hb.predictions(cbpp)
    np.testing.assert_allclose(q["estimate"], cbpp.fitted)
    a = hb.predictions(cbpp, average_by="all")
    assert a.columns.tolist() == ["estimate", "std_error", "lower", "upper"]
    assert a["estimate"].item() == pytest.approx(cbpp.fitted.mean())


def test_response_scale_intervals_map_the_link_interval(cbpp):
    p = hb.predictions(cbpp, conditional="period", re_form="~0")
    link = hb.predictions(cbpp, conditional="period", re_form="~0", type="link")
    np.testing.assert_allclose(p["estimate"], special.expit(link["estimate"]))
    np.testing.assert_allclose(p["lower"], special.expit(link["lower"]))
    np.testing.assert_allclose(p["upper"], special.expit(link["upper"]))
    mu = p["estimate"].to_numpy()
    np.testing.assert_allclose(p["std_error"], link["std_error"] * mu * (1 - mu))
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(link["upper"] - link["estimate"], z * link["std_error"])


def test_average_by_is_the_delta_method_of_the_average(cbpp):
    """The average over herds of the probability per period: its gradient is the average of the rows' gradients."""
    out, q = predictions_with_draws(cbpp, conditional=["period", "herd"], average_by="period")
    assert out.columns.tolist() == ["period", "estimate", "std_error", "lower", "upper"]
    beta = cbpp.fixef.to_numpy()
    rows = hb.predictions(cbpp, conditional=["period", "herd"])
    for i, period in enumerate(["1", "2", "3", "4"]):
        assert out["estimate"][i] == pytest.approx(rows.loc[rows.period == period, "estimate"].mean())
    # the gradient by finite differences of the averaged prediction in beta
    grid = hb.predictions(cbpp, conditional=["period", "herd"])[["period", "herd"]]
    ranef = cbpp.ranef["herd"]["(Intercept)"]
    X = cbpp.design.fixed_matrix(grid)
    b = ranef.loc[grid["herd"]].to_numpy()

    def averaged(bb):
        mu = special.expit(X @ bb + b)
        return pd.Series(mu).groupby(grid["period"].to_numpy()).mean().to_numpy()

    h = 1e-6
    J = np.stack([(averaged(beta + h * e) - averaged(beta - h * e)) / (2 * h) for e in np.eye(len(beta))], axis=1)
    np.testing.assert_allclose(q.jac, J, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(out["std_error"], _se(cbpp, J), rtol=1e-6)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(out["upper"], out["estimate"] + z * out["std_error"])


@pytest.mark.parametrize("comparison", ["diff", "ratio", "lift"])
def test_comparisons_by_the_delta_method(cbpp, comparison):
    out, q = comparisons_with_draws(cbpp, "period", conditional="herd", comparison=comparison)
    assert out.columns.tolist()[:4] == ["term", "estimate_type", "value", "herd"]
    assert out["value"].unique().tolist() == ["1_vs_2", "1_vs_3", "1_vs_4", "2_vs_3", "2_vs_4", "3_vs_4"]
    p = hb.predictions(cbpp, conditional=["herd", "period"]).set_index(["herd", "period"])["estimate"]
    row = out.iloc[1]  # herd 1, 1_vs_3
    a, b = p[(row["herd"], "1")], p[(row["herd"], "3")]
    want = {"diff": b - a, "ratio": b / a, "lift": (b - a) / a}[comparison]
    assert row["estimate"] == pytest.approx(want)
    beta = cbpp.fixef.to_numpy()
    X = cbpp.design.fixed_matrix(pd.DataFrame({"period": ["1", "3"]}))
    u = cbpp.ranef["herd"].loc[row["herd"], "(Intercept)"]

    def value(bb):
        mu = special.expit(X @ bb + u)
        return {"diff": mu[1] - mu[0], "ratio": mu[1] / mu[0], "lift": mu[1] / mu[0] - 1}[comparison]

    h = 1e-6
    g = np.array([(value(beta + h * e) - value(beta - h * e)) / (2 * h) for e in np.eye(len(beta))])
    np.testing.assert_allclose(q.jac[1], g, rtol=1e-5, atol=1e-10)
    assert row["std_error"] == pytest.approx(float(np.sqrt(g @ cbpp.vcov.to_numpy() @ g)), rel=1e-5)


def test_slopes_of_a_linear_model_are_its_coefficients(sleep):
    out = hb.slopes(sleep, "Days", conditional="Subject")
    coef = sleep.coef["Subject"]["Days"]
    np.testing.assert_allclose(out["estimate"], coef.loc[out["Subject"]].to_numpy(), rtol=1e-6)
    assert (out["value"] == 0.0).all()  # integer Days: bambi's default point is its mode, 0
    np.testing.assert_allclose(out["std_error"], np.sqrt(sleep.vcov.loc["Days", "Days"]), rtol=1e-6)
    pop = hb.slopes(sleep, {"Days": 4.5}, re_form="~0", average_by="all")
    assert pop["estimate"].item() == pytest.approx(sleep.fixef["Days"], rel=1e-6)


def test_elasticities(sleep):
    """eyex = dydx x / y, with the delta method through both (checked by finite differences in beta)."""
    out, q = slopes_with_draws(sleep, {"Days": 5}, re_form="~0", slope="eyex", average_by="all")
    b0, b1 = sleep.fixef
    assert out["estimate"].item() == pytest.approx(b1 * 5 / (b0 + 5 * b1), rel=1e-6)
    g = np.array([-b1 * 5 / (b0 + 5 * b1) ** 2, 5 * b0 / (b0 + 5 * b1) ** 2])
    np.testing.assert_allclose(q.jac[0], g, rtol=1e-4)


def test_ml_fit_and_transformed_response():
    """type='response' back-transforms a log response (as emmeans): exp of the link-scale prediction and interval."""
    fit = rc.fit("sleep_log")
    link = hb.predictions(fit, conditional={"Days": [0, 9]}, re_form="~0", type="link")
    resp = hb.predictions(fit, conditional={"Days": [0, 9]}, re_form="~0")
    np.testing.assert_allclose(resp["estimate"], np.exp(link["estimate"]))
    np.testing.assert_allclose(resp["lower"], np.exp(link["lower"]))
    emm = hb.emmeans(fit, "Days", at={"Days": [0, 9]}, type="response")
    np.testing.assert_allclose(emm["response"], resp["estimate"], rtol=1e-10)


def test_posterior_emmeans_are_summaries_of_the_draws(posterior):
    emm = hb.emmeans(posterior, "phase")
    assert emm.columns.tolist() == ["phase", "emmean", "lower.HPD", "upper.HPD"]
    beta = posterior.fixef_draws().values.reshape(-1, 3)
    days = float(posterior.design.frame.data["Days"].mean())
    draws = np.stack([beta[:, 0] + days * beta[:, 1], beta[:, 0] + days * beta[:, 1] + beta[:, 2]], axis=1)
    np.testing.assert_allclose(emm["emmean"], np.median(draws, axis=0))
    eti = hb.emmeans(posterior, "phase", ci_kind="eti")
    np.testing.assert_allclose(eti["lower.ETI"], np.quantile(draws, 0.025, axis=0))
    con = hb.contrast(emm, "revpairwise")
    assert con.columns.tolist() == ["contrast", "estimate", "lower.HPD", "upper.HPD"]
    assert con["contrast"].tolist() == ["deprived - adapt"]
    assert con["estimate"].item() == pytest.approx(np.median(draws[:, 1] - draws[:, 0]))
    # the same means from the REML fit of the model agree within a fraction of a posterior SD
    reml = hb.lmer("Reaction ~ Days + phase + (Days || Subject)", posterior.model.data)
    r = hb.emmeans(reml, "phase")
    sd = draws.std(axis=0)
    assert (np.abs(r["emmean"].to_numpy() - emm["emmean"].to_numpy()) / sd < 0.3).all()
    with pytest.raises(hb.errors.ArgumentError, match="degrees of freedom do not apply"):
        hb.emmeans(posterior, "phase", df="satterthwaite")


def test_posterior_response_scale_predictions_and_target(posterior):
    p = hb.predictions(posterior, conditional={"Days": [0, 9], "Subject": ["308"]}, target="Reaction",
                       random_seed=1)  # fmt: skip
    m = hb.predictions(posterior, conditional={"Days": [0, 9], "Subject": ["308"]})
    assert "std_error" not in p.columns
    assert ((p["upper"] - p["lower"]) > (m["upper"] - m["lower"]) * 1.5).all()
    assert p.attrs["interval"] == "95% equal-tailed posterior predictive intervals (eti)"


def test_reml_and_bayes_side_by_side_in_one_figure(posterior):
    from tests.plots import readback

    reml = hb.lmer("Reaction ~ Days + phase + (Days || Subject)", posterior.model.data)
    fig = hb.plots.predictions(reml, posterior, conditional={"Days": [0, 2, 5, 9], "phase": ["deprived"]},
                               re_form="~0")  # fmt: skip
    lines = readback.lines(fig.axes[0])
    assert set(lines) >= {"REML (95% CI)", "Bayes (95% ETI)"}
    ours = hb.predictions(posterior, conditional={"Days": [0, 2, 5, 9], "phase": ["deprived"]}, re_form="~0")
    np.testing.assert_allclose(lines["Bayes (95% ETI)"][0].get_ydata(), ours["estimate"])
    assert lines["REML (95% CI)"][0].get_color() != lines["Bayes (95% ETI)"][0].get_color()
    fig = hb.plots.slopes(reml, posterior, wrt="Days", conditional="Subject", ci_kind="hdi")
    labels = [b["label"] for b in readback.errorbars(fig.axes[0])]
    assert labels == ["REML (95% CI)", "Bayes (95% HDI)"]
