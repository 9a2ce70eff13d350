"""Profile-likelihood intervals with a residual structure (``confint(method="profile")``, ``profile``).

References (tests/reference/make_structures_profile.R): nlme has no profile,
so R finds the exact 95% limits of nlme's ML log-likelihood by uniroot,
re-optimising every other parameter with ``lme`` at each value (the
structure's parameter held with ``fixed = TRUE``, a fixed effect moved into
the response). hierbayes's limits come from lme4's spline of the profile, so
they agree to 1e-4 (relative to the interval's width). sigma and the SDs
(which lme cannot hold) are checked by an independent re-optimisation of the
ML deviance at hierbayes's limits: it must rise by ``qchisq(0.95, 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from tests.refdata import reference
from tests.structures.nlme_cases import fit_case, nlme_cases

CUT = float(stats.chi2.ppf(0.95, 1))
_FITS: dict = {}


def fitted(case_id: str):
    if case_id not in _FITS:
        _FITS[case_id] = fit_case(nlme_cases()[case_id])
    return _FITS[case_id]


def profile_ref(case: str) -> dict:
    return reference("structures_profile")["cases"][case]


def check_against_r(ci, ref: dict, tol: float = 1e-4) -> None:
    for name, row in ci.iterrows():
        r = ref[name]
        width = r["upper"] - r["lower"]
        got = row.to_numpy()
        assert np.max(np.abs(got - [r["lower"], r["upper"]])) / width < tol, (name, got, r)


def test_ovary_ar1_profile_phi_and_intercept_match_nlme_limits():
    fit = fitted("ovary_ar1_reml")  # a REML fit is profiled through its ML refit, as lme4 does
    ci = fit.confint(parm=["Phi", "(Intercept)"])
    assert ci.index.tolist() == ["Phi", "(Intercept)"]
    check_against_r(ci, profile_ref("ovary_ar1"))
    assert fit.refit_ml().loglik == pytest.approx(profile_ref("ovary_ar1")["loglik_ml"], rel=1e-9)


def held_deviance(fit, which: str, value: float) -> float:
    """min over everything else of the ML deviance with sigma or an SD held at ``value`` (independent of profile.py).

    Optimises the unconstrained ``[log sd_1, ..., log sigma, structure]`` (random intercepts only) with
    Nelder-Mead from the ML estimates: a different parametrisation and optimizer from the profiler's.
    """
    ml = fit.refit_ml()
    obj = ml.devfun_structured
    n = ml.design.n
    names = list(ml.sdcor.index)
    assert all(len(b.theta_index) == 1 for b in ml.design.blocks)
    k = names.index(which)
    x0 = np.r_[np.log(ml.sdcor.to_numpy()), ml.estimates.phi]
    free = [i for i in range(len(x0)) if i != k]

    def dev(x):
        full = x0.copy()
        full[free] = x
        full[k] = np.log(value)
        sds, u = np.exp(full[: len(names)]), full[len(names) :]
        sigma = sds[-1]
        theta = sds[:-1] / sigma
        view = obj.at(np.r_[theta, u])
        if view is None:
            return np.inf
        f = view.factor(theta)
        if f is None:
            return np.inf
        return f.logdet_L - view.weights.ldw + f.r2 / sigma**2 + n * np.log(2 * np.pi * sigma**2)

    res = optimize.minimize(dev, x0[free], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000})  # fmt: skip
    return res.fun - ml.deviance


def test_ovary_ar1_profile_sigma_limits_raise_the_deviance_by_the_chi2_cutoff():
    fit = fitted("ovary_ar1_reml")
    ci = fit.confint(parm=[".sigma"])
    for value in ci.loc[".sigma"]:
        assert held_deviance(fit, ".sigma", value) == pytest.approx(CUT, abs=2e-3)
    wald_free = fit.confint(method="wald").loc[".sigma"]
    assert wald_free.isna().all()  # lme4's Wald intervals have no variance parameters


PROFILE_CASES = [("ovary_ar1", "ovary_ar1_ml"), ("orthodont_varident", "orthodont_varident_ml"),
                 ("bodyweight_car1", "bodyweight_car1_ml")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("case", "fit_id"), PROFILE_CASES)
def test_profile_limits_match_nlme(case, fit_id):
    fit = fitted(fit_id)
    ref = profile_ref(case)
    names = [k for k in ref if k != "loglik_ml"]
    ci = fit.confint(parm=names)
    check_against_r(ci, ref)
    wald = fit.confint(method="wald")
    for name in names:  # fixed effects: the profile interval is near the Wald one, not equal to it
        if not np.isnan(wald.loc[name]).any():
            w = wald.loc[name].to_numpy()
            assert np.max(np.abs(ci.loc[name].to_numpy() - w)) < 0.2 * (w[1] - w[0])


@pytest.mark.slow
@pytest.mark.parametrize("fit_id", ["ovary_ar1_ml", "orthodont_varident_ml"])
def test_profile_sd_limits_raise_the_deviance_by_the_chi2_cutoff(fit_id):
    fit = fitted(fit_id)
    ci = fit.confint(parm="theta_")
    assert list(ci.index[-1:]) == list(fit.residual_params)[-1:]  # theta_: SDs, sigma and the structure's
    for name in [".sig01", ".sigma"]:
        for value in ci.loc[name]:
            assert held_deviance(fit, name, value) == pytest.approx(CUT, abs=2e-3)


@pytest.mark.slow
def test_profile_table_names_the_structure_parameters():
    fit = fitted("ovary_ar1_ml")
    pr = fit.profile(which="Phi")
    assert set(pr.table[".par"]) == {"Phi"}
    assert "Phi" in repr(pr) and "corAR1" in repr(pr)
    z = pr.table[".zeta"].to_numpy()
    assert z.min() < -2.5 and z.max() > 2.5
