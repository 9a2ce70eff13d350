"""The teaching examples' data-generating processes: layout, reproducibility, recovery by REML."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: hb.simulate.longitudinal(seed=seed),
        lambda seed: hb.simulate.nested(n_groups=40, n_per_group=30, seed=seed),
        lambda seed: hb.simulate.nested(n_groups=30, n_per_group=24, n_subgroups=3, seed=seed),
        lambda seed: hb.simulate.crossed(n_students=60, n_raters=30, seed=seed),
    ],
)
def test_truth_is_laid_out_like_the_fit_and_is_recovered(make) -> None:
    sim = make(7)
    pd.testing.assert_frame_equal(make(7).data, sim.data)  # same seed, same data
    assert not make(8).data.equals(sim.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)
        fit = hb.lmer(sim.formula, sim.data)
    vc = fit.varcorr
    assert list(vc["grp"]) == list(sim.varcorr["grp"])
    assert [v if isinstance(v, str) else None for v in vc["var1"]] == [
        v if isinstance(v, str) else None for v in sim.varcorr["var1"]
    ]
    assert list(fit.fixef.index) == list(sim.fixef.index)
    se = np.sqrt(np.diag(fit.vcov))
    assert np.all(np.abs(fit.fixef - sim.fixef) < 4 * se)
    assert fit.sigma == pytest.approx(sim.sigma, rel=0.15)
    for group, re in sim.ranef.items():
        est = fit.ranef[group].loc[re.index, re.columns]
        assert np.corrcoef(est.to_numpy().ravel(), re.to_numpy().ravel())[0, 1] > 0.5


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(hb.DataError, match="corr"):
        hb.simulate.longitudinal(corr=1.5)
    with pytest.raises(hb.DataError, match="n_per_group"):
        hb.simulate.nested(n_per_group=1)
