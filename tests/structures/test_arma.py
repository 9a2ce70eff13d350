"""corARMA(p, q): ARMA autocorrelations against R's ARMAacf, fits against nlme (make_structures_arma.R).

Tolerances as the other nlme cases (issue 20): log-likelihood 1e-6 relative,
fixed effects 1e-5, SDs and ARMA coefficients 1e-4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import toeplitz

import hierbayes as hb
from hierbayes.structures.correlation import arma_acf
from tests.refdata import reference
from tests.structures.nlme_cases import data

OVARY = "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)"


def arma_ref() -> dict:
    return reference("structures_arma")


def test_arma_acf_matches_r():
    for case in arma_ref()["acf"]:
        got = arma_acf(np.array(case["ar"], float), np.array(case["ma"], float), 8)
        np.testing.assert_allclose(got, case["acf"], rtol=1e-12, atol=1e-14)


def test_arma_whitening_inverts_the_toeplitz_correlation():
    d = pd.DataFrame({"g": np.repeat(["a", "b"], [6, 4]), "t": [0, 1, 2, 4, 7, 8, 3, 4, 5, 9], "y": 0.0})
    bound = hb.corARMA("~ t | g", p=2, q=1).bind(d)
    u = bound.unconstrained(np.array([0.4, 0.2, -0.3]))
    np.testing.assert_allclose(bound.natural(u), [0.4, 0.2, -0.3], atol=1e-12)
    acf = arma_acf(np.array([0.4, 0.2]), np.array([-0.3]), 10)
    rng = np.random.default_rng(0)
    M = rng.standard_normal((10, 3))
    W, logdet = bound.whiten(M, u)
    want_logdet = 0.0
    for name, t in (("a", [0, 1, 2, 4, 7, 8]), ("b", [3, 4, 5, 9])):
        rows = np.flatnonzero(d["g"].to_numpy()[bound.order] == name)
        C = toeplitz(acf)[np.ix_(t, t)]  # the dense correlation of the group's positions
        L = np.linalg.cholesky(C)
        np.testing.assert_allclose(W[rows], np.linalg.solve(L, M[rows]), atol=1e-12)
        want_logdet += np.linalg.slogdet(C)[1]
    assert logdet == pytest.approx(want_logdet, rel=1e-12)
    with pytest.raises(hb.ArgumentError, match="p > 0 or q > 0"):
        hb.corARMA("~ 1 | g")
    with pytest.raises(hb.ArgumentError, match="stationary"):
        hb.corARMA("~ 1 | g", p=1, value=1.5).bind(d)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[] if c == "ovary_gaps_arma11_ml" else [pytest.mark.slow])
     for c in reference("structures_arma")["fits"]],
)  # fmt: skip
def test_arma_fits_match_nlme(case):
    ref = arma_ref()["fits"][case]
    fit = hb.lmer(OVARY, data(f"tests/reference/data/{ref['data']}"), REML=ref["REML"],
                  correlation=hb.corARMA(ref["form"], p=ref["p"], q=ref["q"]))  # fmt: skip
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert fit.loglik >= ref["logLik"] - 1e-6  # not a lower optimum than nlme's
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(ref["beta"].values()), rtol=1e-5)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert fit.sdcor[".sig01"] == pytest.approx(ref["sd_Mare"], rel=1e-4)
    assert list(fit.residual_params) == list(ref["residual_params"])
    np.testing.assert_allclose(list(fit.residual_params.values()), list(ref["residual_params"].values()), rtol=1e-4)


def test_arma_in_bayes_says_it_is_not_available():
    d = data("tests/reference/data/ovary.csv")
    with pytest.raises(hb.ModelError, match="corARMA"):
        hb.bayes(OVARY, d, correlation=hb.corARMA("~ 1 | Mare", p=1, q=1), draws=5, tune=5, chains=1)
