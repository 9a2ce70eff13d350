"""Ordinal families (issue 22): ``cumulative`` and ``sratio`` in ``hb.bayes``.

Cheap checks (default suite): the category probabilities against PyMC's own ordered
distributions and hand computations, the response's validation, and one small fit reused
for the extractors, per-category predictions, posterior predictive, LOO and save/load.
Slow checks: recovery of known parameters (logit and probit cumulative, sratio), and
agreement with ``ordinal::clmm`` on the wine data (tests/reference/make_families.R), each
on converged chains (R-hat < 1.01, bulk ESS >= 400) first.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import hierbayes as hb
from hierbayes.bayesian import describe_priors
from hierbayes.errors import DataError, FormulaError, ModelError
from hierbayes.families import get_family
from tests.bayesian.conftest import quiet_fit
from tests.refdata import REFERENCE, reference

THRESHOLDS = np.array([-1.0, 0.3, 1.5])
LEVELS = ["low", "mid", "high", "top"]
FAST = "FAST_COMPILE"  # PyTensor without C compilation: these small graphs evaluate at once


def simulate(name: str, link: str, seed: int, n_groups: int, n_per: int, b=(0.8, -0.6), sd=0.6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_per)
    x, z = rng.normal(size=g.size), rng.integers(0, 2, g.size)
    eta = b[0] * x + b[1] * z + rng.normal(0, sd, n_groups)[g]
    codes = get_family(name, link).rvs(eta, {"threshold": THRESHOLDS}, None, rng).astype(int)
    y = pd.Categorical(np.array(LEVELS)[codes], categories=LEVELS, ordered=True)
    return pd.DataFrame({"y": y, "x": x, "z": np.where(z == 1, "b", "a"), "g": [f"g{i:02d}" for i in g]})


# --- the likelihood ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_cumulative_equals_pymc_ordered_distributions(link):
    pm = pytest.importorskip("pymc")
    fam = get_family("cumulative", link)
    eta, y = np.array([-0.7, 0.2, 2.5]), np.array([0, 3, 2])
    params = {"threshold": THRESHOLDS}
    probs = fam.category_probs(eta, params)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    dist = pm.OrderedLogistic if link == "logit" else pm.OrderedProbit
    want = pm.logp(dist.dist(eta=eta, cutpoints=THRESHOLDS, **({} if link == "logit" else {"sigma": 1.0})), y).eval(
        mode=FAST
    )
    np.testing.assert_allclose(fam.logpdf(y, eta, params, None), want, rtol=1e-7)  # PyMC: erf-based probit
    with pm.Model():  # the PyMC likelihood the sampler uses is the same density
        rv = fam.pymc_likelihood(eta, y, None, {"threshold": THRESHOLDS}, None)
    np.testing.assert_allclose(pm.logp(rv, y).eval(mode=FAST), want, rtol=1e-7)


def test_sratio_by_hand_and_in_pymc():
    pm = pytest.importorskip("pymc")
    fam = get_family("sratio", "probit")
    eta = np.array([0.4])
    q = stats.norm.cdf(THRESHOLDS - 0.4)  # P(y = k | y >= k)
    want = [q[0], (1 - q[0]) * q[1], (1 - q[0]) * (1 - q[1]) * q[2], np.prod(1 - q)]
    np.testing.assert_allclose(fam.category_probs(eta, {"threshold": THRESHOLDS})[0], want, rtol=1e-12)
    with pm.Model():
        rv = fam.pymc_likelihood(np.array([0.4, 0.4]), np.array([1, 3]), None, {"threshold": THRESHOLDS}, None)
    np.testing.assert_allclose(pm.logp(rv, np.array([1, 3])).eval(mode=FAST), np.log([want[1], want[3]]), rtol=1e-9)


def test_draws_follow_the_probabilities():
    fam = get_family("cumulative")
    eta = np.zeros(40_000)
    draws = fam.rvs(eta, {"threshold": THRESHOLDS}, None, np.random.default_rng(1))
    freq = np.bincount(draws.astype(int), minlength=4) / eta.size
    want = np.diff(special.expit(THRESHOLDS), prepend=0.0, append=1.0)
    np.testing.assert_allclose(freq, want, atol=0.01)


# --- the response -----------------------------------------------------------------------------------------------


def test_response_forms_give_the_same_codes():
    df = simulate("cumulative", "logit", 1, 6, 10)
    codes = df["y"].cat.codes.to_numpy().astype(float)
    ints = df.assign(y=codes.astype(int) + 1)  # integers: levels in numeric order
    text = df.assign(y=df["y"].astype(str))
    for data, formula, levels in (
        (df, "y ~ x + (1 | g)", tuple(LEVELS)),
        (ints, "y ~ x + (1 | g)", ("1", "2", "3", "4")),
        (text, "ordered(y, levels = c('low', 'mid', 'high', 'top')) ~ x + (1 | g)", tuple(LEVELS)),
    ):
        m = hb.Model(formula, data, family="cumulative")
        np.testing.assert_array_equal(m.design.y, codes)
        assert m.design.response_levels == levels
        assert m.design.x_names == ("x",)  # no intercept: the thresholds are the intercepts
    m = hb.Model("y ~ z + (1 | g)", df, family="sratio")
    assert m.design.x_names == ("zb",)  # the factor coded against the intercept, which is then dropped
    assert "y" in df and isinstance(df["y"].dtype, pd.CategoricalDtype)  # the user's frame is untouched


def test_bad_responses_are_errors_before_sampling():
    df = simulate("cumulative", "logit", 2, 6, 10)
    with pytest.raises(DataError, match=r"needs an ordered response.*unordered factor or text"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=df["y"].astype(str)), family="cumulative")
    with pytest.raises(DataError, match=r"needs an ordered response.*unordered"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=df["y"].cat.as_unordered()), family="sratio")
    with pytest.raises(DataError, match=r"not integers, e.g. 0.5 \(row 0\)"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=0.5), family="cumulative")
    with pytest.raises(DataError, match=r"2 or more categories.*has 1 \(low\)"):
        hb.bayes("y ~ x + (1 | g)", df.assign(y=pd.Categorical(["low"] * len(df), categories=LEVELS, ordered=True)),
                 family="cumulative")  # fmt: skip
    with pytest.raises(FormulaError, match="keeps the intercept"):
        hb.bayes("y ~ 0 + z + (1 | g)", df, family="cumulative")
    with pytest.raises(ModelError, match="takes the links"):
        hb.bayes("y ~ x + (1 | g)", df, family="cumulative", link="log")
    with pytest.raises(ModelError, match="not 'cumulative'; fit it with method='bayes'"):
        hb.Model("y ~ x + (1 | g)", df, family="cumulative").fit("ml")


def test_default_and_user_threshold_priors():
    df = simulate("cumulative", "logit", 3, 10, 20)
    m = hb.Model("y ~ x + (1 | g)", df, family="cumulative")
    pri = describe_priors(m)
    assert [n for n in pri.index if n.startswith("threshold")] == [f"threshold[{j}]" for j in range(3)]
    counts = df["y"].value_counts(sort=False).to_numpy()
    want = special.logit(np.cumsum(counts)[:-1] / counts.sum())  # the thresholds without predictors
    mus = [float(pri.loc[f"threshold[{j}]", "prior"].split("mu=")[1].split(",")[0]) for j in range(3)]
    np.testing.assert_allclose(mus, want, atol=0.006)
    m2 = hb.Model("y ~ x + (1 | g)", df, family="cumulative",
                  priors={"threshold": hb.Prior("Normal", mu=0, sigma=5)})  # fmt: skip
    assert set(describe_priors(m2).loc[[f"threshold[{j}]" for j in range(3)], "source"]) == {"user"}
    with pytest.raises(ModelError, match=r"threshold.*real line"):
        describe_priors(hb.Model("y ~ x + (1 | g)", df, family="cumulative",
                                 priors={"threshold[0]": hb.Prior("HalfNormal", sigma=1)}))  # fmt: skip


# --- one small fit: extractors, predictions, PPC, LOO, save/load ------------------------------------------------


@pytest.fixture(scope="module")
def small_fit():
    df = simulate("cumulative", "logit", 4, 8, 15)
    return df, quiet_fit(hb.Model("y ~ x + z + (1 | g)", df, family="cumulative"), draws=100, tune=100, chains=2,
                         cores=1, random_seed=1)  # fmt: skip


def test_small_fit_extractors_and_predictions(small_fit, tmp_path):
    df, fit = small_fit
    assert fit.info.draws == 100
    assert list(fit.fixef.index) == ["x", "zb"]
    assert list(fit.thresholds.index) == ["low|mid", "mid|high", "high|top"]
    assert np.all(np.diff(fit.posterior["threshold"].values, axis=-1) > 0)  # ordered in every draw
    table = fit.summary()
    assert list(table.index) == ["b[x]", "b[zb]", "sd[g:(Intercept)]", "threshold[0]", "threshold[1]",
                                 "threshold[2]"]  # fmt: skip
    assert list(fit.ranef["g"].columns) == ["(Intercept)"]
    assert fit.sigma is None
    # per-category probabilities: rows x categories, summing to one; draws with a category axis
    probs = fit.predict()
    assert probs.shape == (len(df), 4) and list(probs.columns) == LEVELS
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-10)
    draws = fit.predict(kind="draws")
    assert draws.dims == ("chain", "draw", "obs", "category")
    np.testing.assert_allclose(draws.mean(("chain", "draw")).values, probs.to_numpy(), rtol=1e-10)
    # the mean of the probabilities is the probability of the mean threshold minus eta, approximately
    post = fit.posterior
    eta = fit.predict(scale="link")
    fam = get_family("cumulative")
    approx = fam.category_probs(eta, {"threshold": post["threshold"].mean(("chain", "draw")).values})
    assert np.abs(approx - probs.to_numpy()).max() < 0.1
    new = pd.DataFrame({"x": [0.0, 1.0], "z": ["a", "b"], "g": ["g00", "unseen"]})
    p_new = fit.predict(new, allow_new_levels=True)
    assert p_new.shape == (2, 4) and list(p_new.index) == [0, 1]
    # posterior predictive of categories: codes 0..3, whose frequencies track the observed ones
    pp = fit.idata.posterior_predictive["y"].values
    assert set(np.unique(pp)) <= {0.0, 1.0, 2.0, 3.0}
    observed = np.bincount(df["y"].cat.codes, minlength=4) / len(df)
    np.testing.assert_allclose(np.bincount(pp.astype(int).ravel(), minlength=4) / pp.size, observed, atol=0.05)
    assert fit.predict(kind="predictive", random_seed=1).shape == (2, 100, len(df))
    assert np.isfinite(fit.loo().elpd)
    with pytest.raises(ModelError, match="no residual"):
        _ = fit.residuals
    with pytest.raises(ModelError, match="probability per category"):
        fit.predict(interval="confidence")
    path = tmp_path / "ordinal.nc"
    fit.save(path)
    back = hb.load(path)
    pd.testing.assert_series_equal(back.thresholds, fit.thresholds)
    pd.testing.assert_frame_equal(back.predict(), probs)
    assert back.model.family.name == "cumulative"


# --- recovery and agreement (slow) ------------------------------------------------------------------------------


def _converged(fit):
    table = fit.summary(prob=0.99)
    assert table["r_hat"].max() < 1.01 and table["ess_bulk"].min() >= 400, table[["r_hat", "ess_bulk"]]
    return table


@pytest.mark.slow  # a few minutes each on 2 shared cores
@pytest.mark.parametrize(("name", "link"), [("cumulative", "logit"), ("cumulative", "probit"), ("sratio", "logit")])
def test_recovers_known_parameters(name, link):
    df = simulate(name, link, 10, 30, 25)
    fit = quiet_fit(hb.Model("y ~ x + z + (1 | g)", df, family=name, link=link), draws=1000, tune=1000, chains=4,
                    random_seed=5)  # fmt: skip
    table = _converged(fit)
    truth = {"b[x]": 0.8, "b[zb]": -0.6, "sd[g:(Intercept)]": 0.6}
    truth.update({f"threshold[{j}]": t for j, t in enumerate(THRESHOLDS)})
    print(table.loc[list(truth), ["mean", "eti_0.5%", "eti_99.5%", "r_hat", "ess_bulk"]].assign(truth=truth))
    for row, value in truth.items():
        lo, hi = table.loc[row, "eti_0.5%"], table.loc[row, "eti_99.5%"]
        assert lo < value < hi, (row, value, lo, hi)


def _wine() -> pd.DataFrame:
    wine = pd.read_csv(REFERENCE / "data" / "wine.csv")
    return wine.assign(rating=pd.Categorical(wine["rating"], categories=[1, 2, 3, 4, 5], ordered=True))


def _importance_posterior_mean(ref: dict, link: str, prior_sd: float, sd_prior: float, draws: int = 20_000):
    """The posterior mean of (thresholds, beta) by importance sampling, independent of the MCMC machinery.

    The likelihood is the exact marginal one (Gauss-Hermite quadrature over each judge's effect, 24
    nodes); the proposal a multivariate t (4 df) at clmm's ML estimate with 1.5 x its covariance
    (on log judge SD); the priors those of the fit (Normal(0, prior_sd), the thresholds ordered,
    HalfNormal(sd_prior) on the judge SD). Returns (mean, Monte Carlo SE, ML estimate).
    """
    wine = _wine()
    codes = wine["rating"].cat.codes.to_numpy()
    X = np.column_stack([wine["temp"] == "warm", wine["contact"] == "yes"]).astype(float)
    judge = pd.factorize(wine["judge"])[0]
    names = ref["vcov"]["names"]
    ml = np.array([*ref["thresholds"].values(), *ref["beta"].values(), np.log(ref["judge_sd"])])
    cov = 1.5 * np.array(ref["vcov"]["values"])
    rng = np.random.default_rng(7)
    t = stats.multivariate_t(loc=ml, shape=cov, df=4, seed=rng)
    theta = t.rvs(draws)
    log_q = t.logpdf(theta)
    nodes, weights = np.polynomial.hermite.hermgauss(24)
    fam = get_family("cumulative", link)
    log_lik = np.zeros(draws)
    for s in range(0, draws, 2000):
        th = theta[s : s + 2000]
        sd = np.exp(th[:, -1])
        eta = th[:, None, 4:6] @ X.T  # (m, 1, n)
        u = np.sqrt(2.0) * sd[:, None, None] * nodes[None, :, None]  # (m, nodes, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            probs = fam.category_probs(eta + u, {"threshold": th[:, None, None, :4]})  # (m, nodes, n, K)
            logp = np.log(np.take_along_axis(probs, codes[None, None, :, None], axis=-1)[..., 0])
        per_judge = np.stack([logp[:, :, judge == j].sum(axis=-1) for j in range(judge.max() + 1)], axis=-1)
        log_lik[s : s + 2000] = special.logsumexp(per_judge + np.log(weights / np.sqrt(np.pi))[None, :, None],
                                                  axis=1).sum(axis=-1)  # fmt: skip
    ordered = np.all(np.diff(theta[:, :4], axis=1) > 0, axis=1)
    sd = np.exp(theta[:, -1])
    log_prior = stats.norm.logpdf(theta[:, :6], 0, prior_sd).sum(axis=1) + stats.halfnorm.logpdf(sd, scale=sd_prior)
    log_w = np.where(ordered, log_lik + log_prior + theta[:, -1] - log_q, -np.inf)  # + log Jacobian of log sd
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = w @ theta[:, :6]
    se = np.sqrt((w**2) @ (theta[:, :6] - mean) ** 2)  # the self-normalised estimator's standard error
    assert 1.0 / np.sum(w**2) > 1000  # enough effective draws for the reference to be precise
    return (
        dict(zip(names[:6], mean, strict=True)),
        dict(zip(names[:6], se, strict=True)),
        dict(zip(names, ml, strict=True)),
    )


@pytest.mark.slow  # ~5 min each on 2 shared cores
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_agrees_with_clmm_on_wine(link):
    """Posterior means with wide priors against clmm's exact ML fit, allowing their small-sample difference.

    With 72 ratings the posterior mean is not the ML estimate (the last threshold's posterior is
    right-skewed: its mean is ~0.5 SE above clmm's estimate on the logit scale). That difference
    is computed independently of the sampler (:func:`_importance_posterior_mean`, on clmm's ML fit and
    covariance); NUTS must match it within Monte Carlo error, and clmm's ML estimate within 0.6 SE.
    """
    ref = reference("families")["ordinal"][f"wine_exact_ml_{link}"]
    wide = hb.Prior("Normal", mu=0, sigma=20)
    fit = quiet_fit(hb.Model("rating ~ temp + contact + (1 | judge)", _wine(), family="cumulative", link=link,
                             priors={"b": wide, "threshold": wide, "sd": hb.Prior("HalfNormal", sigma=5)}),
                    draws=2000, tune=1000, chains=4, random_seed=3)  # fmt: skip
    table = _converged(fit)
    assert list(fit.thresholds.index) == list(ref["thresholds"])
    is_mean, is_se, ml = _importance_posterior_mean(ref, link, 20.0, 5.0)
    rows = {name: f"threshold[{j}]" for j, name in enumerate(ref["thresholds"])}
    rows.update({name: f"b[{name}]" for name in ref["beta"]})
    shown = table.loc[list(rows.values()), ["mean", "mcse_mean", "r_hat", "ess_bulk"]].set_axis(list(rows))
    print(shown.assign(importance=is_mean, importance_se=is_se, clmm_ml=ml, ml_se=ref["se"]).round(4))
    for name, row in rows.items():
        got, mcse = table.loc[row, "mean"], table.loc[row, "mcse_mean"]
        assert abs(got - is_mean[name]) < 4 * np.hypot(mcse, is_se[name]), (name, got, is_mean[name])
        assert abs(got - ml[name]) < 0.6 * ref["se"][name], (name, got, ml[name])


#: the same priors in both libraries (bambi's default threshold prior, Normal(linspace(-2, 2), 1), is narrow)
WINE_PRIORS = {"threshold_mu": [-3.0, -1.0, 1.0, 3.0], "sd": 5.0, "ranef_sd": 2.0}


def wine_priors_hierbayes() -> dict:
    p = WINE_PRIORS
    out = {f"threshold[{j}]": hb.Prior("Normal", mu=m, sigma=p["sd"]) for j, m in enumerate(p["threshold_mu"])}
    return {**out, "b": hb.Prior("Normal", mu=0, sigma=p["sd"]), "sd": hb.Prior("HalfNormal", sigma=p["ranef_sd"])}


def wine_priors_bambi() -> dict:
    import bambi as bmb
    import pymc as pm

    p = WINE_PRIORS
    return {
        "threshold": bmb.Prior("Normal", mu=np.array(p["threshold_mu"]), sigma=p["sd"],
                               transform=pm.distributions.transforms.ordered),
        "temp": bmb.Prior("Normal", mu=0, sigma=p["sd"]),
        "contact": bmb.Prior("Normal", mu=0, sigma=p["sd"]),
        "1|judge": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=p["ranef_sd"])),
    }  # fmt: skip


@pytest.mark.slow  # ~10-20 min on 2 shared cores (bambi's fit dominates)
def test_agrees_with_bambi_on_wine():
    """The same cumulative model and priors in bambi 0.21: posterior means agree to Monte Carlo error."""
    bmb = pytest.importorskip("bambi")
    from arviz_stats import summary

    wine = hb.datasets.load("wine")  # factors as categoricals, the rating ordered
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 11}
    t0 = time.perf_counter()
    ours = _converged(quiet_fit(hb.Model("rating ~ temp + contact + (1 | judge)", wine, family="cumulative",
                                         priors=wine_priors_hierbayes()), **settings))  # fmt: skip
    t1 = time.perf_counter()
    with warnings.catch_warnings():  # bambi 0.21's own pandas deprecation warnings
        warnings.simplefilter("ignore")
        model = bmb.Model("rating ~ temp + contact + (1 | judge)", wine, family="cumulative",
                          priors=wine_priors_bambi())  # fmt: skip
        idata = model.fit(progressbar=False, **settings)
    t2 = time.perf_counter()
    theirs = pd.DataFrame(summary(idata, var_names=["threshold", "temp", "contact", "1|judge_sigma"],
                                  round_to="none"))  # fmt: skip
    assert theirs["r_hat"].max() < 1.01 and theirs["ess_bulk"].min() >= 400, theirs
    ess_ours, ess_theirs = ours["ess_bulk"].min(), theirs["ess_bulk"].min()  # cold fits: compilation included
    print(
        f"hierbayes: {t1 - t0:.1f} s, min bulk ESS {ess_ours:.0f}, ESS/s {ess_ours / (t1 - t0):.2f}; "
        f"bambi: {t2 - t1:.1f} s, min bulk ESS {ess_theirs:.0f}, ESS/s {ess_theirs / (t2 - t1):.2f}"
    )
    pairs = {f"threshold[{j}]": f"threshold[{j}]" for j in range(4)}
    pairs.update({"b[tempwarm]": "temp[warm]", "b[contactyes]": "contact[yes]",
                  "sd[judge:(Intercept)]": "1|judge_sigma"})  # fmt: skip
    print(pd.DataFrame({"hierbayes": ours.loc[list(pairs), "mean"].to_numpy(),
                        "bambi": theirs.loc[list(pairs.values()), "mean"].to_numpy()}, index=list(pairs)))  # fmt: skip
    for ours_row, their_row in pairs.items():
        a, b = ours.loc[ours_row], theirs.loc[their_row]
        assert abs(a["mean"] - b["mean"]) < 4 * np.hypot(a["mcse_mean"], b["mcse_mean"]), (ours_row, a, b)
