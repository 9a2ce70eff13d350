"""lme4's starting theta (``mkLmerDevfun``), which keeps BOBYQA on lme4's path.

Reference values printed by R 4.2.2 / lme4 1.1-31 (penicillin.csv as bundled):
``environment(lmer(f, d, devFunOnly = TRUE))$pp$theta`` and ``m@optinfo$feval``.
"""

from __future__ import annotations

import numpy as np

import hierbayes as hb
from hierbayes.reml.fit import lme4_start


def test_random_intercepts_start_at_the_moment_estimates():
    m = hb.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", hb.datasets.load("penicillin"))
    order = [b.group for b in m.design.blocks]  # lme4's order: most levels first
    assert order == ["plate", "sample"]
    np.testing.assert_allclose(lme4_start(m.design), [1.74491502214429, 3.59401348179836], rtol=1e-12)
    fit = hb.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", hb.datasets.load("penicillin"))
    np.testing.assert_allclose(fit.optinfo.initial, [1.74491502214429, 3.59401348179836], rtol=1e-12)
    # lme4 needs 41 evaluations from there; the last few steps on the flat optimum differ by rounding
    assert abs(fit.optinfo.feval - 41) <= 5


def test_other_models_start_at_the_identity():
    sleep = hb.datasets.load("sleepstudy")
    slopes = hb.Model("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_array_equal(lme4_start(slopes.design), [1.0, 0.0, 1.0])
    split = hb.Model("Reaction ~ Days + (Days || Subject)", sleep)
    np.testing.assert_array_equal(lme4_start(split.design), [1.0, 1.0])
