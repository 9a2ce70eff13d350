"""Priors of the Bayesian engine: the defaults, scaled to the data, and user overrides by name.

The defaults are weakly informative (in the spirit of rstanarm, brms and
bambi). With ``s`` the scale of the response on the link scale (the SD of
``y`` for an identity link, 1 for log/logit/probit/cloglog links):

====================================  ===================================================================
parameter                             default prior
====================================  ===================================================================
``b[x]`` (fixed effect, not the       ``Normal(0, 2.5 s / sd(x))``
intercept)
``b[(Intercept)]``                    ``Normal(m, sqrt((2.5 s)^2 + sum_x (2.5 s mean(x) / sd(x))^2))``,
                                      ``m = link(mean(y))`` (the intercept at the predictors' means
                                      has scale 2.5 s, as in bambi)
``sd[g:z]`` (SD of a random term)     ``HalfNormal(s / sd(z))`` (``sd(z) = 1`` for an intercept)
``eta[g]`` (LKJ shape of a            ``LKJ(eta=2)``: mildly favours small correlations, keeps +-1 out
correlated bar)
``sigma`` (gaussian, student_t)       ``HalfStudentT(nu=4, sigma=sd(y))``
``nu`` (student_t)                    ``Gamma(alpha=2, beta=0.1)`` (brms' default)
``alpha``, ``shape``, ``phi``         ``HalfCauchy(beta=1)`` (negative binomial, gamma, beta)
``psi`` (zero-inflated Poisson)       ``Beta(alpha=2, beta=2)``
``threshold[j]`` (ordinal families)   ``Normal(t_j, sqrt(2.5^2 + sum_x (2.5 mean(x) / sd(x))^2))``: the
                                      intercept's scale; ``t_j`` the thresholds of the model without
                                      predictors (cumulative: ``link(P(y <= j))``; sratio:
                                      ``link(P(y = j | y >= j))``, observed proportions)
====================================  ===================================================================

Override any of them with ``Model(..., priors={name: Prior(...)})``. Names
are the canonical ones above (``"b[Days]"``, ``"sd[Subject:Days]"``,
``"eta[Subject]"``, ``"sigma"``, ...) or these shortcuts: a fixed effect's
bare name (``"Days"``, ``"(Intercept)"``, ``"Intercept"``); ``"b"`` (every
fixed effect but the intercept); ``"sd"`` (every SD); ``"sd[Subject]"``
(every SD of a factor); ``"eta"`` (every LKJ) and ``"eta[Subject]"``. A
specific name wins over a shortcut. Values are a :class:`Prior`, a dict
``{"dist": "Normal", "mu": 0, "sigma": 10}``, or (for ``eta``) a number.

Examples
--------
>>> import hierbayes as hb
>>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"),
...              priors={"Days": Prior("Normal", mu=0, sigma=20)})
>>> print(describe_priors(m).loc["b[Days]", "prior"])
Normal(mu=0, sigma=20)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from hierbayes.bayesian import names
from hierbayes.errors import ArgumentError, ModelError

if TYPE_CHECKING:
    from hierbayes.design import Design
    from hierbayes.families import Family


class AuxLike(Protocol):
    """A modelled auxiliary parameter (:class:`hierbayes.bayesian.distributional.AuxPredictor`)."""

    par: str
    design: Design


class ModelLike(Protocol):
    """What the engine's convenience functions read from a model (a :class:`hierbayes.Model`)."""

    design: Design
    family: Family
    priors: dict[str, Any]


