"""The compiled backend: nutpie's NUTS on a hand-written, Numba-compiled log-density of the marginalized model.

For a gaussian/identity model with one grouping factor, the random effects integrated out
(``marginalize="full"``) and priors of the families below, the posterior of
``(beta, L, sigma)`` depends on the data only through the cross-products
(:class:`hierbayes.bayesian.blocked.GaussianCrossProducts`). Here its log-density and
gradient are one Numba function (:func:`logp_grad`), exported as a C callback
(:func:`_logp_cfunc`) that nutpie's sampler calls from its own threads, with no Python
and no GIL in the loop. All data (the cross-products and the prior parameters) reach it
through one float64 buffer (``user_data``), so the compiled code depends on nothing of a
model: it is compiled once per machine, kept on disk by Numba's cache (keyed by this
file, the Numba version and the CPU), and every later fit, refit, bootstrap or simulation
study, in this process or a new one, only fills a buffer. (PyMC's path compiles a
PyTensor graph of every model, 6-30 s per fit.)

The density is the PyMC model's (:mod:`hierbayes.bayesian.model`), term by term: the
marginal log-likelihood of :mod:`hierbayes.bayesian.marginal` (analytic gradient, see
:func:`_loglik`), the fixed effects' Normal priors, the SDs' priors with the log
transform, and for a correlated bar PyMC's ``LKJCholeskyCov`` density of the packed
Cholesky factor (its SDs' prior, the LKJ term and the Jacobian of the change from
(SD, correlation) to the factor) with PyMC's ``CholeskyCovPacked`` transform (log of
the diagonal); constants are left out. ``tests/bayesian/test_compiled.py`` checks it
against PyMC's compiled ``logp`` and ``dlogp`` of the same model.

The unconstrained parameter vector is ``[beta (p), theta (k (k + 1) / 2 packed
Cholesky with log diagonal for a correlated bar, else k log SDs), log sigma]``. Chains
start near the posterior mode (L-BFGS on this log-density, jittered by half the
Laplace posterior SD) and nutpie adapts a diagonal mass matrix from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import optimize

from hierbayes._progress import progress_bar
from hierbayes.bayesian import names
from hierbayes.bayesian.blocked import GaussianCrossProducts, gaussian_crossproducts

#: SD and sigma priors the compiled density implements, with their code in the buffer
POSITIVE_KINDS = {"HalfNormal": 0, "HalfStudentT": 1, "HalfCauchy": 1, "Exponential": 2}
#: header of the buffer: total length, p, k, levels, corr, eta, n, yty, const, sigma prior (kind, a, b), then spare
HEADER = 16
_LOG2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class CompiledPlan:
    """Everything the compiled backend needs of one model: its sizes, names and data buffer."""

    p: int
    k: int
    levels: int
    corr: bool
    group: str
    terms: tuple[str, ...]
    x_names: tuple[str, ...]
    buffer: np.ndarray

    @property
    def n_dim(self) -> int:
        return self.p + (self.k * (self.k + 1) // 2 if self.corr else self.k) + 1

    @property
    def structure(self) -> tuple:
        """What the compiled code depends on beyond the buffer: nothing but these sizes (the cache key)."""
        return (self.p, self.k, self.corr)


def _positive(prior) -> tuple[float, float, float] | None:
    """(kind, a, b) of an SD or sigma prior, or None when the compiled density does not implement it."""
    kw = prior.kwargs
    if prior.dist == "HalfNormal":
        sigma = kw["sigma"] if "sigma" in kw else (1 / math.sqrt(kw["tau"]) if "tau" in kw else 1.0)
        return 0.0, float(sigma), 0.0
    if prior.dist == "HalfStudentT":
        sigma = kw["sigma"] if "sigma" in kw else (1 / math.sqrt(kw["lam"]) if "lam" in kw else 1.0)
        return 1.0, float(kw["nu"]), float(sigma)
    if prior.dist == "HalfCauchy":  # HalfStudentT with nu = 1, up to a constant
        return 1.0, 1.0, float(kw["beta"])
    if prior.dist == "Exponential":
        return 2.0, float(kw["lam"]) if "lam" in kw else 1 / float(kw["scale"]), 0.0
    return None


def plan(design, family, pset, mode: str, structure=None) -> tuple[CompiledPlan | None, str]:
    """The compiled backend's plan for a model, or (None, why not): the PyMC model is sampled then."""
    d = design
    if structure is not None:
        return None, "a residual structure"
    if not (family.is_gaussian and family.link.name == "identity"):
        return None, f"the {family.name} family"
    if mode != "full":
        return None, f"marginalize={mode!r}"
    if len(d.blocks) != 1:
        return None, "more than one grouping factor"
    b = d.blocks[0]
    corr = len(b.bars) == 1 and len(b.bars[0]) == b.k and b.k > 1
    if not corr and any(len(c) != 1 for c in b.bars):
        return None, "a factor with both correlated and single terms"
    betas = [pset[names.fixef_label(x)] for x in d.x_names]
    if any(p.dist != "Normal" for p in betas):
        return None, "a fixed-effect prior other than Normal"
    sds = [_positive(pset[names.sd_label(b.group, t)]) for t in b.terms]
    sig = _positive(pset["sigma"])
    if sig is None or any(s is None for s in sds):
        return None, "an SD or sigma prior other than HalfNormal, HalfStudentT, HalfCauchy or Exponential"
    eta = float(pset[names.eta_label(b.bar_name(b.bars[0][0]))].kwargs["eta"]) if corr else 0.0
    cp = gaussian_crossproducts(d)
    bmu = np.array([float(p.kwargs.get("mu", 0.0)) for p in betas])
    bsd = np.array([_normal_sd(p.kwargs) for p in betas])
    buf = _buffer(cp, corr, eta, bmu, bsd, np.array(sds, dtype=float), np.array(sig, dtype=float))
    return CompiledPlan(d.p, b.k, b.nlevels, corr, b.group, tuple(b.terms), tuple(d.x_names), buf), ""


