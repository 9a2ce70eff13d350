"""Bad input to the interpret functions: a HierbayesError that names the culprit; the user's data untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.errors import ArgumentError, DataError, HierbayesError
from tests.interpret import refcases as rc


@pytest.fixture(scope="module")
def oats():
    return rc.fit("oats_N")


@pytest.fixture(scope="module")
def sleep():
    return rc.fit("sleep_slope")


@pytest.fixture(scope="module")
def cbpp():
    return rc.fit("cbpp")


@pytest.mark.parametrize(
    ("specs", "match"),
    [("Nitrogen", "'Nitrogen' is not a variable of the model .*N, Variety"),
     ("~ N | Block", "'Block' is a grouping factor"),
     ("yield", "that is the response"),
     (["N", 3], "specs must be"), (42, "specs must be"),
     ("pairwise ~ Nitrogen", "'Nitrogen' is not a variable")],
)  # fmt: skip
def test_specs_that_are_not_variables_of_the_model(oats, specs, match):
    with pytest.raises(ArgumentError, match=match):
        hb.emmeans(oats, specs)


def test_at_values_outside_a_factors_levels(oats):
    with pytest.raises(DataError, match=r"'0\.8cwt' is not a level of 'N' \(its levels: 0\.0cwt, 0\.2cwt"):
        hb.emmeans(oats, "N", at={"N": ["0.0cwt", "0.8cwt"]})
    with pytest.raises(ArgumentError, match="at=: 'nitro' is not a variable"):
        hb.emmeans(oats, "N", at={"nitro": [0.2]})
    with pytest.raises(DataError, match="not a number"):
        hb.emmeans(rc.fit("sleep_slope"), "Days", at={"Days": ["three"]})
    with pytest.raises(DataError, match="no values"):
        hb.emmeans(oats, "N", at={"N": []})
    with pytest.raises(ArgumentError, match="at must be a dict"):
        hb.emmeans(oats, "N", at=["N"])


def test_type_response_on_an_identity_link_is_the_link_scale(oats):
    link, resp = hb.emmeans(oats, "N"), hb.emmeans(oats, "N", type="response")
    pd.testing.assert_frame_equal(pd.DataFrame(link), pd.DataFrame(resp))
    assert "emmean" in resp.columns
    p1 = hb.predictions(oats, conditional="N", type="response", re_form="~0")
    p2 = hb.predictions(oats, conditional="N", type="link", re_form="~0")
    pd.testing.assert_frame_equal(p1, p2)


def test_a_contrast_of_one_level(sleep, oats):
    with pytest.raises(DataError, match=r"single mean .*nothing to compare"):
        hb.contrast(hb.emmeans(sleep, "Days"), "pairwise")
    with pytest.raises(DataError, match="single mean within each level of Variety"):
        hb.contrast(hb.emmeans(oats, "~ N | Variety", at={"N": ["0.2cwt"]}), "pairwise")
    with pytest.raises(DataError, match="at least two values"):
        hb.comparisons(sleep, {"Days": [3]})


def test_contrast_arguments(oats, cbpp):
    emm = hb.emmeans(oats, "N")
    with pytest.raises(ArgumentError, match="method must be one of"):
        hb.contrast(emm, "pairwize")
    with pytest.raises(ArgumentError, match="adjust must be one of"):
        hb.contrast(emm, "pairwise", adjust="scheffe")
    with pytest.raises(ArgumentError, match="ref=9 is out of range"):
        hb.contrast(emm, "trt.vs.ctrl", ref=9)
    with pytest.raises(ArgumentError, match=r"ref='0.9cwt' is not one of the levels"):
        hb.contrast(emm, "trt.vs.ctrl", ref="0.9cwt")
    with pytest.raises(ArgumentError, match="has 3 coefficients for 4 means"):
        hb.contrast(emm, {"odd": [1, -1, 0]})
    with pytest.raises(ArgumentError, match=r"'mvt' \(multivariate t.*pass adjust="):
        hb.contrast(emm, "consec")
    with pytest.raises(ArgumentError, match=r"needs a table made by hb.emmeans"):
        hb.contrast(pd.DataFrame(emm), "pairwise")
    with pytest.raises(ArgumentError, match="already a table of contrasts"):
        hb.contrast(hb.contrast(emm, "pairwise"), "pairwise")
    with pytest.raises(ArgumentError, match=r"by: .* not variables"):
        hb.contrast(emm, "pairwise", by="Variety")
    with pytest.raises(ArgumentError, match="asymptotic"):
        hb.emmeans(cbpp, "period", df="kenward-roger")
    with pytest.raises(ArgumentError, match="df must be one of"):
        hb.emmeans(oats, "N", df="containment")
    with pytest.raises(ArgumentError, match="type must be"):
        hb.emmeans(oats, "N", type="probability")
    with pytest.raises(ArgumentError, match="level"):
        hb.emmeans(oats, "N", level=95)


def test_custom_contrast_coefficients(oats):
    emm = hb.emmeans(oats, "N")
    con = hb.contrast(emm, {"linear": [-3, -1, 1, 3], "high vs low": [-0.5, -0.5, 0.5, 0.5]})
    assert con["contrast"].tolist() == ["linear", "high vs low"]
    est = emm["emmean"].to_numpy()
    np.testing.assert_allclose(con["estimate"], [np.dot([-3, -1, 1, 3], est), np.dot([-0.5, -0.5, 0.5, 0.5], est)])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [(lambda f: hb.predictions(f, conditional="Dayz"), ArgumentError, "'Dayz' is not a variable"),
     (lambda f: hb.predictions(f, conditional={"Subject": ["999"]}), DataError, "'999' is not a level of 'Subject'"),
     (lambda f: hb.predictions(f, conditional={"Days": ["x"]}), DataError, "not a number"),
     (lambda f: hb.predictions(f, conditional=3), ArgumentError, "conditional must be"),
     (lambda f: hb.predictions(f, average_by="Dayz"), ArgumentError, "average_by"),
     (lambda f: hb.predictions(f, target="sigma"), ArgumentError, "target must be"),
     (lambda f: hb.predictions(f, interval="credible"), ArgumentError, "interval must be"),
     (lambda f: hb.predictions(f, ci_kind="hpd"), ArgumentError, "ci_kind"),
     (lambda f: hb.predictions(f, re_form="~(1 | Dayz)"), HierbayesError, "Dayz"),
     (lambda f: hb.comparisons(f, "Subjectt"), ArgumentError, "'Subjectt' is not a variable"),
     (lambda f: hb.comparisons(f, {"Days": [1, 2], "Subject": ["308"]}), ArgumentError, "one variable"),
     (lambda f: hb.comparisons(f, "Days", comparison="odds"), ArgumentError, "comparison must be"),
     (lambda f: hb.slopes(f, "Subject"), ArgumentError, "factor"),
     (lambda f: hb.slopes(f, "Days", slope="dxdy"), ArgumentError, "slope must be"),
     (lambda f: hb.slopes(f, "Days", eps=0), ArgumentError, "eps"),
     (lambda f: hb.slopes(f, {"Days": [1, 2]}), ArgumentError, "one value")],
)  # fmt: skip
def test_predictions_comparisons_slopes_arguments(sleep, call, error, match):
    with pytest.raises(error, match=match):
        call(sleep)


@pytest.mark.parametrize("fn", [hb.emmeans, hb.predictions, hb.comparisons, hb.slopes])
def test_not_a_fit(fn):
    args = ("Days",) if fn is not hb.predictions else ()
    with pytest.raises(ArgumentError, match=r"takes a fitted model .* not DataFrame"):
        fn(hb.datasets.load("sleepstudy"), *args)


def test_the_users_data_is_not_modified():
    data = hb.datasets.load("sleepstudy")
    before = data.copy()
    fit = hb.lmer("Reaction ~ Days + (Days | Subject)", data)
    hb.predictions(fit, conditional="Days")
    hb.comparisons(fit, "Days", average_by="all")
    hb.slopes(fit, "Days", conditional="Subject")
    hb.contrast(hb.emmeans(fit, "Days", at={"Days": [0, 9]}), "pairwise")
    nd = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "NEW"]})
    nd_before = nd.copy()
    fit.predict(nd, interval="prediction", allow_new_levels=True, nsim=50)
    fit.predict(nd[["Days"]], re_form="~0", interval="prediction", nsim=50)
    pd.testing.assert_frame_equal(data, before)
    pd.testing.assert_frame_equal(nd, nd_before)
