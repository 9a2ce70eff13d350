"""simulate() and the parametric bootstrap with a residual structure: moments of the simulated residuals.

The simulated residuals must have the fitted structure's covariance: within a
correlation group ``sigma^2 g_i g_j C_ij`` (AR(1): ``Phi^|lag|``; compound
symmetry: ``Rho``; varIdent: SD ratios by stratum), plus the random effects'
``sd^2`` when new ones are drawn (``use_re=False``).
"""

from __future__ import annotations

import numpy as np
import pytest

import hierbayes as hb
from tests.structures.nlme_cases import fit_case, nlme_cases

_FITS: dict = {}


def fitted(case_id: str):
    if case_id not in _FITS:
        _FITS[case_id] = fit_case(nlme_cases()[case_id])
    return _FITS[case_id]


def lag_pairs(fit, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i, j) of the pairs ``lag`` apart within a correlation group, in the sorted order."""
    bc = fit.structure.correlation
    o = bc.order
    g = bc.gcodes
    i = np.arange(len(o) - lag)
    same = g[i] == g[i + lag]
    return o[i[same]], o[i[same] + lag]


def test_simulated_ar1_residuals_have_the_fitted_covariance():
    fit = fitted("ovary_ar1_reml")
    nsim = 3000
    sims = fit.simulate(nsim=nsim, seed=3, use_re=True)  # conditional on the random effects: residuals only
    e = sims - fit.predict()[:, None]
    s2, phi = fit.sigma**2, fit.residual_params["Phi"]
    assert e.mean() == pytest.approx(0, abs=0.05)
    assert e.var() == pytest.approx(s2, rel=0.02)
    for lag in (1, 2, 3):
        i, j = lag_pairs(fit, lag)
        assert np.mean(e[i] * e[j]) == pytest.approx(s2 * phi**lag, rel=0.05)
    # new random effects (lme4's default): the Mare SD adds to every covariance within a mare
    y = fit.simulate(nsim=nsim, seed=4) - (fit.design.X @ fit.fixef.to_numpy())[:, None]
    sd2 = fit.sdcor[".sig01"] ** 2
    i, j = lag_pairs(fit, 1)
    assert np.mean(y[i] * y[j]) == pytest.approx(sd2 + s2 * phi, rel=0.05)
    assert y.var() == pytest.approx(sd2 + s2, rel=0.05)


def test_simulated_variance_function_and_compound_symmetry():
    fit = fitted("orthodont_varident_reml")
    e = fit.simulate(nsim=3000, seed=5, use_re=True) - fit.predict()[:, None]
    male = fit.model.data["Sex"].to_numpy() == "Male"
    ratio = np.sqrt(e[male].var() / e[~male].var())
    assert ratio == pytest.approx(fit.residual_params["Male"], rel=0.03)
    assert e[~male].var() == pytest.approx(fit.sigma**2, rel=0.03)
    cs = fitted("pixel_cs_reml")
    e = cs.simulate(nsim=3000, seed=6, use_re=True) - cs.predict()[:, None]
    i, j = lag_pairs(cs, 1)
    rho = np.mean(e[i] * e[j]) / e.var()
    assert rho == pytest.approx(cs.residual_params["Rho"], abs=0.02)


def test_parametric_bootstrap_refits_the_structure():
    fit = fitted("ovary_ar1_reml")
    boot = fit.bootstrap(nsim=8, seed=1, n_jobs=1)
    assert boot.t.columns.tolist()[:3] == [".sig01", ".sigma", "Phi"]
    assert boot.n_failed == 0 and boot.t["Phi"].between(0.2, 0.9).all()
    assert boot.t0["Phi"] == fit.residual_params["Phi"]
    with pytest.raises(hb.ModelError, match="case bootstrap"):
        fit.bootstrap(nsim=2, resample="Mare")


@pytest.mark.slow
def test_bootstrap_distribution_of_phi_is_centred_on_the_estimate():
    fit = fitted("ovary_ar1_ml")
    boot = fit.bootstrap(nsim=200, seed=2)
    t = boot.t.dropna()
    assert boot.n_failed == 0
    # ML's Phi is biased downward in short series; its bootstrap mean sits below, within a few SEs
    assert abs(t["Phi"].mean() - fit.residual_params["Phi"]) < 0.06
    assert t["(Intercept)"].mean() == pytest.approx(fit.fixef["(Intercept)"], abs=3 * t["(Intercept)"].std() / 14)
    ci = fit.confint(method="boot", nsim=200, seed=2)
    prof = fit.confint(parm=["Phi"])
    assert ci.loc["Phi"].to_numpy() == pytest.approx(prof.loc["Phi"].to_numpy(), abs=0.08)
