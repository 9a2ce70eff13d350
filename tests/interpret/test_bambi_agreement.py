"""hb.predictions / hb.comparisons / hb.slopes on a posterior agree with bambi 0.21's interpret functions.

Two ways:

* on the same draws: our posterior handed to bambi (its variable names and
  dims) gives, through ``bambi.interpret``, the same grids, labels, estimates
  and intervals as ours, to rounding. This pins down the meanings (default
  grids and values, ``conditional``, ``average_by``, pair labels, slopes);
* on bambi's own fit of the same model with the same priors: within Monte
  Carlo error, after checking that both fits converged (R-hat < 1.01, bulk
  and tail ESS >= 400 for every parameter). Posterior means are compared by
  z-score against the combined MCSE, interval ends against the combined MCSE
  of the quantile.

One difference is deliberate: with ``average_by``, bambi 0.21 averages the
rows' interval bounds, we average the draws and take the interval of the
average; the estimates agree, and the test says how the intervals differ.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierbayes as hb
from hierbayes.interpret.comparisons import comparisons_with_draws, slopes_with_draws
from hierbayes.interpret.predictions import predictions_with_draws
from tests.bayesian.conftest import assert_converged
from tests.interpret.conftest import SAMPLER, as_bambi_posterior

bmb = pytest.importorskip("bambi")
LEVEL = 0.95
Z_MAX = 4.5


@pytest.fixture(scope="module")
def ours_in_bambi(posterior, sleep_phase):
    return as_bambi_posterior(posterior, sleep_phase)


def _bambi(fn, model, idata, ci_kind="eti", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        res = fn(model, idata, prob=LEVEL, use_hdi=ci_kind == "hdi", **kw)
    summary = res.summary.copy()
    summary.columns = [c.split("_")[0] if c.startswith(("lower_", "upper_")) else c for c in summary.columns]
    return summary, res


def _keyed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for k in keys:
        out[k] = out[k].astype(str)
    return out.set_index(keys).sort_index()


def _same(ours: pd.DataFrame, theirs: pd.DataFrame, keys: list[str], columns=("estimate", "lower", "upper")) -> None:
    assert set(keys) <= set(ours.columns) and set(keys) <= set(theirs.columns)
    a, b = _keyed(ours, keys), _keyed(theirs, keys)
    assert a.index.equals(b.index), (a.index[:5], b.index[:5])
    for c in columns:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=c)


# ---------------------------------------------------------------------------------------------------------------------
# the same draws
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conditional", "ci_kind"),
    [("Days", "eti"), ("Days", "hdi"), (["Days", "phase"], "eti"), ({"Days": [0, 5, 9]}, "eti"),
     ({"phase": ["deprived"], "Subject": ["309", "372"]}, "hdi"), (None, "eti")],
)  # fmt: skip
def test_predictions_equal_bambis_on_the_same_draws(posterior, bambi_model, ours_in_bambi, conditional, ci_kind):
    ours = hb.predictions(posterior, conditional=conditional, level=LEVEL, ci_kind=ci_kind)
    theirs, _ = _bambi(bmb.interpret.predictions, bambi_model, ours_in_bambi, ci_kind, conditional=conditional)
    assert len(ours) == len(theirs)
    keys = [c for c in ("Days", "phase", "Subject") if c in theirs.columns]
    if conditional is None:  # unit level: one row per fitted row, in the data's order
        for c in ("estimate", "lower", "upper"):
            np.testing.assert_allclose(ours[c], theirs[c], rtol=1e-9)
        return
    _same(ours, theirs, keys)


def test_average_by_estimates_equal_bambis_and_intervals_are_of_the_average(posterior, bambi_model, ours_in_bambi):
    ours, q = predictions_with_draws(posterior, average_by="Subject", level=LEVEL)
    theirs, _ = _bambi(bmb.interpret.predictions, bambi_model, ours_in_bambi, average_by="Subject")
    _same(ours, theirs, ["Subject"], columns=("estimate",))
    # ours: the interval of the Subject's average over its rows (from the averaged draws) ...
    lo, hi = np.quantile(q.draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    np.testing.assert_allclose(ours["lower"], lo)
    np.testing.assert_allclose(ours["upper"], hi)
    # ... which is narrower than bambi's average of the rows' bounds
    a, b = _keyed(ours, ["Subject"]), _keyed(theirs, ["Subject"])
    assert ((a["upper"] - a["lower"]) < (b["upper"] - b["lower"])).all()


@pytest.mark.parametrize(
    ("contrast", "conditional", "comparison"),
    [("phase", "Subject", "diff"), ({"Days": [0, 9]}, ["phase"], "diff"), ("Days", "Subject", "ratio"),
     ({"Days": [1, 4, 8]}, None, "lift"), ("phase", {"Days": [2, 7]}, "ratio")],
)  # fmt: skip
def test_comparisons_equal_bambis_on_the_same_draws(posterior, bambi_model, ours_in_bambi, contrast, conditional,
                                                    comparison):  # fmt: skip
    ours = hb.comparisons(posterior, contrast, conditional=conditional, comparison=comparison, level=LEVEL)
    theirs, _ = _bambi(bmb.interpret.comparisons, bambi_model, ours_in_bambi, contrast=contrast,
                       conditional=conditional, comparison=comparison)  # fmt: skip
    assert ours["term"].unique().tolist() == theirs["term"].unique().tolist()
    assert sorted(ours["value"].unique()) == sorted(theirs["value"].astype(str).unique())
    assert len(ours) == len(theirs)
    if conditional is None:
        for c in ("estimate", "lower", "upper"):
            np.testing.assert_allclose(ours[c], theirs[c], rtol=1e-9)
        return
    keys = ["value"] + [c for c in ("Days", "phase", "Subject") if c in theirs.columns and c in ours.columns]
    _same(ours, theirs, keys)


@pytest.mark.parametrize(
    ("wrt", "conditional", "slope"),
    [("Days", "Subject", "dydx"), ("Days", ["phase", "Subject"], "eyex"), ({"Days": 4}, "Subject", "eydx"),
     ({"Days": 6}, "phase", "dyex")],
)  # fmt: skip
def test_slopes_equal_bambis_on_the_same_draws(posterior, bambi_model, ours_in_bambi, wrt, conditional, slope):
    ours = hb.slopes(posterior, wrt, conditional=conditional, slope=slope, level=LEVEL)
    theirs, _ = _bambi(bmb.interpret.slopes, bambi_model, ours_in_bambi, wrt=wrt, conditional=conditional,
                       slope=slope)  # fmt: skip
    assert (ours["value"] == theirs["value"]).all()
    keys = [c for c in ("phase", "Subject") if c in theirs.columns]
    _same(ours, theirs, keys)


# ---------------------------------------------------------------------------------------------------------------------
# bambi's own fit: within Monte Carlo error
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bambi_fit(bambi_model):
    idata = bambi_model.fit(draws=1000, tune=600, chains=2, random_seed=5, progressbar=False, cores=1,
                            inference_method=SAMPLER)  # fmt: skip
    assert_converged(idata)
    return idata


def _draws_da(draws: np.ndarray) -> xr.DataArray:
    S, n = draws.shape
    return xr.DataArray(draws.reshape(2, S // 2, n), dims=("chain", "draw", "row"))


def _mcse(da: xr.DataArray, method: str, prob: float | None = None) -> np.ndarray:
    import arviz as az

    kw = {"prob": prob} if prob is not None else {}
    return np.asarray(az.mcse(da, method=method, sample_dims=("chain", "draw"), **kw))


def _within_mc_error(ours: pd.DataFrame, our_draws: np.ndarray, theirs: pd.DataFrame, their_draws, keys) -> None:
    """Estimates and interval ends agree within Z_MAX combined MCSEs (rows matched on keys)."""
    a = ours.assign(_row=np.arange(len(ours)))
    b = theirs.assign(_row=np.arange(len(theirs)))
    a, b = _keyed(a, keys), _keyed(b, keys)
    assert a.index.equals(b.index)
    da_o = _draws_da(our_draws).isel(row=a["_row"].to_numpy())
    da_t = their_draws.isel(row=b["_row"].to_numpy())
    for col, method, prob in (("estimate", "mean", None), ("lower", "quantile", (1 - LEVEL) / 2),
                              ("upper", "quantile", (1 + LEVEL) / 2)):  # fmt: skip
        se = np.sqrt(_mcse(da_o, method, prob) ** 2 + _mcse(da_t, method, prob) ** 2)
        z = np.abs(a[col].to_numpy(float) - b[col].to_numpy(float)) / se
        assert np.max(z) < Z_MAX, f"{col}: z up to {np.max(z):.2f}"


def _their_draws(res, var: str) -> xr.DataArray:
    da = res.draws["posterior"][var] if var in res.draws["posterior"] else res.draws["posterior_predictive"][var]
    other = [d for d in da.dims if d not in ("chain", "draw")]
    return da.rename({other[0]: "row"})


def test_posterior_converged(posterior):
    assert_converged(posterior)
    assert posterior.diagnostics.min_ess_tail >= 400


@pytest.mark.parametrize("conditional", [["Days", "phase"], {"Days": [0, 9], "Subject": ["308", "335"]}])
def test_predictions_within_monte_carlo_error_of_bambis_fit(posterior, bambi_model, bambi_fit, conditional):
    ours, q = predictions_with_draws(posterior, conditional=conditional, level=LEVEL)
    theirs, res = _bambi(bmb.interpret.predictions, bambi_model, bambi_fit, conditional=conditional)
    keys = [c for c in ("Days", "phase", "Subject") if c in theirs.columns]
    _within_mc_error(ours, q.draws, theirs, _their_draws(res, "mu"), keys)


def test_comparisons_and_slopes_within_monte_carlo_error_of_bambis_fit(posterior, bambi_model, bambi_fit):
    ours, q = comparisons_with_draws(posterior, "phase", conditional={"Subject": ["308", "309", "350"]}, level=LEVEL)
    theirs, res = _bambi(bmb.interpret.comparisons, bambi_model, bambi_fit, contrast="phase",
                         conditional={"Subject": ["308", "309", "350"]})  # fmt: skip
    d = res.draws["posterior"]["mu"]
    obs = d.dims[-1]
    # bambi's draws are the predictions at each contrast value: rebuild its comparison draws
    first = res.draws["data"]["phase"].to_numpy() == "adapt"
    their = (d.isel({obs: np.flatnonzero(~first)}) - d.isel({obs: np.flatnonzero(first)}).values).rename({obs: "row"})
    _within_mc_error(ours, q.draws, theirs, their, ["value", "Subject"])
    ours, q = slopes_with_draws(posterior, "Days", conditional={"Subject": ["308", "309", "350"]}, level=LEVEL)
    theirs, res = _bambi(bmb.interpret.slopes, bambi_model, bambi_fit, wrt="Days",
                         conditional={"Subject": ["308", "309", "350"]})  # fmt: skip
    d = res.draws["posterior"]["mu"]
    obs = d.dims[-1]
    x = res.draws["data"]["Days"].to_numpy()
    at = x == x.min()
    their = (d.isel({obs: np.flatnonzero(~at)}) - d.isel({obs: np.flatnonzero(at)}).values) / 1e-4
    their = their.rename({obs: "row"})
    _within_mc_error(ours, q.draws, theirs, their, ["Subject"])
