"""lme4's starting theta (``mkLmerDevfun``), which keeps BOBYQA on lme4's path.

Reference values: tests/reference/tight_extra_reference.json["start"], made by
tests/reference/make_tight_extra.R (R 4.2.2 / lme4 1.1-31, the bundled CSVs):
``environment(lmer(f, d, devFunOnly = TRUE))$pp$theta`` and ``m@optinfo$feval``.
"""

from __future__ import annotations

import numpy as np

import hierbayes as hb
from hierbayes.reml.fit import lme4_start
from tests.refdata import reference

START = reference("tight_extra")["start"]


def test_random_intercepts_start_at_the_moment_estimates():
    m = hb.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", hb.datasets.load("penicillin"))
    order = [b.group for b in m.design.blocks]  # lme4's order: most levels first
    assert order == ["plate", "sample"]
    ref = START["penicillin"]
    assert ref["formula"] == "diameter ~ 1 + (1 | plate) + (1 | sample)"
    np.testing.assert_allclose(lme4_start(m.design), ref["theta0"], rtol=1e-12)
    fit = hb.lmer(ref["formula"], hb.datasets.load("penicillin"))
    np.testing.assert_allclose(fit.optinfo.initial, ref["theta0"], rtol=1e-12)
    # lme4 needs 41 evaluations from there; the last few steps on the flat optimum differ by rounding
    assert abs(fit.optinfo.feval - ref["feval"]) <= 5


def test_other_models_start_at_the_identity():
    sleep = hb.datasets.load("sleepstudy")
    for key in ("sleep_slopes", "sleep_zcp"):
        ref = START[key]
        model = hb.Model(ref["formula"], sleep)
        np.testing.assert_array_equal(lme4_start(model.design), ref["theta0"])
        fit = hb.lmer(ref["formula"], sleep)
        assert abs(fit.optinfo.feval - ref["feval"]) <= 5, key
