"""Satterthwaite df with a residual structure against emmeans's appx-satterthwaite for lme.

References: tests/reference/make_structures_satterthwaite.R. emmeans's df use
nlme's finite-difference apVar and gradient (approximations), hierbayes's
tight numerical derivatives over ``(theta, phi, sigma)``: agreement to 1%.
The default df of a structured fit stay nlme's containment df (checked against
``fit$fixDF``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.refdata import reference
from tests.structures.nlme_cases import fit_case, nlme_cases

SLOW = {"bodyweight_car1_reml", "pixel_cs_reml"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=[pytest.mark.slow] if c in SLOW else [])
        for c in reference("structures_satterthwaite")["cases"]
    ],
)
def test_satterthwaite_df_with_a_structure_match_emmeans(case):
    ref = reference("structures_satterthwaite")["cases"][case]
    fit = fit_case(nlme_cases()[case])
    satt = fit.coef_table("satterthwaite")
    np.testing.assert_allclose(satt["df"].to_numpy(), ref["df"], rtol=0.01)
    np.testing.assert_allclose(satt["Std. Error"].to_numpy(), ref["se"], rtol=1e-5)
    default = fit.coef_table()  # nlme's containment df, the default with a structure
    np.testing.assert_array_equal(default["df"].to_numpy(), ref["containment"])
    assert "satterthwaite" in fit.summary(ddf="satterthwaite").__str__().lower()
    # the F tests use the same derivatives: the last (highest-order) 1-df term's DenDF is its t test's df
    tab = fit.anova()
    assert np.isfinite(tab["DenDF"]).all()
    if tab["NumDF"].iloc[-1] == 1:
        assert tab["DenDF"].iloc[-1] == pytest.approx(satt["df"].iloc[-1], rel=1e-8)