def _normal_sd(kw: dict) -> float:
    if "sigma" in kw:
        return float(kw["sigma"])
    if "tau" in kw:
        return 1 / math.sqrt(float(kw["tau"]))
    return 1.0


def _buffer(cp: GaussianCrossProducts, corr, eta, bmu, bsd, sds, sig) -> np.ndarray:
    """The float64 buffer the compiled density reads (layout: the header, then the arrays in a fixed order)."""
    m, k = cp.Z1ty.shape
    p = cp.p
    head = np.zeros(HEADER)
    head[1:10] = [p, k, m, float(corr), eta, cp.n, cp.yty, 0.5 * cp.ldw, 0.0]
    head[10:13] = sig
    parts = [head, bmu, bsd, sds[:, 0], sds[:, 1], sds[:, 2], cp.Xty, cp.XtX.ravel(), cp.Z1ty.ravel(),
             cp.Z1tX.ravel(), cp.A11.ravel()]  # fmt: skip
    buf = np.ascontiguousarray(np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in parts]))
    buf[0] = len(buf)
    return buf


# --- the compiled log-density ---------------------------------------------------------------------------------


@numba.njit(cache=True, fastmath=False)
def _pos_logp(kind, a, b, x):
    """Log-density (up to a constant) and its derivative of a positive prior at x > 0."""
    if kind == 0.0:  # HalfNormal(sigma=a)
        return -0.5 * (x / a) ** 2, -x / a**2
    if kind == 1.0:  # HalfStudentT(nu=a, sigma=b)
        return -0.5 * (a + 1.0) * math.log1p(x * x / (a * b * b)), -(a + 1.0) * x / (a * b * b + x * x)
    return -a * x, -a  # Exponential(lam=a)