#: distributions a prior may use (PyMC names), by support
REAL = ("Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "Flat", "Uniform", "SkewNormal")
POSITIVE = ("HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma", "InverseGamma", "LogNormal",
            "Weibull", "HalfFlat", "Uniform", "TruncatedNormal")  # fmt: skip
UNIT = ("Beta", "Uniform", "Kumaraswamy")
_ALL = {d.lower(): d for d in (*REAL, *POSITIVE, *UNIT, "LKJ")}
LKJ_ETA = 2.0

#: each distribution's parameters (PyMC's names), the sets of which one must be given in full (none: every
#: parameter has a default), and the parameters that must be positive
PARAMS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "Normal": (("mu", "sigma", "tau"), (), ("sigma", "tau")),
    "StudentT": (("nu", "mu", "sigma", "lam"), (("nu",),), ("nu", "sigma", "lam")),
    "Cauchy": (("alpha", "beta"), (("alpha", "beta"),), ("beta",)),
    "Laplace": (("mu", "b"), (("mu", "b"),), ("b",)),
    "Logistic": (("mu", "s"), (), ("s",)),
    "Flat": ((), (), ()),
    "Uniform": (("lower", "upper"), (), ()),
    "SkewNormal": (("mu", "sigma", "tau", "alpha"), (), ("sigma", "tau")),
    "HalfNormal": (("sigma", "tau"), (), ("sigma", "tau")),
    "HalfStudentT": (("nu", "sigma", "lam"), (("nu",),), ("nu", "sigma", "lam")),
    "HalfCauchy": (("beta",), (("beta",),), ("beta",)),
    "Exponential": (("lam", "scale"), (("lam",), ("scale",)), ("lam", "scale")),
    "Gamma": (("alpha", "beta", "mu", "sigma"), (("alpha", "beta"), ("mu", "sigma")), ("alpha", "beta", "mu", "sigma")),
    "InverseGamma": (("alpha", "beta", "mu", "sigma"), (("alpha", "beta"), ("mu", "sigma")),
                     ("alpha", "beta", "mu", "sigma")),
    "LogNormal": (("mu", "sigma", "tau"), (), ("sigma", "tau")),
    "Weibull": (("alpha", "beta"), (("alpha", "beta"),), ("alpha", "beta")),
    "HalfFlat": ((), (), ()),
    "TruncatedNormal": (("mu", "sigma", "tau", "lower", "upper"), (), ("sigma", "tau")),
    "Beta": (("alpha", "beta", "mu", "sigma", "nu"), (("alpha", "beta"), ("mu", "sigma"), ("mu", "nu")),
             ("alpha", "beta", "sigma", "nu")),
    "Kumaraswamy": (("a", "b"), (("a", "b"),), ("a", "b")),
    "LKJ": (("eta",), (("eta",),), ("eta",)),
}  # fmt: skip
#: parameters that are alternatives to each other (give one)
EXCLUSIVE = (("sigma", "tau"), ("sigma", "lam"), ("lam", "scale"))
#: common misspellings -> PyMC's name
SPELLINGS = {"sd": "sigma", "scale": "sigma", "loc": "mu", "mean": "mu", "df": "nu", "rate": "lam", "shape": "alpha",
             "precision": "tau", "lo": "lower", "hi": "upper", "low": "lower", "high": "upper"}  # fmt: skip


@dataclass(frozen=True, init=False)
class Prior:
    """A prior distribution: a PyMC distribution name and its parameters.

    Parameters
    ----------
    dist
        PyMC distribution name (``"Normal"``, ``"HalfNormal"``, ``"StudentT"``,
        ``"Gamma"``, ``"LKJ"`` for a correlation shape, ...); case-insensitive.
    **params
        The distribution's parameters, by PyMC's names.

    Examples
    --------
    >>> Prior("normal", mu=0, sigma=10)
    Prior('Normal', mu=0, sigma=10)
    """

    dist: str
    params: tuple[tuple[str, Any], ...]

    def __init__(self, dist: str, **params: Any):
        key = str(dist).lower()
        if key not in _ALL:
            raise ModelError(f"unknown prior distribution '{dist}'; use one of {', '.join(sorted(set(_ALL.values())))}")
        dist = _ALL[key]
        _check_params(dist, params)
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "params", tuple(params.items()))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def __str__(self) -> str:
        return f"{self.dist}({', '.join(f'{k}={_fmt(v)}' for k, v in self.params)})"

    def __repr__(self) -> str:
        return f"Prior({self.dist!r}, {', '.join(f'{k}={_fmt(v)}' for k, v in self.params)})"


