"""theta -> the blocks' relative covariance factors."""

from __future__ import annotations

import numpy as np

import hierbayes as hb
from hierbayes.linalg import ThetaLayout


def test_layout_of_correlated_and_uncorrelated_bars():
    d = hb.Model("Reaction ~ Days + (Days | Subject) + (1 | Days)", hb.datasets.load("sleepstudy")).design
    layout = ThetaLayout(d.blocks)
    assert layout.size == 4 and layout.names[:3] == ["Subject.(Intercept)", "Subject.Days.(Intercept)", "Subject.Days"]
    lams = layout.lambdas(np.array([1.0, 0.5, 2.0, 3.0]))
    np.testing.assert_array_equal(lams[0], [[1.0, 0.0], [0.5, 2.0]])
    np.testing.assert_array_equal(lams[1], [[3.0]])
    np.testing.assert_array_equal(layout.lower, [0.0, -np.inf, 0.0, 0.0])
    cov = layout.covariances(np.array([1.0, 0.5, 2.0, 3.0]), 2.0)[0]
    np.testing.assert_allclose(cov, 4.0 * lams[0] @ lams[0].T)
