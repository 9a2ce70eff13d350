"""A starting point and mass matrix for NUTS from the posterior mode of a marginalized model (Laplace)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize

#: dense (full) mass matrix for the marginalized model up to this many parameters, diagonal beyond
FULL_MASS_MAX = 50
#: the Laplace start computes a finite-difference Hessian of at most this many parameters (else PyMC's default)
LAPLACE_MAX = 3000


def laplace_start(
    step, pm_model, chains: int, rng: np.random.Generator, unit_variance: set[str] = frozenset()
) -> tuple[list[dict], np.ndarray] | None:
    """Starting points and a diagonal mass matrix from the posterior mode and its curvature.

    Only for the marginalized model, whose posterior has a proper mode (the
    full hierarchical model's mode is at SD = 0). With partial
    marginalization the non-centered effects of the other factors (named in
    ``unit_variance``) are parameters too; the curvature at the joint mode
    understates their posterior variance (by 10x on InstEval), so their
    mass-matrix entries start at their prior variance, 1, and the curvature
    is computed for the other parameters only (given the effects at the
    mode), which keeps this step linear in the number of effects. The mode is found with
    L-BFGS on the unconstrained space, with the NUTS step's own compiled
    log-density; the covariance is the inverse of a finite-difference
    Hessian, and each chain starts half a posterior SD away from the mode in
    a random direction. NUTS then starts tuning with the right scales
    instead of the identity, which saves most of the long trajectories of
    early tuning. Sets the step's mass matrix and returns the initial
    values and the variances, or None when anything fails (PyMC's default
    initialization is used then).
    """
    from pymc.step_methods.hmc.quadpotential import (  # PyMC only when sampling
        QuadPotentialDiagAdapt,
        QuadPotentialFullAdapt,
    )

    try:
        f = step._logp_dlogp_func
        f.set_extra_values({})
        point = pm_model.initial_point()
        value_vars = list(f._grad_vars)
        shapes = [np.shape(point[v.name]) for v in value_vars]
        x0 = np.concatenate([np.ravel(point[v.name]) for v in value_vars])

        def neg(x):
            lp, g = f(x)
            return (-float(lp), -np.asarray(g)) if np.isfinite(lp) else (np.inf, np.zeros_like(x))

        x = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B").x
        offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
        unit = np.zeros(len(x), dtype=bool)
        for v, a, e in zip(value_vars, offsets[:-1], offsets[1:], strict=True):
            unit[a:e] = v.name in unit_variance
        free = np.flatnonzero(~unit)  # the curvature is needed (and computed) only here
        if len(free) > LAPLACE_MAX:
            return None
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        H = np.empty((len(free), len(free)))
        for col, i in enumerate(free):
            e = np.zeros_like(x)
            e[i] = h[i]
            H[:, col] = (neg(x + e)[1][free] - neg(x - e)[1][free]) / (2 * h[i])
        H = (H + H.T) / 2
        if not np.all(np.linalg.eigvalsh(H) > 0):
            return None
        cov = np.linalg.inv(H)
        var = np.ones(len(x))
        var[free] = np.diag(cov)
        values_to_rvs = {v: rv for rv, v in pm_model.rvs_to_values.items()}
        initvals = []
        for _ in range(chains):
            xs = x + 0.5 * np.sqrt(var) * rng.standard_normal(len(x))
            parts = np.split(xs, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
            init = {}
            for v, part, shape in zip(value_vars, parts, shapes, strict=True):
                rv = values_to_rvs[v]
                init[rv.name] = _backward(pm_model.rvs_to_transforms.get(rv), part.reshape(shape))
            initvals.append(init)
        rng_p = step.rng.spawn(1)[0]
        if len(x) <= FULL_MASS_MAX and not unit_variance:
            with warnings.catch_warnings():  # "QuadPotentialFullAdapt is an experimental feature"
                warnings.simplefilter("ignore", UserWarning)
                step.potential = QuadPotentialFullAdapt(len(x), x, cov, initial_weight=10, rng=rng_p)
        else:
            step.potential = QuadPotentialDiagAdapt(len(x), x, var, initial_weight=10, rng=rng_p)
        step.integrator._potential = step.potential  # the integrator keeps its own reference
        return initvals, var
    except (np.linalg.LinAlgError, ValueError, FloatingPointError, NotImplementedError, AttributeError):
        return None


def _backward(transform, value: np.ndarray) -> np.ndarray:
    """The constrained value of an unconstrained one, for the transforms this engine's models use."""
    from pymc.distributions import transforms as tr  # PyMC only when sampling

    if transform is None:
        return value
    if isinstance(transform, tr.LogTransform):
        return np.exp(value)
    if isinstance(transform, tr.CholeskyCovPacked):
        out = value.copy()
        n = round((float(np.sqrt(8 * value.shape[-1] + 1)) - 1) / 2)
        idx = np.arange(1, n + 1).cumsum() - 1
        out[..., idx] = np.exp(out[..., idx])
        return out
    raise NotImplementedError(type(transform).__name__)
