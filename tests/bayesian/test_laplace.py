"""The Laplace start of the marginalized model (hierbayes/bayesian/laplace.py), pinned.

laplace_start reaches into PyMC's NUTS step (its compiled log-density and gradient,
its mass matrix and the integrator's reference to it) and returns None, so that
PyMC's default initialisation is used, when any of that fails. These tests fail
instead when a PyMC release changes those internals, and check what the start
computes against PyMC's public API: the mode of the log-density (``Model.compile_logp``
/ ``compile_dlogp`` on the unconstrained space, maximised here independently) and the
inverse of its Hessian as the mass matrix.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

import hierbayes as hb
from hierbayes.bayesian.laplace import laplace_start
from hierbayes.bayesian.model import build

pm = pytest.importorskip("pymc")


@pytest.fixture(scope="module")
def started(sleep_data):
    model = hb.Model("Reaction ~ Days + (1 | Subject)", sleep_data)  # small: four parameters
    built = build(model.design, model.family, None, None, None)
    assert built.marginalized
    step = pm.NUTS(model=built.pymc_model)
    start = laplace_start(step, built.pymc_model, 3, np.random.default_rng(1))
    return built.pymc_model, step, start


def _public_mode(pm_model) -> tuple[np.ndarray, list, list]:
    """The posterior mode on the unconstrained space from PyMC's public compiled log-density."""
    point = pm_model.initial_point()
    names = [v.name for v in pm_model.value_vars]
    shapes = [np.shape(point[n]) for n in names]
    logp, dlogp = pm_model.compile_logp(), pm_model.compile_dlogp()

    def unpack(x):
        parts = np.split(x, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
        return {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}

    x0 = np.concatenate([np.ravel(point[n]) for n in names])
    res = optimize.minimize(lambda x: (-logp(unpack(x)), -dlogp(unpack(x))), x0, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 10_000})  # fmt: skip
    return res.x, names, shapes


def test_the_start_is_computed_not_skipped(started):
    """With this PyMC, the internals it uses exist: no silent fallback to PyMC's default initialisation."""
    _, step, start = started
    assert start is not None, "laplace_start fell back: PyMC's NUTS internals changed"
    initvals, var = start
    assert len(initvals) == 3 and np.all(var > 0)
    from pymc.step_methods.hmc.quadpotential import QuadPotentialFullAdapt

    assert isinstance(step.potential, QuadPotentialFullAdapt)  # few parameters: a dense mass matrix
    assert step.integrator._potential is step.potential  # the integrator uses the new mass matrix


def test_mode_and_scales_are_the_posterior_modes(started):
    pm_model, step, start = started
    initvals, var = start
    mode, names, shapes = _public_mode(pm_model)
    # the adapted potential is centred at the mode laplace_start found
    np.testing.assert_allclose(step.potential._initial_mean, mode, atol=2e-3 * np.sqrt(var).max())
    # its variances are the diagonal of the inverse Hessian of -logp at the mode (finite differences of dlogp)
    dlogp = pm_model.compile_dlogp()
    sizes = [int(np.prod(s)) for s in shapes]

    def grad(x):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        return -dlogp({n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)})

    h = 1e-5 * np.maximum(1.0, np.abs(mode))
    H = np.column_stack([(grad(mode + e) - grad(mode - e)) / (2 * h[i]) for i, e in enumerate(np.diag(h))])
    np.testing.assert_allclose(var, np.diag(np.linalg.inv((H + H.T) / 2)), rtol=1e-3)
    # each chain starts half a posterior SD (per coordinate) from the mode: distinct, finite, within 4 SDs
    rv_names = {v.name: rv.name for rv, v in pm_model.rvs_to_values.items()}
    assert {rv_names[n] for n in names} == set(initvals[0])
    sigma = np.sqrt(var)
    starts = []
    for init in initvals:
        point = {}
        for rv, v in pm_model.rvs_to_values.items():
            tr = pm_model.rvs_to_transforms.get(rv)
            value = init[rv.name]
            point[v.name] = tr.forward(value, *rv.owner.inputs).eval() if tr is not None else value
        starts.append(np.concatenate([np.ravel(point[n]) for n in names]))
    starts = np.array(starts)
    assert np.all(np.isfinite(starts)) and len({tuple(s) for s in starts}) == 3
    assert np.all(np.abs(starts - mode) < 4 * sigma)