@numba.njit(cache=True)
def _loglik(beta, sigma, L, Z1ty, Z1tX, A11, XtX, Xty, yty, n, dbeta, dL):
    """Marginal log-likelihood of one factor's model; adds its gradient in beta and L into dbeta, dL; returns
    (value, d/dsigma).

    Per level i, with ``Lam = L / sigma``, ``z_i = Z_i'(y - X beta)``, ``M_i = I + Lam' A_i Lam``,
    ``c_i = Lam' z_i``, ``u_i = M_i^-1 c_i``: ``f = sum log|M_i| + (r'r - sum c_i'u_i) / sigma^2`` and
    ``loglik = -(n log(2 pi sigma^2) + f) / 2``. Derivatives: ``df/dLam = sum 2 A_i Lam M_i^-1 - 2 (z_i u_i' -
    A_i Lam u_i u_i') / sigma^2``, ``df/dbeta = 2 (X'X beta - X'y + sum Z1tX_i' Lam u_i) / sigma^2``.
    """
    m, k = Z1ty.shape
    p = beta.shape[0]
    s2 = sigma * sigma
    lam = L / sigma
    rr = yty
    for a in range(p):
        xb = 0.0
        for b in range(p):
            xb += XtX[a, b] * beta[b]
        rr += beta[a] * (xb - 2.0 * Xty[a])
    logdet = 0.0
    quad = 0.0
    G = np.zeros((k, k))
    gq = np.zeros(p)
    z = np.empty(k)
    AL = np.empty((k, k))
    M = np.empty((k, k))
    C = np.zeros((k, k))
    c = np.empty(k)
    u = np.empty(k)
    w = np.empty(k)
    Minv = np.empty((k, k))
    e = np.empty(k)
    for i in range(m):
        for a in range(k):
            t = Z1ty[i, a]
            for b in range(p):
                t -= Z1tX[i, a, b] * beta[b]
            z[a] = t
        for a in range(k):
            for j in range(k):
                t = 0.0
                for b in range(k):
                    t += A11[i, a, b] * lam[b, j]
                AL[a, j] = t
        for a in range(k):
            for j in range(k):
                t = 1.0 if a == j else 0.0
                for b in range(k):
                    t += lam[b, a] * AL[b, j]
                M[a, j] = t
        # Cholesky M = C C'
        for j in range(k):
            t = M[j, j]
            for q in range(j):
                t -= C[j, q] * C[j, q]
            C[j, j] = math.sqrt(t)
            logdet += math.log(t)
            for a in range(j + 1, k):
                t = M[a, j]
                for q in range(j):
                    t -= C[a, q] * C[j, q]
                C[a, j] = t / C[j, j]
        for a in range(k):
            t = 0.0
            for b in range(k):
                t += lam[b, a] * z[b]
            c[a] = t
        _chol_solve(C, c, w, u)
        for a in range(k):
            quad += c[a] * u[a]
        for j in range(k):
            for a in range(k):
                e[a] = 1.0 if a == j else 0.0
            _chol_solve(C, e, w, Minv[:, j])
        # G += 2 AL Minv - 2 (z u' - AL u u') / s2
        for a in range(k):
            alu = 0.0
            for b in range(k):
                alu += AL[a, b] * u[b]
            for j in range(k):
                t = 0.0
                for b in range(k):
                    t += AL[a, b] * Minv[b, j]
                G[a, j] += 2.0 * t - 2.0 * (z[a] * u[j] - alu * u[j]) / s2
        # gq += Z1tX_i' Lam u
        for a in range(k):
            lu = 0.0
            for b in range(k):
                lu += lam[a, b] * u[b]
            for b in range(p):
                gq[b] += Z1tX[i, a, b] * lu
    f = logdet + (rr - quad) / s2
    ll = -0.5 * (n * (_LOG2PI + 2.0 * math.log(sigma)) + f)
    for b in range(p):
        xb = 0.0
        for a in range(p):
            xb += XtX[b, a] * beta[a]
        dbeta[b] += -(xb - Xty[b] + gq[b]) / s2
    gl = 0.0
    for a in range(k):
        for j in range(k):
            gl += G[a, j] * lam[a, j]
            dL[a, j] += -0.5 * G[a, j] / sigma
    dsigma = -n / sigma - 0.5 * (-gl / sigma - 2.0 * (rr - quad) / (s2 * sigma))
    return ll, dsigma


