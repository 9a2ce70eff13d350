"""``sample_posterior``: build the PyMC model, sample it, and assemble the posterior DataTree (ArviZ 1.x).

The engine returns a :class:`Posterior` (the DataTree, how it was sampled, the priors); the fit object
(``PosteriorFit``) is made from it by :mod:`hierbayes.fits`.
"""

from __future__ import annotations

import importlib.util
import inspect
import numbers
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from hierbayes._progress import has_widgets, in_jupyter, show_progress
from hierbayes._version import __version__
from hierbayes._warnings import warn
from hierbayes.bayesian import blocked, names
from hierbayes.bayesian.distributional import aux_rows, params_of
from hierbayes.bayesian.laplace import laplace_start
from hierbayes.bayesian.model import build, resolve_marginalize
from hierbayes.bayesian.predict import PosteriorDraws, chol_draws, encode_rows, eta_chunks
from hierbayes.bayesian.predict import flat as _flat
from hierbayes.bayesian.priors import resolve_priors
from hierbayes.errors import ArgumentError, DataError, HierbayesWarning, ModelError

if TYPE_CHECKING:
    from hierbayes.bayesian.priors import ModelLike, PriorSet
    from hierbayes.design import Design
    from hierbayes.families import Family

SAMPLERS = ("pymc", "nutpie", "numpyro", "blackjax")
#: the packages each sampler needs, and the hierbayes extra that installs them
SAMPLER_PACKAGES = {"nutpie": ("nutpie",), "numpyro": ("numpyro", "jax"), "blackjax": ("blackjax", "jax")}
#: store log_likelihood / posterior_predictive automatically up to this many values (draws x rows) each
AUTO_STORE_MAX = 50_000_000


@dataclass(frozen=True)
class SamplingInfo:
    """How a posterior was obtained.

    ``sampler`` is the NUTS implementation that actually ran (``"pymc"``,
    ``"nutpie"``, ``"numpyro"`` or ``"blackjax"``, as PyMC records it in the
    posterior's ``inference_library`` attribute), ``sampler_version`` its version. ``backend`` is what it
    sampled: ``"compiled"`` (the hand-written Numba log-density of :mod:`hierbayes.bayesian.compiled`,
    compiled once per machine) or ``"pymc"`` (the PyMC model, compiled by PyTensor for this fit).
    """

    sampler: str
    marginalized: bool
    centered: bool | None
    draws: int
    tune: int
    chains: int
    target_accept: float
    random_seed: int | None
    seconds_sampling: float
    seconds_total: float = 0.0
    stored: tuple[str, ...] = field(default=())
    marginalization: str = "full"
    sampler_version: str = ""
    backend: str = "pymc"


@dataclass(frozen=True)
class Posterior:
    """What the Bayesian engine returns: the draws as an ArviZ 1.x DataTree, how they were obtained, the priors.

    ``pending``: None, or a function returning the groups computed on demand (``log_likelihood``,
    ``posterior_predictive``, named in ``info.stored``), which the fit adds to ``idata`` when first accessed.
    """

    idata: Any
    info: SamplingInfo
    priors: PriorSet
    pending: Callable[[], dict] | None = None


