"""Residual structures in the Bayesian engine: the PyTensor likelihood against a dense multivariate normal,
and the Ovary AR(1) posterior against REML (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.structures import bind_structure

OV = "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)"


def dense_covariance(structure, data, params, fitted):
    """sigma^2-free G C G, built the slow way from the definitions (independent of the whitening code)."""
    n = len(data)
    C = np.eye(n)
    c, v = structure.correlation, structure.variance
    if c is not None:
        g = data["g"].to_numpy()
        phi = params[c.names[0]]
        for i in range(n):
            for j in range(n):
                if i != j and g[i] == g[j]:
                    if c.kind == "cs":
                        C[i, j] = phi
                    else:
                        # '~ 1 | g': positions are the order of the rows within the group
                        t = data["t"].to_numpy() if c.spec.form.covariate else data.groupby("g").cumcount().to_numpy()
                        C[i, j] = phi ** abs(t[i] - t[j])
    sd = np.ones(n)
    if v is not None:
        if v.kind == "ident":
            s = data["s"].to_numpy()
            ratio = {v.label: 1.0, **dict.fromkeys(v.names, params["ratio"])}  # label: the reference stratum
            sd = np.array([ratio[x] for x in s])
        elif v.kind == "power":
            sd = np.abs(fitted if v.covariate is None else data["x"].to_numpy()) ** params["power"]
        else:
            sd = np.exp(params["expon"] * data["x"].to_numpy())
    return sd[:, None] * C * sd[None, :]


CASES = [
    (hb.corAR1("~ 1 | g"), None, {"Phi": 0.55}),
    (hb.corAR1("~ t | g"), None, {"Phi1": -0.4}),
    (hb.corCAR1("~ t | g"), None, {"Phi": 0.7}),
    (hb.corCompSymm("~ 1 | g"), None, {"Rho": 0.3}),
    (None, hb.varIdent("~ 1 | s"), {"ratio": 1.7}),
    (None, hb.varPower("~ x"), {"power": 0.6}),
    (None, hb.varPower(), {"power": 0.4}),
    (hb.corAR1("~ 1 | g"), hb.varExp("~ x"), {"Phi": 0.3, "expon": -0.2}),
]


@pytest.mark.parametrize(
    ("cor", "var", "params", "weighted"),
    [(*c, False) for c in CASES] + [(*CASES[i], True) for i in (0, 7)],  # prior weights: AR(1), AR(1) x varExp
    ids=[f"case{i}" for i in range(len(CASES))] + ["case0-weights", "case7-weights"],
)
def test_structured_loglik_is_the_dense_normal(cor, var, params, weighted):
    import pytensor.tensor as pt

    from hierbayes.bayesian.structured import structured_loglik
    from hierbayes.design import build_design

    rng = np.random.default_rng(3)
    n = 24
    data = {
        "g": np.repeat(["u", "v", "w"], 8), "pos": np.tile(np.arange(8), 3), "x": rng.uniform(0.5, 2.0, n),
        "s": rng.choice(["a", "b"], n), "y": rng.normal(size=n),
    }  # fmt: skip
    import pandas as pd

    data = pd.DataFrame(data).assign(t=lambda d: d["pos"] + (d["pos"] >= 4) * 2)  # gaps between positions 3 and 4
    data = data.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows out of order
    d = build_design("y ~ x + (1 | g)", data)
    st = bind_structure(cor, var, data, d.blocks)
    eta = rng.normal(1.0, 0.2, n)
    sigma = 1.3
    svars = {}
    if cor is not None:
        svars["cor"] = pt.constant(params[st.correlation.names[0]])
    if var is not None:
        svars["var"] = (
            pt.constant(np.full(len(st.variance.names), params["ratio"]))
            if st.variance.kind == "ident"
            else pt.constant(params[st.variance.names[0]])
        )
    w = rng.uniform(0.3, 3.0, n) if weighted else None
    ll = structured_loglik(st, data["y"].to_numpy(), pt.as_tensor_variable(eta), sigma, svars, w).eval()
    V = sigma**2 * dense_covariance(st, data, params, eta)
    if weighted:  # prior weights: covariance W^{-1/2} (G C G) W^{-1/2}, as in the REML likelihood
        V = V / np.sqrt(np.outer(w, w))
    want = stats.multivariate_normal(eta, V).logpdf(data["y"].to_numpy())
    assert ll == pytest.approx(want, rel=1e-10)


@pytest.mark.slow
def test_ovary_ar1_posterior_agrees_with_reml():
    ov = hb.datasets.load("ovary")
    reml = hb.lmer(OV, ov, correlation=hb.corAR1("~ 1 | Mare"))
    fit = hb.bayes(OV, ov, correlation=hb.corAR1("~ 1 | Mare"), draws=1000, tune=1000, chains=4, random_seed=1)
    assert fit.max_rhat < 1.01 and fit.min_ess_bulk >= 400 and fit.n_divergences == 0
    sd = fit.fixef_draws().std(("chain", "draw")).to_numpy()
    assert np.all(np.abs(fit.fixef.to_numpy() - reml.fixef.to_numpy()) < 0.25 * sd)
    phi = fit.posterior["Phi"]
    assert abs(float(phi.mean()) - reml.residual_params["Phi"]) < 0.5 * float(phi.std())
    assert abs(fit.sigma - reml.sigma) < 0.1 * reml.sigma
    assert list(fit.residual_params) == ["Phi"]


@pytest.mark.slow
def test_ovary_ar1_with_prior_weights_posterior_agrees_with_reml():
    ov = hb.datasets.load("ovary")
    w = np.where(ov["Time"].to_numpy() > 0.5, 2.0, 1.0)  # later visits measured twice as precisely
    reml = hb.lmer(OV, ov, correlation=hb.corAR1("~ 1 | Mare"), weights=w)
    fit = hb.bayes(OV, ov, correlation=hb.corAR1("~ 1 | Mare"), weights=w, draws=1000, tune=1000, chains=4,
                   random_seed=2)  # fmt: skip
    assert fit.max_rhat < 1.01 and fit.min_ess_bulk >= 400 and fit.n_divergences == 0
    sd = fit.fixef_draws().std(("chain", "draw")).to_numpy()
    assert np.all(np.abs(fit.fixef.to_numpy() - reml.fixef.to_numpy()) < 0.25 * sd)
    phi = fit.posterior["Phi"]
    assert abs(float(phi.mean()) - reml.residual_params["Phi"]) < 0.5 * float(phi.std())
    assert abs(fit.sigma - reml.sigma) < 0.1 * reml.sigma
    # the weights matter: the unweighted REML fit's sigma is not the weighted one's
    assert abs(hb.lmer(OV, ov, correlation=hb.corAR1("~ 1 | Mare")).sigma - reml.sigma) > 0.05 * reml.sigma