@numba.njit(cache=True)
def _chol_solve(C, rhs, w, out):
    """Solve C C' out = rhs (C lower triangular), w scratch."""
    k = C.shape[0]
    for a in range(k):
        t = rhs[a]
        for q in range(a):
            t -= C[a, q] * w[q]
        w[a] = t / C[a, a]
    for a in range(k - 1, -1, -1):
        t = w[a]
        for q in range(a + 1, k):
            t -= C[q, a] * out[q]
        out[a] = t / C[a, a]


@numba.njit(cache=True)
def logp_grad(x, buf, grad):
    """Log-density (up to a constant) of the unconstrained parameters ``x``; writes its gradient into ``grad``."""
    p = int(buf[1])
    k = int(buf[2])
    m = int(buf[3])
    corr = buf[4] > 0.5
    eta = buf[5]
    n = buf[6]
    yty = buf[7]
    const = buf[8]
    o = HEADER
    bmu = buf[o : o + p]
    o += p
    bsd = buf[o : o + p]
    o += p
    sdk = buf[o : o + k]
    o += k
    sda = buf[o : o + k]
    o += k
    sdb = buf[o : o + k]
    o += k
    Xty = buf[o : o + p]
    o += p
    XtX = buf[o : o + p * p].reshape((p, p))
    o += p * p
    Z1ty = buf[o : o + m * k].reshape((m, k))
    o += m * k
    Z1tX = buf[o : o + m * k * p].reshape((m, k, p))
    o += m * k * p
    A11 = buf[o : o + m * k * k].reshape((m, k, k))
    nd = x.shape[0]
    beta = x[:p]
    L = np.zeros((k, k))
    if corr:
        pos = p
        for a in range(k):
            for j in range(a + 1):
                L[a, j] = math.exp(x[pos]) if j == a else x[pos]
                pos += 1
    else:
        for a in range(k):
            L[a, a] = math.exp(x[p + a])
    sigma = math.exp(x[nd - 1])
    for a in range(nd):
        grad[a] = 0.0
    dbeta = np.zeros(p)
    dL = np.zeros((k, k))
    ll, dsigma = _loglik(beta, sigma, L, Z1ty, Z1tX, A11, XtX, Xty, yty, n, dbeta, dL)
    lp = ll + const
    for b in range(p):
        r = (beta[b] - bmu[b]) / bsd[b]
        lp -= 0.5 * r * r
        grad[b] = dbeta[b] - r / bsd[b]
    v, dv = _pos_logp(buf[10], buf[11], buf[12], sigma)
    lp += v + x[nd - 1]
    grad[nd - 1] = (dsigma + dv) * sigma + 1.0
    if corr:
        pos = p
        for a in range(k):
            ss = 0.0
            for j in range(a + 1):
                ss += L[a, j] * L[a, j]
            sd = math.sqrt(ss)
            ca = 2.0 * eta - 2.0 + k - a
            v, dv = _pos_logp(sdk[a], sda[a], sdb[a], sd)
            lp += v + ca * (math.log(L[a, a]) - math.log(sd)) - a * math.log(sd) + math.log(L[a, a])
            wgt = dv - (ca + a) / sd
            for j in range(a + 1):
                g = dL[a, j] + wgt * L[a, j] / sd
                if j == a:
                    g = (g + (ca + 1.0) / L[a, a]) * L[a, a]
                grad[pos] = g
                pos += 1
    else:
        for a in range(k):
            s = L[a, a]
            v, dv = _pos_logp(sdk[a], sda[a], sdb[a], s)
            lp += v + x[p + a]
            grad[p + a] = (dL[a, a] + dv) * s + 1.0
    return lp


_LOGP_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
_EXPAND_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


@numba.cfunc(_LOGP_SIG, cache=True)
def _logp_cfunc(dim, x_, out_, logp_, user_data_):
    """nutpie's C log-density callback: status 0 ok, 3/4 non-finite gradient/value (the draw is rejected)."""
    size = numba.carray(user_data_, (1,), np.float64)
    buf = numba.carray(user_data_, (int(size[0]),), np.float64)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    logp = numba.carray(logp_, (1,))
    for a in range(dim):
        if not np.isfinite(x[a]) or abs(x[a]) > 700.0:
            return 4
    val = logp_grad(x, buf, out)
    logp[0] = val
    for a in range(dim):
        if not np.isfinite(out[a]):
            return 3
    if not np.isfinite(val):
        return 4
    return 0