def sample_posterior(
    design: Design,
    family: Family,
    priors: dict | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: str | None = None,
    marginalize: bool | str | None = None,
    target_accept: float | None = None,
    progressbar: bool | None = None,
    cores: int | None = None,
    centered: bool | None = None,
    log_likelihood: bool | None = None,
    posterior_predictive: bool | None = None,
    structure=None,
    aux=(),
    **kwargs: Any,
) -> Posterior:
    """Sample the posterior of a mixed model (NUTS); what ``hb.bayes`` and ``Model.fit("bayes")`` run.

    Parameters
    ----------
    design, family
        The model's design and family.
    structure
        A residual structure (:func:`hierbayes.structures.bind_structure`) of a gaussian model, or None.
    aux
        The modelled auxiliary parameters of a distributional model
        (:class:`hierbayes.bayesian.distributional.AuxPredictor`, made by ``hb.Model`` from an ``hb.Formula``).
    priors
        The user's prior overrides (``Model(priors=...)``) of the defaults of
        :mod:`hierbayes.bayesian.priors`.
    draws, tune, chains
        Draws kept per chain, tuning iterations per chain, number of chains.
    random_seed
        Seed; the same seed gives the same draws.
    sampler
        The NUTS implementation. None (default): nutpie on the compiled
        log-density (:mod:`hierbayes.bayesian.compiled`; compiled once per
        machine, no per-fit compilation) for the models it implements (gaussian,
        one grouping factor, integrated out, priors of the default families)
        when nutpie is installed, else ``"pymc"``. ``"pymc"``: PyMC's own NUTS
        on the PyMC model (with a start and mass matrix from the posterior mode
        for marginalized models). ``"nutpie"`` (``pip install 'hierbayes[nutpie]'``):
        the compiled log-density where it applies, else the PyMC model compiled for nutpie;
        ``"numpyro"`` or ``"blackjax"`` (``pip install 'hierbayes[numpyro]'``
        / ``'hierbayes[blackjax]'``; not with the NumPy Op of crossed or wide
        marginalized models). The one that ran is ``fit.info.sampler``.
    marginalize
        Integrate random effects out of the likelihood analytically and draw
        them afterwards from their exact conditional (gaussian/identity
        models only):

        * ``"full"``: every factor. Each gradient factors the penalized
          least-squares system; with crossed factors the part after the
          first factor is dense (cubic in its size).
        * ``"first"``: the first factor (the one with the most levels),
          whose part of the system is block diagonal, and any factor small
          enough to add for free (e.g. InstEval's 14 departments); the other
          factors' effects are sampled by NUTS like ordinary parameters
          (see ``centered``). Each gradient then costs the non-zeros of the sparse
          cross-products, so large crossed designs stay fast.
        * True: ``"first"`` when a gradient of the full path would cost
          more than about 5e7 flops (``q1 qr^2 + qr^3`` for q1 effects of
          the first factor and qr of the others;
          ``hierbayes.bayesian.model.PARTIAL_COST_MIN``), else ``"full"``.
          InstEval's ``(1|s) + (1|d) + (1|dept)`` gets ``"first"``.
          False: nothing integrated out.
        * None (default): True for gaussian/identity models, False otherwise.

        All choices give the same posterior, with the same variables.
    target_accept
        NUTS target acceptance; default 0.8 when marginalized, 0.9 otherwise.
    progressbar
        Default (None): on in Jupyter (with ipywidgets, the ``notebook``
        extra) and in interactive Python/IPython sessions, off in scripts and
        tests, which then print nothing. False: off, True: on.
    cores
        Chains run in parallel (PyMC's default when None).
    centered
        Centered random effects instead of non-centered, for the factors
        that are sampled (not integrated out). None: non-centered, except
        the sampled factors of a ``"first"`` fit whose levels have at least
        20 rows (median), where the data pin the effects down and the
        centered form mixes better.
    log_likelihood, posterior_predictive
        Store the pointwise log-likelihood / posterior predictive in
        ``fit.idata``. None: when draws x rows is at most 50 million.
    **kwargs
        Passed to ``pymc.sample`` (e.g. ``init``, ``max_treedepth``).

    Returns
    -------
    Posterior
        ``hierbayes.fits.PosteriorFit`` is made from it.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> post = sample_posterior(m.design, m.family, draws=200, tune=200, chains=2, random_seed=1)  # doctest: +SKIP
    >>> post.info.sampler  # doctest: +SKIP
    'pymc'
    """
    _check_settings(draws, tune, chains, random_seed, sampler, target_accept, cores, progressbar, log_likelihood,
                    posterior_predictive, kwargs)  # fmt: skip
    t0 = time.perf_counter()
    sampler = "auto" if sampler is None else str(sampler).lower()
    _check_sampler(sampler)
    compiled_plan = None if aux else _compiled_plan(design, family, priors, sampler, marginalize, structure, kwargs)
    if compiled_plan is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            return _sample_compiled(*compiled_plan, design, family, draws, tune, chains, random_seed, target_accept,
                                    progressbar, cores, log_likelihood, posterior_predictive, t0)  # fmt: skip
    import pymc  # noqa: F401  (PyMC only when sampling; it loads NumPy's and SciPy's BLAS before the limit below)

    with threadpool_limits(limits=1, user_api="blas"):
        return _sample(design, family, priors, draws, tune, chains, random_seed, "pymc" if sampler == "auto" else
                       sampler, marginalize, target_accept, progressbar, cores, centered, log_likelihood,
                       posterior_predictive, kwargs, structure, t0, aux)  # fmt: skip