def _check_params(dist: str, params: dict[str, Any]) -> None:
    """Names, required sets, types and signs of a prior's parameters; a ModelError names the culprit."""
    allowed, required, positive = PARAMS[dist]
    where = f"{dist}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    for name, value in params.items():
        if name not in allowed:
            hint = SPELLINGS.get(name)
            hint = f" (did you mean {hint}=?)" if hint in allowed else ""
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
            raise ModelError(f"prior {where}: {dist} has no parameter '{name}'{hint}; it {takes}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ModelError(f"prior {where}: {name} must be a number, not {value!r}")
        if not np.isfinite(float(value)):
            raise ModelError(f"prior {where}: {name} must be finite, not {value!r}")
        if name in positive and not float(value) > 0:
            raise ModelError(f"prior {where}: {name} must be positive, not {value!r}")
    for a, b in EXCLUSIVE:
        if a in params and b in params:
            raise ModelError(f"prior {where}: give {a} or {b}, not both")
    if required and not any(set(r) <= set(params) for r in required):
        need = " or ".join("+".join(r) for r in required)
        raise ModelError(f"prior {where}: {dist} needs {need}")
    if "lower" in params and "upper" in params and not float(params["lower"]) < float(params["upper"]):
        raise ModelError(f"prior {where}: lower must be below upper")


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return repr(v) if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class PriorSet:
    """The resolved prior of every parameter of a model, canonical name -> prior."""

    priors: dict[str, Prior]
    source: dict[str, str]

    def __getitem__(self, name: str) -> Prior:
        return self.priors[name]

    def frame(self) -> pd.DataFrame:
        """One row per parameter: its prior and whether it is the default or the user's."""
        return pd.DataFrame(
            {"prior": [str(p) for p in self.priors.values()], "source": list(self.source.values())},
            index=pd.Index(list(self.priors), name="parameter"),
        )

    def __str__(self) -> str:
        df = self.frame()
        width = max(len(n) for n in df.index)
        return "\n".join(f"{n:<{width}}  {row.prior}  ({row.source})" for n, row in df.iterrows())


def describe_priors(model: ModelLike) -> pd.DataFrame:
    """The priors a Bayesian fit of ``model`` uses, one row per parameter.

    Examples
    --------
    >>> import hierbayes as hb
    >>> m = hb.Model("mathach ~ cses + (1 | school)", hb.datasets.load("hsb"))
    >>> list(describe_priors(m).index)
    ['b[(Intercept)]', 'b[cses]', 'sd[school:(Intercept)]', 'sigma']
    """
    return resolve_priors(model.design, model.family, model.priors, getattr(model, "aux", ())).frame()


def resolve_priors(design: Design, family: Family, overrides: dict[str, Any] | None, aux=()) -> PriorSet:
    """Defaults for every parameter of the model, overridden by the user's ``priors=`` (``overrides``).

    ``aux``: the modelled auxiliary parameters (distributional models), whose coefficients have
    priors under the location's labels with the parameter in front (``sigma_b[x]``).
    """
    aux = list(aux or ())
    modelled = {a.par for a in aux}
    priors = {k: v for k, v in default_priors(design, family).items() if k not in modelled}
    targets = _targets(design, priors)
    y = _response_scale_y(design) if aux else None
    for a in aux:
        own = aux_default_priors(a, y)
        priors.update(own)
        targets.update(aux_targets(a, own))
    source = dict.fromkeys(priors, "default")
    user = check_priors_argument(overrides)
    # shortcuts first, so that a specific name given too wins
    for key in sorted(user, key=lambda k: _generality(k, targets)):
        if key not in targets:
            valid = list(priors) + [k for k in targets if k not in priors]
            hint = (f" ('{key}' has its own formula: set the priors of its coefficients, e.g. '{key}_Intercept', "
                    f"'{key}_b', '{key}_sd')" if key in modelled else "")  # fmt: skip
            raise ModelError(
                f"the model has no parameter named '{key}' to set a prior on{hint}; valid names are: {', '.join(valid)}"
            )
        for name in targets[key]:
            priors[name] = _coerce(user[key], unprefixed(name, aux), key)
            source[name] = "user"
    return PriorSet(priors, source)


def check_priors_argument(priors: Any) -> dict[str, Any]:
    """The ``priors=`` argument as a dict, or an ArgumentError that says what it should be.

    Values are checked when resolved against a model (:func:`resolve_priors`).
    """
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise ArgumentError(
            f"priors must be a dict of parameter name -> prior, e.g. {{'Days': Prior('Normal', mu=0, sigma=10)}}, "
            f"not a {type(priors).__name__}"
        )
    bad = [k for k in priors if not isinstance(k, str)]
    if bad:
        raise ArgumentError(f"priors: the keys are parameter names (strings such as 'b[Days]'), not {bad[0]!r}")
    return dict(priors)


def default_priors(design: Design, family: Family) -> dict[str, Prior]:
    """The default prior of every parameter, canonical name -> Prior (see the module docstring)."""
    d, fam = design, family
    streamed = getattr(d, "streamed", None)
    if streamed is not None:  # rows read in pieces (gaussian models only): the same statistics, from their sums
        sd_y = float(np.sqrt(streamed.y_var)) if streamed.n > 1 and streamed.y_var > 0 else 1.0
        s = 1.0 if fam.link.unit_scale else sd_y
        y = np.array([streamed.y_mean])
        mean_x, sd_x = np.asarray(streamed.x_mean), np.asarray(streamed.x_sd)
    else:
        y = _response_scale_y(d)
        s = _link_scale(y, fam.link)
        X = d.X
        mean_x, sd_x = X.mean(axis=0), X.std(axis=0, ddof=1) if d.n > 1 else np.ones(d.p)
    out: dict[str, Prior] = {}
    slopes = {}
    for j, name in enumerate(d.x_names):
        if name == "(Intercept)":
            continue
        scale = 2.5 * s / sd_x[j] if sd_x[j] > 0 else 2.5 * s
        slopes[name] = (scale, mean_x[j])
    var = (2.5 * s) ** 2 + sum((sc * m) ** 2 for sc, m in slopes.values())
    for name in d.x_names:
        if name == "(Intercept)":
            out[names.fixef_label(name)] = Prior("Normal", mu=_intercept_mean(y, fam), sigma=float(np.sqrt(var)))
        else:
            out[names.fixef_label(name)] = Prior("Normal", mu=0.0, sigma=float(slopes[name][0]))
    for i, b in enumerate(d.blocks):
        if streamed is not None:
            sd_z = np.asarray(streamed.z_sd[i])
        else:
            sd_z = b.Z.std(axis=0, ddof=1) if d.n > 1 else np.ones(b.k)
        for j, term in enumerate(b.terms):
            scale = s / sd_z[j] if term != "(Intercept)" and sd_z[j] > 0 else s
            out[names.sd_label(b.group, term)] = Prior("HalfNormal", sigma=float(scale))
    for b in d.blocks:
        for cols in b.bars:
            if len(cols) > 1:
                out[names.eta_label(b.bar_name(cols[0]))] = Prior("LKJ", eta=LKJ_ETA)
    if streamed is None:
        sd_y = float(np.std(y, ddof=1)) if len(y) > 1 and np.std(y) > 0 else 1.0
    for par in fam.aux:
        if par == names.THRESHOLD:  # ordinal: one prior per threshold, centred where the data put them
            counts = np.bincount(np.asarray(d.y, dtype=np.int64), minlength=len(d.response_levels))
            for j, mu in enumerate(fam.threshold_means(counts.astype(float))):
                out[names.threshold_label(j)] = Prior("Normal", mu=round(float(mu), 2), sigma=float(np.sqrt(var)))
            continue
        out[par] = {
            "sigma": Prior("HalfStudentT", nu=4, sigma=sd_y),
            "nu": Prior("Gamma", alpha=2, beta=0.1),
            "psi": Prior("Beta", alpha=2, beta=2),
        }.get(par, Prior("HalfCauchy", beta=1))
    return out


AUX_INTERCEPT_BASE = 1.5
AUX_SLOPE_SCALE = 2.5


def prefixed(par: str, label: str) -> str:
    """A label of the location (``b[x]``) as the auxiliary parameter's (``sigma_b[x]``)."""
    return f"{par}_{label}"


def aux_default_priors(aux: AuxLike, y: np.ndarray) -> dict[str, Prior]:
    """Default priors of one auxiliary predictor (distributional model), by label.

    On the link scale (log: a unit is a factor of e; logit for psi): the
    intercept ``Normal(m, sqrt(1.5^2 + sum_x (2.5 mean(x) / sd(x))^2))`` with
    ``m = log(sd(y))`` for sigma and 0 otherwise, slopes ``Normal(0, 2.5 / sd(x))``,
    SDs ``HalfNormal(1 / sd(z))`` (1 for an intercept), ``LKJ(2)``.
    """
    d = aux.design
    X = d.X
    mean_x = X.mean(axis=0)
    sd_x = X.std(axis=0, ddof=1) if d.n > 1 else np.ones(d.p)
    slopes = {}
    for j, x in enumerate(d.x_names):
        if x != "(Intercept)":
            slopes[x] = (AUX_SLOPE_SCALE / sd_x[j] if sd_x[j] > 0 else AUX_SLOPE_SCALE, mean_x[j])
    centre = 0.0
    if aux.par == "sigma":
        sd_y = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
        centre = float(np.log(sd_y)) if sd_y > 0 else 0.0
    out: dict[str, Prior] = {}
    for x in d.x_names:
        if x == "(Intercept)":
            var = AUX_INTERCEPT_BASE**2 + sum((sc * m) ** 2 for sc, m in slopes.values())
            out[names.fixef_label(x)] = Prior("Normal", mu=centre, sigma=float(np.sqrt(var)))
        else:
            out[names.fixef_label(x)] = Prior("Normal", mu=0.0, sigma=float(slopes[x][0]))
    for b in d.blocks:
        sd_z = b.Z.std(axis=0, ddof=1) if d.n > 1 else np.ones(b.k)
        for j, t in enumerate(b.terms):
            scale = 1.0 / sd_z[j] if t != "(Intercept)" and sd_z[j] > 0 else 1.0
            out[names.sd_label(b.group, t)] = Prior("HalfNormal", sigma=float(scale))
        for cols in b.bars:
            if len(cols) > 1:
                out[names.eta_label(b.bar_name(cols[0]))] = Prior("LKJ", eta=2.0)
    return {prefixed(aux.par, k): v for k, v in out.items()}


def aux_targets(aux: AuxLike, priors: dict[str, Prior]) -> dict[str, list[str]]:
    """Every accepted override key of one auxiliary predictor -> the labels it sets (the location's, prefixed)."""
    pre = f"{aux.par}_"
    own = {k[len(pre) :]: v for k, v in priors.items() if k.startswith(pre)}
    return {prefixed(aux.par, k): [prefixed(aux.par, t) for t in ts] for k, ts in _targets(aux.design, own).items()}


def unprefixed(name: str, aux: list[AuxLike]) -> str:
    """``sigma_sd[g:x]`` -> ``sd[g:x]`` (the location's label, whose rules its prior follows)."""
    for a in aux:
        if name.startswith(f"{a.par}_"):
            return name[len(a.par) + 1 :]
    return name


def _response_scale_y(d: Design) -> np.ndarray:
    y = np.asarray(d.y, dtype=float)
    if d.trials is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(d.trials > 0, y / d.trials, 0.5)
    return y


def _link_scale(y: np.ndarray, link) -> float:
    """The scale of the linear predictor: 1 for links whose scale is the unit one, else the SD of g(y)."""
    if link.unit_scale:
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        v = link(y)
    v = v[np.isfinite(v)]
    s = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return s if s > 0 else 1.0


def _intercept_mean(y: np.ndarray, family) -> float:
    m = float(np.mean(y))
    if family.link.domain == "unit":
        m = min(max(m, 0.01), 0.99)
    elif family.link.domain == "positive":
        m = max(m, 0.01)
    with np.errstate(all="ignore"):
        v = float(family.link(np.array(m)))
    return v if np.isfinite(v) else 0.0


def _targets(d: Design, priors: dict[str, Prior]) -> dict[str, list[str]]:
    """Every accepted override key -> the canonical parameters it sets."""
    out: dict[str, list[str]] = {name: [name] for name in priors}
    for x in d.x_names:
        out[x] = [names.fixef_label(x)]
    if "(Intercept)" in d.x_names:
        out["Intercept"] = [names.fixef_label("(Intercept)")]
    slopes = [names.fixef_label(x) for x in d.x_names if x != "(Intercept)"]
    if slopes:
        out["b"] = slopes
    out["sd"] = [n for n in priors if n.startswith("sd[")]
    thresholds = [n for n in priors if n.startswith(names.THRESHOLD + "[")]
    if thresholds:
        out[names.THRESHOLD] = thresholds
    etas = [n for n in priors if n.startswith("eta[")]
    if etas:
        out["eta"] = etas
    for b in d.blocks:
        out[f"sd[{b.group}]"] = [names.sd_label(b.group, t) for t in b.terms]
        mine = [names.eta_label(b.bar_name(c[0])) for c in b.bars if len(c) > 1]
        if mine:
            out[f"eta[{b.group}]"] = mine
    return out


def _generality(key: str, targets: dict[str, list[str]]) -> int:
    """0 for "b", "sd", "eta"; 1 for a factor's "sd[g]" / "eta[g]"; 2 for one parameter."""
    if key in ("b", "sd", "eta", names.THRESHOLD):
        return 0
    hits = targets.get(key, ())
    return 1 if len(hits) > 1 or (key.startswith(("sd[", "eta[")) and key not in hits) else 2


def _coerce(value: Any, name: str, key: str) -> Prior:
    try:
        if isinstance(value, Mapping):
            value = dict(value)
            if "dist" not in value:
                raise ModelError("a dict needs a 'dist' entry, e.g. {'dist': 'Normal', 'sigma': 1}")
            value = Prior(value.pop("dist"), **{str(k): v for k, v in value.items()})
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
            value = Prior(value[0], **value[1])
    except ModelError as exc:
        raise ModelError(f"prior for '{key}': {exc}") from None
    if name.startswith("eta["):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = Prior("LKJ", eta=float(value))
        if not isinstance(value, Prior) or value.dist != "LKJ" or set(value.kwargs) != {"eta"}:
            raise ModelError(f"prior for '{key}': give the LKJ shape as a number or Prior('LKJ', eta=...)")
        if not float(value.kwargs["eta"]) > 0:
            raise ModelError(f"prior for '{key}': the LKJ eta must be positive")
        return value
    if not isinstance(value, Prior):
        raise ModelError(f"prior for '{key}' must be a Prior(...) or a dict with 'dist'; got {type(value).__name__}")
    if value.dist == "LKJ":
        raise ModelError(f"prior for '{key}': LKJ is the prior of a correlation (eta[...]), not of {name}")
    if name.startswith("sd[") or name in ("sigma", "nu", "alpha", "shape", "phi"):
        if value.dist not in POSITIVE:
            raise ModelError(
                f"prior for '{key}': {name} is positive, so its prior must be one of {', '.join(POSITIVE)}, "
                f"not {value.dist}"
            )
    elif name == "psi" and value.dist not in UNIT:
        raise ModelError(f"prior for '{key}': psi is a probability; use one of {', '.join(UNIT)}, not {value.dist}")
    elif name.startswith(("b[", names.THRESHOLD + "[")) and value.dist not in REAL:
        raise ModelError(f"prior for '{key}': {name} needs a prior on the real line ({', '.join(REAL)})")
    return value