@numba.cfunc(_EXPAND_SIG, cache=True)
def _expand_cfunc(dim, expanded, x_, out_, user_data_):
    """nutpie's C callback for the stored draw: the unconstrained vector itself (transformed later in NumPy)."""
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    for a in range(dim):
        out[a] = x[a]
    return 0


# --- sampling -----------------------------------------------------------------------------------------------


def logp(pl: CompiledPlan, x: np.ndarray) -> tuple[float, np.ndarray]:
    """The log-density and its gradient at ``x`` (for the mode search and tests)."""
    grad = np.empty(len(x))
    return float(logp_grad(np.ascontiguousarray(x, dtype=float), pl.buffer, grad)), grad


def start_point(pl: CompiledPlan) -> tuple[np.ndarray, np.ndarray]:
    """The posterior mode (unconstrained) and the Laplace SDs there (1 where the curvature is not usable)."""
    buf = pl.buffer
    p, k = pl.p, pl.k
    XtX = _segment(pl, "XtX").reshape(p, p)
    Xty = _segment(pl, "Xty")
    try:
        b0 = np.linalg.solve(XtX, Xty)
    except np.linalg.LinAlgError:
        b0 = np.zeros(p)
    rr = max(float(buf[7] - 2 * b0 @ Xty + b0 @ XtX @ b0), 1e-12)
    s0 = math.sqrt(rr / max(buf[6], 1.0))
    x0 = np.zeros(pl.n_dim)
    x0[:p] = b0
    diag = [p + a * (a + 3) // 2 for a in range(k)] if pl.corr else [p + a for a in range(k)]
    x0[diag] = math.log(0.5 * s0)
    x0[-1] = math.log(s0)

    def neg(x):
        v, g = logp(pl, x)
        return (-v, -g) if np.isfinite(v) and np.all(np.isfinite(g)) else (np.inf, np.zeros_like(x))

    res = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B")
    x = res.x if np.all(np.isfinite(res.x)) else x0
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    H = np.empty((len(x), len(x)))
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h[i]
        H[:, i] = (neg(x + e)[1] - neg(x - e)[1]) / (2 * h[i])
    H = (H + H.T) / 2
    sd = np.ones(len(x))
    if np.all(np.isfinite(H)) and np.all(np.linalg.eigvalsh(H) > 0):
        sd = np.sqrt(np.diag(np.linalg.inv(H)))
    return x, sd


def _segment(pl: CompiledPlan, name: str) -> np.ndarray:
    p, k = pl.p, pl.k
    sizes = {"bmu": p, "bsd": p, "sdk": k, "sda": k, "sdb": k, "Xty": p, "XtX": p * p}
    o = HEADER
    for key, size in sizes.items():
        if key == name:
            return pl.buffer[o : o + size]
        o += size
    raise KeyError(name)


def nutpie_model(pl: CompiledPlan, init: np.ndarray, init_sd: np.ndarray):
    """A nutpie model of the compiled density: nutpie's ``CompiledPyMCModel`` with this module's C callbacks
    (no PyTensor graph), reading ``pl.buffer``; each chain starts at ``init`` jittered by ``init_sd / 2``."""
    from nutpie.compile_pymc import CompiledPyMCModel  # nutpie only when sampling with it

    n = pl.n_dim

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        return np.ascontiguousarray(init + 0.5 * init_sd * rng.uniform(-1, 1, n))

    return CompiledPyMCModel(
        dims={_X: (_XDIM,)},
        _coords={_XDIM: [str(i) for i in range(n)]},
        _shapes={_X: (n,)},
        compiled_logp_func=_logp_cfunc,
        compiled_expand_func=_expand_cfunc,
        initial_point_func=initial_point,
        shared_data={},
        shared_var_keys={},
        user_data=pl.buffer,  # the callbacks read the buffer at this address; the model keeps it alive
        n_expanded=n,
        shape_info=([_X], [slice(0, n)], [(n,)]),
        logp_func=None,
        expand_func=None,
        _n_dim=n,
    )


_X = "x__"
_XDIM = "x__dim"


def sample(pl: CompiledPlan, draws: int, tune: int, chains: int, cores: int, seed: int, target_accept: float,
           progressbar: bool, **kwargs):  # fmt: skip
    """Sample with nutpie (chains in threads); returns (unconstrained draws (chains, draws, n_dim), sample_stats)."""
    import nutpie  # nutpie only when sampling with it

    x0, sd0 = start_point(pl)
    model = nutpie_model(pl, x0, sd0)
    # hierbayes' own bar (tqdm: text on stderr, an ipywidgets bar in Jupyter), fed by nutpie's progress callback
    bar = progress_bar(chains * (draws + tune), "sampling", progressbar, unit="draws")

    def advance(progress) -> None:
        done = sum(int(p.finished_draws) for p in progress)
        if done > bar.n:
            bar.update(done - bar.n)

    try:
        trace = nutpie.sample(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                              progress_bar=False, progress_callback=advance if progressbar else None,
                              progress_rate=200, target_accept=target_accept, save_warmup=False,
                              **kwargs)  # fmt: skip
    finally:
        bar.update(max(0, bar.total - bar.n))
        bar.close()
    x = np.asarray(trace["posterior"][_X].values, dtype=float)
    stats = trace["sample_stats"].to_dataset()
    # nutpie's per-draw texts (divergence messages, None when there is none) do not survive netCDF: numbers only
    stats = stats[[v for v in stats.data_vars if stats[v].dtype.kind in "biuf"]]
    return x, stats, str(nutpie.__version__)


def constrained(pl: CompiledPlan, x: np.ndarray) -> dict[str, np.ndarray]:
    """beta (..., p), the factor's L (..., k, k), sd (..., k), corr (..., k, k) and sigma (...) from
    unconstrained draws x (..., n_dim), vectorized."""
    p, k = pl.p, pl.k
    beta = x[..., :p]
    L = np.zeros((*x.shape[:-1], k, k))
    if pl.corr:
        rows, cols = np.tril_indices(k)
        L[..., rows, cols] = x[..., p : p + len(rows)]
        d = np.arange(k)
        L[..., d, d] = np.exp(L[..., d, d])
    else:
        d = np.arange(k)
        L[..., d, d] = np.exp(x[..., p : p + k])
    sd = np.sqrt(np.sum(L**2, axis=-1))
    cov = L @ np.swapaxes(L, -1, -2)
    corr = cov / (sd[..., :, None] * sd[..., None, :])
    return {"beta": beta, "L": L, "sd": sd, "corr": corr, "sigma": np.exp(x[..., -1])}


def posterior_dataset(pl: CompiledPlan, x: np.ndarray, block):
    """The ``posterior`` Dataset (beta, sd__g, corr__g for a correlated bar, sigma) of unconstrained draws."""
    import xarray as xr  # xarray only for the DataTree: import hierbayes stays light

    v = constrained(pl, x)
    chains, ndraw = x.shape[:2]
    base = {"chain": np.arange(chains), "draw": np.arange(ndraw)}
    g = pl.group
    data = {
        names.BETA: (("chain", "draw", names.FIXEF_DIM), v["beta"]),
        names.sd_var(g): (("chain", "draw", names.term_dim(g)), v["sd"]),
    }
    if names.has_corr(block):
        data[names.corr_var(g)] = (("chain", "draw", names.term_dim(g), names.term2_dim(g)), v["corr"])
    data["sigma"] = (("chain", "draw"), v["sigma"])
    coords = {**base, names.FIXEF_DIM: list(pl.x_names), names.term_dim(g): list(pl.terms)}
    if names.has_corr(block):
        coords[names.term2_dim(g)] = list(pl.terms)
    return xr.Dataset(data, coords=coords)


__all__ = ["CompiledPlan", "constrained", "logp", "logp_grad", "plan", "posterior_dataset", "sample", "start_point"]
