"""Build the PyMC model of a ``hierbayes.Model``.

For every grouping factor g with k terms, the random effects are
``r_g[level] ~ N(0, Sigma_g)``, ``Sigma_g = L_g L_g'``. ``L_g`` is block
diagonal over the factor's bars: a correlated bar ``(1 + x | g)`` gets an
LKJ Cholesky factor with per-term SDs (``pm.LKJCholeskyCov``), a one-term
bar (each term of ``(x || g)``) just its SD. By default the effects are
non-centered, ``r_g = z_g L_g'`` with ``z_g ~ N(0, 1)``.

Gaussian models (identity link) integrate random effects out of the
likelihood (a ``pm.Potential`` named ``marginal_loglik``), and
:mod:`hierbayes.bayesian.sampling` draws them afterwards from their exact
conditional. ``marginalize="full"`` integrates every factor out
(:mod:`hierbayes.bayesian.marginal`): no random-effect variables at all.
``marginalize="first"`` integrates out the first factor (the one with the
most levels) and any factor small enough to come for free, and keeps the
other factors' effects as model variables (centered when the data pin them
down, see ``CENTER_MIN_ROWS``; :mod:`hierbayes.bayesian.partial`); it is chosen automatically
when the dense algebra of full marginalization would dominate
(:func:`full_marginal_cost` above ``PARTIAL_COST_MIN``). Names and dims of the
variables are listed in :mod:`hierbayes.bayesian.names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.bayesian import names
from hierbayes.bayesian.blocked import gaussian_crossproducts
from hierbayes.bayesian.categories import threshold_rv
from hierbayes.bayesian.distributional import coords as aux_coords
from hierbayes.bayesian.priors import Prior, PriorSet, resolve_priors
from hierbayes.errors import ModelError

if TYPE_CHECKING:
    import pymc as pm  # PyMC only when a model is built: import hierbayes stays light

    from hierbayes.bayesian.priors import ModelLike
    from hierbayes.design import Design
    from hierbayes.families import Family


#: the automatic choice integrates out only the first factor when ``full_marginal_cost`` exceeds this. Measured on
#: InstEval subsets (2 cores, 2 x 1000 iterations): with q1 = 2,264 and qr = 114 the full path still had the
#: better ESS/s (11 vs 4-9; 4.4 ms vs 0.3 ms per gradient, but 6.5 vs 30 leapfrog steps per draw and 5x the ESS
#: per draw); at qr = 214 (q1 = 2,838) a full gradient costs 16 ms and the partial path wins.
PARTIAL_COST_MIN = 5e7
#: with ``centered=None``, a sampled factor of a partially marginalized model is centered when its levels have at
#: least this many rows (median): its effects are then pinned by the data, where the non-centered form mixes slowly
#: (InstEval's 1,128 lecturers, 65 rows each: bulk ESS of their SD 800 -> 4,800 per 4,000 draws, sampling 2x faster)
CENTER_MIN_ROWS = 20
MARGINALIZE = ("full", "first", "none")


@dataclass(frozen=True)
class BuiltModel:
    """A PyMC model and what the sampler needs to know about it.

    ``marginalization`` is ``"full"`` (every factor integrated out),
    ``"first"`` (only the first factor) or ``"none"``; ``numpy_op`` says whether
    the likelihood is a NumPy Op (crossed, nested or wide factors) rather than
    a plain PyTensor graph, which JAX-based samplers cannot compile.
    """

    pymc_model: pm.Model
    marginalization: str
    priors: PriorSet
    var_names: tuple[str, ...]
    numpy_op: bool = False

    @property
    def marginalized(self) -> bool:
        return self.marginalization != "none"


def resolve_marginalize(design: Design, family: Family, marginalize: bool | str | None) -> str:
    """The marginalization a fit uses: ``"full"``, ``"first"`` or ``"none"``.

    None (gaussian/identity models: True; others: False); True: ``"first"``
    when :func:`full_marginal_cost` exceeds ``PARTIAL_COST_MIN``, ``"full"``
    otherwise; False: ``"none"``. ``"first"`` on a model whose other factors
    are all small (integrated out with the first, see
    :func:`hierbayes.bayesian.partial.choose_marginal`) is the same model as
    ``"full"`` and becomes it.
    Marginalizing a non-gaussian model is an error.
    """
    if isinstance(marginalize, str):
        mode = marginalize.lower()
        if mode not in MARGINALIZE:
            raise ModelError(f"marginalize must be True, False, None or one of {MARGINALIZE}, not {marginalize!r}")
    elif marginalize is None:
        mode = "auto" if family.is_gaussian else "none"
    else:
        mode = "auto" if marginalize else "none"
    if getattr(design, "streamed", None) is not None and mode not in ("auto", "full"):
        raise ModelError(f"marginalize={marginalize!r}: a model of data read in pieces keeps only the "
                         "cross-products, so every factor is integrated out (marginalize=True or 'full')")  # fmt: skip
    if getattr(design, "streamed", None) is not None:
        return "full"
    if mode == "none":
        return mode
    if not family.is_gaussian:
        raise ModelError(
            f"marginalize={marginalize!r} integrates the random effects out analytically, which is exact only for "
            f"the gaussian family with the identity link; this model is {family.name}/"
            f"{family.link.name}. Use marginalize=False (the default for it)."
        )
    if len(design.blocks) == 1:  # the first factor is every factor (decided without importing PyTensor)
        return "full"
    from hierbayes.bayesian.partial import choose_marginal  # its module holds a PyTensor Op: import stays light

    if len(choose_marginal(design)) == len(design.blocks):
        return "full"  # nothing would be left to sample: the same model
    if mode == "auto":
        mode = "first" if full_marginal_cost(design) > PARTIAL_COST_MIN else "full"
    return mode


def full_marginal_cost(design) -> float:
    """Flops of one gradient of the fully marginalized likelihood, roughly: ``q1 qr^2 + qr^3``.

    ``q1`` and ``qr`` are the number of effects of the first factor and of
    the others: eliminating the first factor fills the others' block in
    (``q1 qr^2``), which is then factored and inverted (``qr^3``).
    """
    q1 = design.blocks[0].nlevels * design.blocks[0].k
    qr = sum(b.nlevels * b.k for b in design.blocks[1:])
    return float(q1) * qr**2 + float(qr) ** 3


def build_pymc_model(model: ModelLike, marginalize: bool | str | None = None, centered: bool | None = None) -> pm.Model:
    """The PyMC model the Bayesian engine samples.

    Parameters
    ----------
    model
        A :class:`hierbayes.Model`.
    marginalize
        Integrate random effects out (gaussian/identity only): ``"full"``
        (all factors), ``"first"`` (the factor with the most levels and any
        small factor; the others stay model variables), True (``"first"`` when
        :func:`full_marginal_cost` exceeds ``PARTIAL_COST_MIN``, else
        ``"full"``) or False. None: True for gaussian models, False otherwise.
    centered
        Centered parameterization of the random effects (``r_g ~ MvNormal``)
        instead of the non-centered one; applies to the factors that are
        model variables (none when fully marginalized). None: non-centered,
        except the sampled factors of a partially marginalized model whose
        levels have at least ``CENTER_MIN_ROWS`` rows (median).

    Returns
    -------
    pymc.Model

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> pm_model = build_pymc_model(m, marginalize=False)
    >>> sorted(v.name for v in pm_model.free_RVs)
    ['beta', 'chol__Subject', 'sigma', 'z__Subject']
    """
    return build(model.design, model.family, model.priors, marginalize, centered,
                 aux=getattr(model, "aux", ())).pymc_model  # fmt: skip


def build(
    design: Design,
    family: Family,
    priors: dict | None,
    marginalize: bool | str | None = None,
    centered: bool | None = None,
    structure=None,
    aux=(),
) -> BuiltModel:
    """Build the PyMC model of a design, family and the user's prior overrides; list the variables a fit stores.

    ``structure``: a residual structure (:class:`hierbayes.structures.ResidualStructure`) of a gaussian
    model; its likelihood (:mod:`hierbayes.bayesian.structured`) needs the random effects sampled.
    ``aux``: the modelled auxiliary parameters (:mod:`hierbayes.bayesian.distributional`), each
    a per-row predictor; the random effects are then sampled (no marginalization).
    """
    import pymc as pm  # PyMC and PyTensor only when a model is built: import hierbayes stays light
    import pytensor.tensor as pt  # (as PyMC)

    if structure is not None:
        if marginalize not in (None, False, "none"):
            raise ModelError(
                f"marginalize={marginalize!r} is not available with a residual structure (correlation=/variance=): "
                "its likelihood is evaluated with the random effects sampled; leave marginalize out"
            )
        marginalize = False
    aux = list(aux or ())
    if aux:
        if structure is not None:
            raise ModelError("a residual structure (correlation=/variance=) and a formula for sigma together are not "
                             "available: give one of them")  # fmt: skip
        if marginalize not in (None, False, "none"):
            raise ModelError(
                f"marginalize={marginalize!r} integrates the random effects out with one residual SD; with a formula "
                f"for {', '.join(a.par for a in aux)} the random effects are sampled: leave marginalize out"
            )
        marginalize = False
    mode = resolve_marginalize(design, family, marginalize)
    d, fam = design, family
    if d.weights is not None and not fam.has_trials:
        if not fam.is_gaussian:
            raise ModelError(
                f"prior weights are supported for the gaussian and binomial families only, not {fam.name}; "
                "drop weights= for this model"
            )
        if mode == "first":
            raise ModelError(
                "prior weights with a partially marginalized model are not available; use marginalize='full' "
                "or marginalize=False"
            )
        if mode == "none" and np.any(np.asarray(d.weights) <= 0):
            raise ModelError(
                "prior weights of zero need the marginalized model (marginalize='full'): with the random effects "
                "sampled, drop those rows instead"
            )
    pset = resolve_priors(d, fam, priors, aux)
    coords = names.coords(d)
    for a in aux:
        coords.update(aux_coords(a))
    coords[names.OBS_DIM] = list(d.frame.row_index)
    keep = [names.BETA]
    numpy_op = False
    with pm.Model(coords=coords) as pm_model:
        beta = vector_rv(names.BETA, [pset[names.fixef_label(x)] for x in d.x_names], names.FIXEF_DIM)
        Ls = []
        for b in d.blocks:
            Ls.append(_block_factor(b, pset))
            keep.append(names.sd_var(b.group))
            if names.has_corr(b):
                keep.append(names.corr_var(b.group))
        params = {}
        modelled = {a.par: a for a in aux}
        for par in fam.aux:
            if par in modelled:
                params[par] = aux_parameter(modelled[par], pset, centered, keep)
                continue
            if par == names.THRESHOLD:  # ordinal families: a vector, ordered (hierbayes.bayesian.categories)
                params[par] = threshold_rv(d, fam, pset)
            else:
                params[par] = make_rv(par, pset[par])
            keep.append(par)
        if mode == "full":
            from hierbayes.bayesian.marginal import marginal_loglik, uses_op  # a PyTensor Op: PyMC models only

            cp = gaussian_crossproducts(d)
            numpy_op = uses_op(cp, len(Ls))
            pm.Potential("marginal_loglik", marginal_loglik(cp, beta, params["sigma"], Ls) + 0.5 * cp.ldw)
        elif mode == "first":
            from hierbayes.bayesian.partial import partial_loglik, partial_split, uses_op  # a PyTensor Op, as above

            split = partial_split(d)
            rest = []
            for i in split.sampled:
                rest.append(_ranef(d.blocks[i], Ls[i], _center(d.blocks[i], centered)).ravel())
                keep.append(names.ranef_var(d.blocks[i].group))
            b_s = pt.concatenate(rest) if len(rest) > 1 else rest[0]
            numpy_op = uses_op(split)
            ll = partial_loglik(split, beta, params["sigma"], [Ls[i] for i in split.marginal], b_s)
            pm.Potential("marginal_loglik", ll)
        else:
            eta = pt.dot(pt.as_tensor_variable(d.X), beta)
            if d.offset is not None:
                eta = eta + d.offset
            for b, L in zip(d.blocks, Ls, strict=True):
                r = _ranef(b, L, bool(centered))
                keep.append(names.ranef_var(b.group))
                eta = eta + pt.sum(pt.as_tensor_variable(b.Z) * r[b.codes], axis=1)
            if structure is not None:
                from hierbayes.bayesian.structured import structure_variables, structured_loglik  # PyMC, as above

                svars, snames = structure_variables(structure, pm_model)
                keep += snames
                pm.Potential("structured_loglik", structured_loglik(structure, d.y, eta, params["sigma"], svars,
                                                                    d.weights))  # fmt: skip
            elif fam.is_gaussian and d.weights is not None:  # residual SD sigma / sqrt(w)
                sd = params["sigma"] / np.sqrt(np.asarray(d.weights, dtype=float))
                pm.Normal(names.Y, mu=fam.link.pt_inverse(eta), sigma=sd, observed=d.y, dims=names.OBS_DIM)
            else:
                y, trials = fam.counts(d.y, d.trials, d.weights)
                fam.pymc_likelihood(eta, y, trials, params, names.OBS_DIM)
    return BuiltModel(pm_model, mode, pset, tuple(keep), numpy_op)


def aux_parameter(aux, pset, centered: bool | None, keep: list[str]):
    """The per-row parameter ``link^-1(X b + Z r)`` of one auxiliary predictor (inside a PyMC model)."""
    import pytensor.tensor as pt  # PyTensor only when a model is built: import hierbayes stays light

    d, par = aux.design, aux.par
    beta = vector_rv(names.dpar(par, names.BETA), [pset[f"{par}_{names.fixef_label(x)}"] for x in d.x_names],
                     names.dpar(par, names.FIXEF_DIM))  # fmt: skip
    keep.append(names.dpar(par, names.BETA))
    eta = pt.dot(pt.as_tensor_variable(d.X), beta)
    for b in d.blocks:
        L = _block_factor(b, pset, par)
        keep.append(names.dpar(par, names.sd_var(b.group)))
        if names.has_corr(b):
            keep.append(names.dpar(par, names.corr_var(b.group)))
        r = _ranef(b, L, bool(centered), par)
        keep.append(names.dpar(par, names.ranef_var(b.group)))
        eta = eta + pt.sum(pt.as_tensor_variable(b.Z) * r[b.codes], axis=1)
    return aux.link.pt_inverse(eta)


def make_rv(name: str, prior: Prior, dims=None, shape=None):
    """A PyMC random variable with the given prior."""
    import pymc as pm  # PyMC only when a model is built: import hierbayes stays light

    kw = {} if dims is None else {"dims": dims}
    if shape is not None:
        kw["shape"] = shape
    return getattr(pm, prior.dist)(name, **prior.kwargs, **kw)


def _dist(priors: list[Prior]):
    """An unregistered vector distribution (``.dist``) for priors of one family."""
    import pymc as pm  # PyMC only when a model is built: import hierbayes stays light

    keys = list(priors[0].kwargs)
    params = {k: np.array([p.kwargs[k] for p in priors], dtype=float) for k in keys}
    return getattr(pm, priors[0].dist).dist(**params, shape=len(priors))


def vector_rv(name: str, priors: list[Prior], dims: str):
    """One vector variable with elementwise priors; split by distribution when they differ."""
    import pymc as pm  # PyMC and PyTensor only when a model is built: import hierbayes stays light
    import pytensor.tensor as pt  # (as PyMC)

    if not priors:  # no columns (an ordinal model without predictors): an empty vector
        return pm.Deterministic(name, pt.zeros(0), dims=dims)
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(priors):
        groups.setdefault((p.dist, tuple(p.kwargs)), []).append(i)
    if len(groups) == 1:
        (dist, keys), _ = next(iter(groups.items()))
        params = {k: np.array([p.kwargs[k] for p in priors], dtype=float) for k in keys}
        return getattr(pm, dist)(name, **params, dims=dims)
    out = pt.zeros(len(priors))
    for j, ((dist, keys), idx) in enumerate(groups.items()):
        params = {k: np.array([priors[i].kwargs[k] for i in idx], dtype=float) for k in keys}
        part = getattr(pm, dist)(f"{name}__{j}", **params, shape=len(idx))
        out = pt.set_subtensor(out[np.array(idx)], part)
    return pm.Deterministic(name, out, dims=dims)


def _block_factor(block, pset: PriorSet, par: str | None = None):
    """L_g for one factor, and its ``sd__g`` / ``corr__g`` variables (an auxiliary parameter's: ``par`` in front)."""
    import pymc as pm  # PyMC and PyTensor only when a model is built: import hierbayes stays light
    import pytensor.tensor as pt  # (as PyMC)

    g, k = block.group, block.k

    def lab(label: str) -> str:  # an auxiliary parameter's labels: sigma_sd[g:x]
        return label if par is None else f"{par}_{label}"

    sd_priors = [pset[lab(names.sd_label(g, t))] for t in block.terms]
    singles = [c[0] for c in block.bars if len(c) == 1]
    if len(singles) == k:
        sd = vector_rv(names.dpar(par, names.sd_var(g)), sd_priors, names.dpar(par, names.term_dim(g)))
        return pt.eye(k) * sd  # diag(sd), elementwise (pt.diag is a Python-level op inside every gradient)
    L = pt.zeros((k, k))
    if singles:
        sd1 = vector_rv(names.dpar(par, f"sd1__{g}"), [sd_priors[j] for j in singles], None)
        L = pt.set_subtensor(L[np.array(singles), np.array(singles)], sd1)
    for cols in block.bars:
        if len(cols) == 1:
            continue
        bar = block.bar_name(cols[0])
        bar_priors = [sd_priors[j] for j in cols]
        if len({(p.dist, tuple(p.kwargs)) for p in bar_priors}) > 1:
            raise ModelError(
                f"the SDs of the correlated terms {', '.join(block.terms[j] for j in cols)} of {bar} must share "
                "one distribution (they may have different parameters)"
            )
        eta = float(pset[lab(names.eta_label(bar))].kwargs["eta"])
        chol, _, _ = pm.LKJCholeskyCov(
            names.dpar(par, f"chol__{bar}"),
            eta=eta,
            n=len(cols),
            sd_dist=_dist(bar_priors),
            compute_corr=True,
            store_in_trace=False,
        )
        sl = slice(cols[0], cols[-1] + 1)
        L = pt.set_subtensor(L[sl, sl], chol)
    sd = pm.Deterministic(names.dpar(par, names.sd_var(g)), pt.sqrt(pt.sum(L**2, axis=1)),
                          dims=names.dpar(par, names.term_dim(g)))  # fmt: skip
    cov = pt.dot(L, L.T)
    pm.Deterministic(names.dpar(par, names.corr_var(g)), cov / pt.outer(sd, sd),
                     dims=(names.dpar(par, names.term_dim(g)), names.dpar(par, names.term2_dim(g))))  # fmt: skip
    return L


def _center(block, centered: bool | None) -> bool:
    """Centered parameterization of a sampled factor of a partially marginalized model?"""
    if centered is not None:
        return bool(centered)
    return float(np.median(np.bincount(block.codes, minlength=block.nlevels))) >= CENTER_MIN_ROWS


def _ranef(block, L, centered: bool, par: str | None = None):
    import pymc as pm  # PyMC and PyTensor only when a model is built: import hierbayes stays light
    import pytensor.tensor as pt  # (as PyMC)

    g = block.group
    dims = (names.dpar(par, names.level_dim(g)), names.dpar(par, names.term_dim(g)))
    rname = names.dpar(par, names.ranef_var(g))
    if centered:
        if block.k == 1:
            return pm.Normal(rname, 0.0, L[0, 0], dims=dims)
        return pm.MvNormal(rname, mu=np.zeros(block.k), chol=L, dims=dims)
    z = pm.Normal(names.dpar(par, f"z__{g}"), 0.0, 1.0, dims=dims)
    # z L' written elementwise: PyTensor's dot runs in Python when it cannot link a BLAS
    r = z * L[0, 0] if block.k == 1 else pt.sum(z[:, None, :] * L[None, :, :], axis=2)
    return pm.Deterministic(rname, r, dims=dims)