def _compiled_plan(design, family, priors, sampler, marginalize, structure, kwargs):
    """(plan, priors) of the compiled backend when it runs this fit (sampler None or "nutpie", nutpie installed,
    no PyMC keywords, a model it implements: :func:`hierbayes.bayesian.compiled.plan`), else None."""
    if sampler not in ("auto", "nutpie") or kwargs or structure is not None or len(design.blocks) != 1:
        return None
    if not family.is_gaussian or importlib.util.find_spec("nutpie") is None:
        return None
    from hierbayes.bayesian.compiled import plan  # Numba: the compiled log-density, loaded when it is used

    pset = resolve_priors(design, family, priors)
    pl = plan(design, family, pset, resolve_marginalize(design, family, marginalize), structure)[0]
    return None if pl is None else (pl, pset)


def _sample_compiled(pl, pset, design, family, draws, tune, chains, random_seed, target_accept, progressbar, cores,
                     log_likelihood, posterior_predictive, t0):  # fmt: skip
    """Sample with the compiled backend (:mod:`hierbayes.bayesian.compiled`) and assemble the Posterior."""
    from hierbayes.bayesian import compiled  # Numba: the compiled log-density, loaded when it is used

    if target_accept is None:
        target_accept = 0.8
    seq = np.random.SeedSequence(random_seed)
    s_sample, s_ranef, s_ppc = seq.spawn(3)
    sample_seed = int(s_sample.generate_state(1)[0] % (2**31))
    cores = _default_cores(chains) if cores is None else cores
    t1 = time.perf_counter()
    x, stats, version = compiled.sample(pl, draws, tune, chains, cores, sample_seed, float(target_accept),
                                        _progressbar(progressbar))  # fmt: skip
    seconds_sampling = time.perf_counter() - t1
    post = compiled.posterior_dataset(pl, x, design.blocks[0])
    post = post.assign(_conditional_ranef(design, post, np.random.default_rng(s_ranef)))
    post.attrs = {"inference_library": "nutpie", "inference_library_version": version,
                  "hierbayes_version": __version__}  # fmt: skip
    info = dict(sampler="nutpie", marginalized=True, centered=None, draws=draws, tune=tune, chains=chains,
                target_accept=float(target_accept), random_seed=random_seed, seconds_sampling=seconds_sampling,
                marginalization="full", sampler_version=version, backend="compiled")  # fmt: skip
    return _assemble(design, family, post, stats, info, pset, log_likelihood, posterior_predictive, s_ppc, t0)


