"""ranova() with a residual structure against nlme's anova(full, reduced) (tests/reference/make_structures_ranova.R).

The structure stays in each reduced model with the full model's groups;
dropping the only random-effects term gives nlme's ``gls`` with the structure.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.refdata import reference
from tests.structures.nlme_cases import fit_case, nlme_cases

CASES = {"ovary_ar1_reml": False, "ovary_ar1_ml": True, "bodyweight_car1_reml": True,
         "orthodont_varident_slope_ml": False, "pixel_cs_reml": False}  # fmt: skip


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[pytest.mark.slow] if slow else []) for c, slow in CASES.items()]
)
def test_ranova_with_a_structure_matches_nlme_anova(case):
    ref = reference("structures_ranova")["cases"][case]
    tab = fit_case(nlme_cases()[case]).ranova()
    assert tab.index.tolist() == ["<none>", ref["row"]]
    ll = tab["logLik"].to_numpy()
    np.testing.assert_allclose(ll, [ref["logLik_full"], ref["logLik_reduced"]], rtol=1e-7)
    assert tab["LRT"].iloc[1] == pytest.approx(ref["LRT"], abs=1e-4)
    assert tab["Df"].iloc[1] == ref["df_full"] - ref["df_reduced"]
    assert tab["npar"].tolist() == [ref["df_full"], ref["df_reduced"]]
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"], rel=1e-4)
