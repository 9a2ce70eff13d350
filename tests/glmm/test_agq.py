"""nAGQ > 1 fits against glmer (cbpp, 25 and 5 nodes)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hierbayes as hb
from tests.glmm.cache import glmer_fit, tight
from tests.refdata import assert_close, named


@pytest.mark.parametrize(("case_id", "nagq"), [("cbpp_agq", 25), ("cbpp_agq5", 5)])
def test_agq_fit(case_id: str, nagq: int) -> None:
    ref = tight()["cases"][case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = glmer_fit("cbpp_agq", nAGQ=nagq)
    assert fit.nAGQ == nagq
    assert fit.deviance == pytest.approx(ref["minus2logLik"], rel=1e-8)
    se = np.sqrt(np.diag(np.array(ref["vcov"])))
    assert_close(fit.fixef, named(ref["beta"]), rtol=1e-4, atol=1e-4 * se)
    assert_close(fit.theta, named(ref["theta"]), rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), se, rtol=1e-4)
    assert f"Gauss-Hermite Quadrature, nAGQ = {nagq}) [glmerMod]" in str(fit.summary())