def _default_cores(chains: int) -> int:
    """Chains run in parallel: PyMC's own default can see one CPU where the OS gives more."""
    return max(1, min(chains, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def _sample(design, family, priors, draws, tune, chains, random_seed, sampler, marginalize, target_accept,
            progressbar, cores, centered, log_likelihood, posterior_predictive, kwargs, structure=None,
            t0=None, aux=()):  # fmt: skip
    import pymc as pm  # PyMC only when sampling: import hierbayes stays light

    t0 = time.perf_counter() if t0 is None else t0
    if structure is not None:
        if log_likelihood or posterior_predictive:
            raise ModelError(
                "log_likelihood and posterior_predictive are not stored for a model with a residual structure (its "
                "rows are not independent given the random effects); leave them out"
            )
        log_likelihood = posterior_predictive = False
    built = build(design, family, priors, marginalize, centered, structure, aux)
    if sampler in ("numpyro", "blackjax") and built.numpy_op:
        raise ModelError(
            f"sampler='{sampler}' compiles the model to JAX, which cannot run the NumPy Op of this marginalized "
            "model (crossed or nested factors, or more than 4 terms); use sampler='pymc' or 'nutpie', or "
            "marginalize=False"
        )
    if target_accept is None:
        target_accept = 0.8 if built.marginalized else 0.9
    seq = np.random.SeedSequence(random_seed)
    s_sample, s_ranef, s_ppc = seq.spawn(3)
    sample_seed = int(s_sample.generate_state(1)[0] % (2**31))
    progressbar = _progressbar(progressbar)
    var_names = list(built.var_names)
    pm_kwargs = dict(kwargs)
    if sampler == "pymc":
        pm_kwargs["var_names"] = var_names
        if built.marginalized and "step" not in pm_kwargs and "initvals" not in pm_kwargs:
            nuts_kw = {k: pm_kwargs.pop(k) for k in ("max_treedepth", "early_max_treedepth") if k in pm_kwargs}
            step = pm.NUTS(model=built.pymc_model, target_accept=target_accept, **nuts_kw)
            unit = {f"z__{b.group}" for b in design.blocks} if built.marginalization == "first" else set()
            rng_start = np.random.default_rng(s_ranef.spawn(1)[0])
            start = laplace_start(step, built.pymc_model, chains, rng_start, unit_variance=unit)
            pm_kwargs["step"] = step
            if start is not None:
                pm_kwargs["initvals"] = start[0]
    if "step" not in pm_kwargs:
        pm_kwargs["target_accept"] = target_accept
    if cores is None:
        cores = _default_cores(chains)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        _quiet_third_party_warnings()
        idata = pm.sample(
            draws=draws, tune=tune, chains=chains, cores=cores, random_seed=sample_seed, progressbar=progressbar,
            quiet=not progressbar, nuts_sampler=sampler, model=built.pymc_model, compute_convergence_checks=False,
            **pm_kwargs,
        )  # fmt: skip
    seconds_sampling = time.perf_counter() - t1
    posterior = idata["posterior"]
    used = str(posterior.attrs.get("inference_library", sampler))
    post = posterior.to_dataset()[[v for v in var_names if v in posterior]]
    if built.marginalization == "full":
        post = post.assign(_conditional_ranef(design, post, np.random.default_rng(s_ranef)))
    elif built.marginalization == "first":
        post = post.assign(_conditional_first(design, post, np.random.default_rng(s_ranef)))
    post.attrs = {**posterior.attrs, "hierbayes_version": __version__}
    info = dict(sampler=used, marginalized=built.marginalized, centered=centered, draws=draws, tune=tune,
                chains=chains, target_accept=float(target_accept), random_seed=random_seed,
                seconds_sampling=seconds_sampling, marginalization=built.marginalization,
                sampler_version=str(posterior.attrs.get("inference_library_version", "")), backend="pymc")  # fmt: skip
    return _assemble(design, family, post, idata["sample_stats"].to_dataset(), info, built.priors, log_likelihood,
                     posterior_predictive, s_ppc, t0, aux)  # fmt: skip


def _assemble(design, family, post, sample_stats, info: dict, priors, log_likelihood, posterior_predictive, s_ppc,
              t0, aux=()) -> Posterior:  # fmt: skip
    """The Posterior of sampled draws (``post``, random effects included): its DataTree, with the pointwise
    log-likelihood and posterior predictive left to compute on demand, and its SamplingInfo."""
    draws_ = posterior_draws(design, family, post)
    want_ll, want_pp = _wanted_groups(design, draws_.size, log_likelihood, posterior_predictive)
    stored = tuple(g for g, w in (("log_likelihood", want_ll), ("posterior_predictive", want_pp)) if w)
    pending = None
    if stored:  # computed when first asked for (fit.idata), from these draws and this seed: the same values

        def pending() -> dict:
            return _observation_groups(design, family, post, draws_, want_ll, want_pp, s_ppc, aux)[0]

    y, trials = family.counts(design.y, design.trials, design.weights)
    obs = {names.OBS_DIM: list(design.frame.row_index)}
    tree = {
        "posterior": post,
        "sample_stats": sample_stats,
        "observed_data": _dataset({names.Y: ((names.OBS_DIM,), y)}, obs),
    }
    if getattr(design, "streamed", None) is not None:  # rows read in pieces: no observed rows to store
        del tree["observed_data"]
    if trials is not None:  # a binomial response is successes out of these: what y and its replicates count
        tree["constant_data"] = _dataset({"trials": ((names.OBS_DIM,), np.asarray(trials, dtype=float))}, obs)
    result = datatree(tree)
    info_ = SamplingInfo(**info, seconds_total=time.perf_counter() - t0, stored=stored)
    return Posterior(result, info_, priors, pending)


def add_groups(tree, groups: dict):
    """``tree`` (a DataTree) with ``groups`` (name -> Dataset) added, in ArviZ's group order."""
    existing = {name: node.to_dataset() for name, node in tree.children.items()}
    return datatree({**existing, **groups})


def datatree(groups: dict, stamp: bool = True):
    """An ArviZ 1.x DataTree from group name -> Dataset, groups in ArviZ's order.

    ``stamp``: give groups without attributes ArviZ's standard ones (creation time and library).
    """
    from arviz_base import make_attrs  # ArviZ only for the DataTree: import hierbayes stays light
    from xarray import DataTree  # (as ArviZ)

    order = ("posterior", "posterior_predictive", "log_likelihood", "sample_stats", "observed_data", "constant_data")
    names_ = [g for g in order if g in groups] + [g for g in groups if g not in order]
    out = {}
    for g in names_:
        ds = groups[g]
        if stamp and not ds.attrs:
            ds = ds.assign_attrs(make_attrs({"inference_library": "hierbayes",
                                             "inference_library_version": __version__}))  # fmt: skip
        out[g] = ds
    return DataTree.from_dict(out)


def check_sampler_options(options: dict) -> None:
    """The sampler settings among ``options`` (hb.bayes' keywords) checked against sample_posterior's defaults.

    Called by hb.bayes and Model.fit before the model is built, so a bad setting costs nothing.
    """
    params = inspect.signature(sample_posterior).parameters
    names = ("draws", "tune", "chains", "random_seed", "sampler", "target_accept", "cores", "progressbar",
             "log_likelihood", "posterior_predictive")  # fmt: skip
    values = [options.get(n, params[n].default) for n in names]
    _check_settings(*values, {})


def _check_settings(draws, tune, chains, random_seed, sampler, target_accept, cores, progressbar, log_likelihood,
                    posterior_predictive, kwargs) -> None:  # fmt: skip
    """Every sampler setting checked before anything is built or compiled; an ArgumentError names the argument."""

    def integer(name, value, low):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ArgumentError(f"{name} must be an integer, not {value!r}")
        if value < low:
            raise ArgumentError(f"{name} must be at least {low}, not {value}")

    integer("draws", draws, 1)
    integer("tune", tune, 0)
    integer("chains", chains, 1)
    if cores is not None:
        integer("cores", cores, 1)
    if random_seed is not None:
        integer("random_seed", random_seed, 0)
    if sampler is not None and (not isinstance(sampler, str) or sampler.lower() not in SAMPLERS):
        raise ArgumentError(f"sampler must be None or one of {', '.join(repr(s) for s in SAMPLERS)}, not {sampler!r}")
    if target_accept is not None:
        ok = isinstance(target_accept, numbers.Real) and not isinstance(target_accept, bool)
        if not ok or not 0 < float(target_accept) < 1:
            raise ArgumentError(f"target_accept must be a number strictly between 0 and 1, not {target_accept!r}")
    for name, value in (("progressbar", progressbar), ("log_likelihood", log_likelihood),
                        ("posterior_predictive", posterior_predictive)):  # fmt: skip
        if value is not None and not isinstance(value, bool | np.bool_):
            raise ArgumentError(f"{name} must be True, False or None, not {value!r}")
    unknown = sorted(set(kwargs) - _passthrough_keywords()) if kwargs else []
    if unknown:
        raise ModelError(
            f"unknown sampler keyword(s) {', '.join(map(repr, unknown))}; hb.bayes takes draws, tune, chains, "
            "random_seed, sampler, marginalize, target_accept, progressbar, cores, centered, log_likelihood, "
            "posterior_predictive, warn, and these of pymc.sample and its NUTS: "
            + ", ".join(sorted(_passthrough_keywords()))
        )


#: pymc.sample arguments that hb.bayes sets itself (or that would break the fit's results)
_OWN = {"draws", "tune", "chains", "cores", "random_seed", "progressbar", "quiet", "nuts_sampler", "model",
        "compute_convergence_checks", "return_inferencedata", "var_names", "trace", "discard_tuned_samples",
        "target_accept", "progressbar_theme", "kwargs"}  # fmt: skip


def _passthrough_keywords() -> set[str]:
    """Keywords of ``pymc.sample`` and of its NUTS step that ``sample_posterior`` passes on."""
    import pymc as pm  # PyMC only when sampling: import hierbayes stays light

    sample = set(inspect.signature(pm.sample).parameters)
    nuts = {p for c in pm.NUTS.__mro__ if "__init__" in vars(c) for p in inspect.signature(c.__init__).parameters}
    return (sample | (nuts - {"self", "vars", "model", "kwargs", "args"})) - _OWN


def _quiet_third_party_warnings() -> None:
    """Silence warnings about PyMC's internals that a user cannot act on (call inside ``catch_warnings``).

    PyMC starts the chains' processes with ``fork`` (its default on Linux), and Python >= 3.12 warns
    (DeprecationWarning) whenever a process with more than one thread forks; NumPy's and SciPy's
    OpenBLAS start idle worker threads when imported, so every multi-chain fit would warn. The
    alternative start methods cost far more: with ``mp_ctx="forkserver"`` each chain process
    recompiles the model, and sleepstudy's 4 x 2000 iterations took 35-38 s of sampling instead of 6-10 s
    (measured on 2 cores).
    """
    warnings.filterwarnings(
        "ignore", message=r"This process \(pid=\d+\) is multi-threaded, use of fork\(\)", category=DeprecationWarning
    )


def _check_sampler(sampler: str) -> None:
    missing = [m for m in SAMPLER_PACKAGES.get(sampler, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelError(
            f"sampler='{sampler}' needs the package(s) {', '.join(missing)}, which are not installed: "
            f"pip install 'hierbayes[{sampler}]'. sampler='pymc' always works"
            + (" and sampler='nutpie' is installed" if importlib.util.find_spec("nutpie") else "")
        )


def _progressbar(progressbar: bool | None) -> bool:
    """The progress bar setting, hierbayes' one convention (:mod:`hierbayes._progress`); PyMC's bar in Jupyter
    is an ipywidget, so asking for one there without ipywidgets warns and samples without."""
    if progressbar and in_jupyter() and not has_widgets():
        warn("a progress bar in Jupyter needs ipywidgets: pip install 'hierbayes[notebook]' (sampling without "
             "one now)", HierbayesWarning)  # fmt: skip
        return False
    return show_progress(progressbar)


def posterior_draws(design: Design, family: Family, post) -> PosteriorDraws:
    """Flattened draws of everything the predictions need."""
    d = design
    return PosteriorDraws(
        beta=_flat(post[names.BETA]),
        ranef=[_flat(post[names.ranef_var(b.group)]) for b in d.blocks],
        chol=[chol_draws(post, b) for b in d.blocks],
        params={p: _flat(post[p]) for p in family.aux if p in post},  # not those with a formula (per row)
    )


def _conditional_ranef(d: Design, post, rng: np.random.Generator) -> dict:
    """Exact draws of the random effects given each posterior draw of beta, the SDs/correlations and sigma."""
    cp = blocked.gaussian_crossproducts(d)
    beta = _flat(post[names.BETA])
    sigma = _flat(post["sigma"])
    Ls = [chol_draws(post, b) for b in d.blocks]
    if len(d.blocks) == 1:
        out = [blocked.draw_ranef_one_block(cp, beta, sigma, Ls[0], rng)]
    else:
        S = len(sigma)
        seeds = rng.spawn(S)

        def one(s: int) -> list[np.ndarray]:
            return blocked.draw_ranef(cp, beta[s], float(sigma[s]), [L[s] for L in Ls], seeds[s])

        workers = min(os.cpu_count() or 1, 4) if cp.qr > 300 else 1
        if workers > 1:
            with ThreadPoolExecutor(workers) as ex:
                res = list(ex.map(one, range(S)))
        else:
            res = [one(s) for s in range(S)]
        out = [np.stack([r[g] for r in res]) for g in range(len(d.blocks))]
    return _ranef_arrays(d.blocks, out, post)


def _conditional_first(d: Design, post, rng: np.random.Generator) -> dict:
    """Exact draws of the integrated-out factors' effects given each posterior draw (partial marginalization)."""
    from hierbayes.bayesian.partial import draw_marginalized, partial_split  # imports PyTensor (its Op)

    split = partial_split(d)
    sampled = [d.blocks[i] for i in split.sampled]
    b_s = np.concatenate([_flat(post[names.ranef_var(b.group)]).reshape(-1, b.nlevels * b.k) for b in sampled], axis=1)
    blocks = [d.blocks[i] for i in split.marginal]
    Ls = [chol_draws(post, b) for b in blocks]
    arrays = draw_marginalized(split, _flat(post[names.BETA]), _flat(post["sigma"]), Ls, b_s, rng)
    return _ranef_arrays(blocks, arrays, post)


def _ranef_arrays(blocks, arrays: list[np.ndarray], post) -> dict:
    """``r__<g>`` DataArrays (chain, draw, level, term) from flat (draws, levels, k) arrays."""
    import xarray as xr  # xarray only for the DataTree: import hierbayes stays light

    chains, ndraw = post.sizes["chain"], post.sizes["draw"]
    result = {}
    for b, arr in zip(blocks, arrays, strict=True):
        result[names.ranef_var(b.group)] = xr.DataArray(
            arr.reshape(chains, ndraw, b.nlevels, b.k),
            dims=("chain", "draw", names.level_dim(b.group), names.term_dim(b.group)),
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                names.level_dim(b.group): list(b.levels),
                names.term_dim(b.group): list(b.terms),
            },
        )
    return result


def _wanted_groups(d, n_draws: int, want_ll, want_pp) -> tuple[bool, bool]:
    """Whether the fit holds log_likelihood / posterior_predictive: the user's setting, else by size."""
    streamed = getattr(d, "streamed", None)
    if streamed is not None:  # rows read in pieces and not kept: nothing per row to store
        if want_ll or want_pp:
            raise DataError(f"log_likelihood and posterior_predictive are per row, and a fit from the "
                            f"{streamed.source} keeps no rows; leave them unset")  # fmt: skip
        return False, False
    big = n_draws * d.n > AUTO_STORE_MAX
    return (not big if want_ll is None else bool(want_ll)), (not big if want_pp is None else bool(want_pp))


def _observation_groups(d, fam, post, draws: PosteriorDraws, want_ll, want_pp, seed,
                        aux=()) -> tuple[dict, tuple[str, ...]]:  # fmt: skip
    """The log_likelihood and posterior_predictive groups, from one vectorized pass over chunks of draws of eta."""
    chains, ndraw = post.sizes["chain"], post.sizes["draw"]
    want_ll, want_pp = _wanted_groups(d, draws.size, want_ll, want_pp)
    if not (want_ll or want_pp):
        return {}, ()
    y, trials = fam.counts(d.y, d.trials, d.weights)
    rows = encode_rows(d, None, None)
    rng = np.random.default_rng(seed)
    ll = np.empty((draws.size, d.n)) if want_ll else None
    pp = np.empty((draws.size, d.n)) if want_pp else None
    # gaussian prior weights: row i has residual SD sigma / sqrt(w_i) (a zero weight: no information, NaN)
    scale = None
    if fam.is_gaussian and d.weights is not None:
        with np.errstate(divide="ignore"):
            scale = 1.0 / np.sqrt(np.asarray(d.weights, dtype=float))
        scale[~np.isfinite(scale)] = np.nan
    parts = aux_rows(list(aux), post, None, None, "error", np.ones(d.n, dtype=bool), d) if aux else []
    for sl, eta in eta_chunks(rows, draws, rng):
        params = params_of(draws, parts, sl)
        if scale is not None:
            params["sigma"] = params["sigma"] * scale
        if ll is not None:
            ll[sl] = fam.logpdf(y, eta, params, trials)
        if pp is not None:
            pp[sl] = fam.rvs(eta, params, trials, rng)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, names.OBS_DIM: list(d.frame.row_index)}
    dims = ("chain", "draw", names.OBS_DIM)
    groups, stored = {}, []
    for group, arr in (("log_likelihood", ll), ("posterior_predictive", pp)):
        if arr is not None:
            groups[group] = _dataset({names.Y: (dims, arr.reshape(chains, ndraw, -1))}, coords)
            stored.append(group)
    return groups, tuple(stored)


def _dataset(data: dict, coords: dict):
    import xarray as xr  # xarray only for the DataTree: import hierbayes stays light

    return xr.Dataset(data, coords=coords)


def sample_prior_predictive(model: ModelLike, draws: int = 500, random_seed: int | None = None):
    """Draws from the prior and the prior predictive distribution of the response.

    Uses the full (non-marginalized) PyMC model, so the random effects are
    drawn too.

    Parameters
    ----------
    model
        A :class:`hierbayes.Model`; its priors are those a fit would use.
    draws
        Number of draws.
    random_seed
        Seed for reproducible draws.

    Returns
    -------
    xarray.DataTree
        ArviZ 1.x groups ``prior`` (the variables of :mod:`hierbayes.bayesian.names`),
        ``prior_predictive`` (``y``) and ``observed_data``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> idata = sample_prior_predictive(m, draws=50, random_seed=1)
    >>> idata.prior_predictive["y"].shape
    (1, 50, 180)
    """
    _check_settings(draws, 0, 1, random_seed, "pymc", None, None, None, None, None, {})
    import pymc as pm  # PyMC only when sampling: import hierbayes stays light

    built = build(model.design, model.family, model.priors, marginalize=False, aux=getattr(model, "aux", ()))
    var_names = [*built.var_names, names.Y]
    return pm.sample_prior_predictive(draws, model=built.pymc_model, var_names=var_names, random_seed=random_seed)
