"""Parametric bootstrap of a GLMM fit (lme4's ``bootMer`` / ``confint(method = "boot")``).

Each replicate draws new random effects ``b ~ N(0, Lambda Lambda')`` per
level, a new response from the family at ``mu = g^-1(X beta + offset + Z b)``
(binomial successes out of the same trials, Poisson counts), and refits the
model from the original estimates. Percentile intervals (lme4's default
``boot.type = "perc"``) of the SDs/correlations and fixed effects are
returned with lme4's row names. The same ``seed`` gives the same draws.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes._progress import progress_bar, resolve
from hierbayes._threads import single_thread_blas
from hierbayes.design.varcorr import sdcor_parameters
from hierbayes.errors import HierbayesError
from hierbayes.glmm.family_par import estimate_family_par_glmm
from hierbayes.glmm.fit import estimate_glmm

if TYPE_CHECKING:
    from hierbayes._types import GlmerFit  # a Protocol: the fits sit above this layer


def simulate_response(fit: GlmerFit, nsim: int, rng: np.random.Generator, use_u: bool = False) -> np.ndarray:
    """Responses simulated from the fitted model, shape (nsim, n), in the design's form.

    Binomial data come back as the design holds them: successes for
    ``cbind``, proportions for proportions with weights, 0/1 otherwise.
    """
    d, r, e = fit.design, fit.response, fit.estimates
    base = d.X @ e.beta + r.offset
    proportions = r.binomial and d.trials is None  # 0/1 data, or proportions with weights as the trials
    if proportions:
        trials = np.ones(d.n, np.int64) if d.weights is None else np.rint(d.weights).astype(np.int64)
    else:
        trials = d.trials
    out = np.empty((nsim, d.n))
    for s in range(nsim):
        eta = base.copy()
        for block, lam, bb in zip(d.blocks, fit.layout.lambdas(e.theta), e.b, strict=True):
            b = bb if use_u else rng.standard_normal((block.nlevels, block.k)) @ lam.T
            eta += np.einsum("ij,ij->i", block.Z, b[block.codes])
        y = r.family.simulate(r.linkinv(eta), trials, rng)
        out[s] = y / np.maximum(trials, 1) if proportions else y
    return out


def bootstrap(
    fit: GlmerFit,
    nsim: int = 500,
    seed: int | None = None,
    progress: bool | None = None,
    progressbar: bool | None = None,
) -> pd.DataFrame:
    """Parametric bootstrap replicates of the SDs/correlations and fixed effects.

    Parameters
    ----------
    fit
        A GLMM fit.
    nsim
        Number of replicates.
    seed
        Seed for NumPy's default generator.
    progress
        The older spelling of ``progressbar``.
    progressbar
        A progress bar: by default in Jupyter and interactive sessions only (:mod:`hierbayes._progress`).

    Returns
    -------
    pandas.DataFrame
        One row per replicate, columns ``.sig01``, ..., then the fixed
        effects. Replicates whose refit failed are NaN (lme4 drops them).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> bootstrap(fit, nsim=3, seed=1).shape
    (3, 5)
    """
    rng = np.random.default_rng(seed)
    ys = simulate_response(fit, nsim, rng)
    names = list(fit.sdcor.index) + list(fit.fixef.index)
    out = np.full((nsim, len(names)), np.nan)
    start = {"theta": fit.estimates.theta, "fixef": fit.estimates.beta}
    bar = progress_bar(nsim, "bootstrap", resolve(progressbar, progress, "bootstrap"), unit="refit")
    for s in range(nsim):
        bar.update()
        design = dataclasses.replace(fit.design, y=ys[s])
        try:
            with warnings.catch_warnings(), single_thread_blas():
                warnings.simplefilter("ignore")
                if fit.estimates.family_par_free:  # NB theta or the dispersion re-estimated in each replicate
                    est = estimate_family_par_glmm(design, fit.model.family, start=start, calc_derivs=False)
                else:
                    est = estimate_glmm(design, fit.family, nAGQ=fit.nAGQ, start=start, calc_derivs=False)
        except (HierbayesError, FloatingPointError, np.linalg.LinAlgError):
            continue
        covs = fit.layout.covariances(est.theta, 1.0)
        fam = est.response.family
        sigma = np.sqrt(fam.parameter) if fit.sigma is not None else None
        out[s] = np.concatenate([sdcor_parameters(design.blocks, covs, sigma).to_numpy(), est.beta])
    bar.close()
    return pd.DataFrame(out, columns=names)


def boot_confint(
    fit: GlmerFit,
    level: float = 0.95,
    nsim: int = 500,
    seed: int | None = None,
    progress: bool | None = None,
    progressbar: bool | None = None,
) -> pd.DataFrame:
    """Percentile bootstrap intervals (lme4's ``confint(m, method = "boot")``), rows as lme4's.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> list(boot_confint(fit, nsim=10, seed=1).columns)
    ['lower', 'upper']
    """
    reps = bootstrap(fit, nsim=nsim, seed=seed, progress=progress, progressbar=progressbar)
    a = (1 - level) / 2
    q = reps.quantile([a, 1 - a]).T
    q.columns = ["lower", "upper"]
    return q
