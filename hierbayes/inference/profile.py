"""Profile likelihood of an LMM and profile confidence intervals (lme4's ``profile``/``confint``).

Mirrors lme4 1.1-31's ``profile.merMod``:

* REML fits are profiled through their ML refit (lme4's ``devfun2`` calls
  ``refitML``); the base is the ML deviance at the ML estimates;
* variance parameters are profiled on the SD/correlation scale (``.sig01``,
  ..., ``.sigma``, in theta's order): at each value the ML deviance in
  ``(sd/cor, sigma)`` is minimised over the others (BOBYQA, bounds
  sd >= 0, -1 <= cor <= 1);
* a fixed effect is profiled by moving its column into the offset and
  refitting theta by ML (sigma and the other betas profiled out);
* ``zeta = sign(x - x_hat) sqrt(dev(x) - dev_hat)``; steps of
  ``delta = sqrt(qchisq(0.99, npar)) / 8`` in zeta (lme4's ``nextpar``),
  up to ``|zeta| > sqrt(qchisq(0.99, npar))``;
* intervals from the inverse of the natural spline of zeta
  (:mod:`hierbayes.inference.spline`) at ``qnorm((1 -+ level) / 2)``, the
  parameter's bound where the profile does not reach that far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._progress import progress_bar, show_progress
from hierbayes._warnings import warn
from hierbayes.design.varcorr import sdcor_parameters
from hierbayes.errors import ConvergenceWarning, ModelError, UnknownParameterError
from hierbayes.inference.profile_plot import plot_profile
from hierbayes.inference.spline import PolySpline, back_spline, interp_spline
from hierbayes.linalg import solve
from hierbayes.optim import PROFILE, minimize_theta, run_optimizer
from hierbayes.reml.fit import LmmObjective
from hierbayes.reml.refit import criterion_pieces, with_fixed_offset
from hierbayes.reml.structured import StructuredObjective

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

MAXPTS, MAXMULT, MINSTEP = 100, 10.0, 1e-6
_LOG2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class Profile:
    """A likelihood profile (lme4's ``thpr``).

    Attributes
    ----------
    table
        One row per profiled point: ``.zeta``, every parameter's value there
        (``.sig01``, ..., ``.sigma``, fixed effects) and ``.par`` (which
        parameter was held fixed).
    estimates
        ML estimates of all parameters (the centre of the profile).
    backward
        Per parameter, the spline giving the parameter as a function of zeta
        (None when it could not be built).
    forward
        Per parameter, the interpolating spline of zeta in the parameter.
    lower, upper
        Bounds of the variance parameters (limits where the profile stops short).
    """

    table: pd.DataFrame
    estimates: pd.Series
    backward: dict[str, PolySpline | None]
    forward: dict[str, PolySpline | None]
    lower: dict[str, float]
    upper: dict[str, float]
    formula: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        """What was profiled and the 95% intervals, not the zeta table (``.table``)."""
        pars = list(self.backward)
        head = f"Likelihood profile{' of ' + self.formula if self.formula else ''}"
        head += f": {len(pars)} parameter{'s' * (len(pars) != 1)}, {len(self.table)} points (ML deviance)"
        ci = self.confint(0.95)
        width = max([len(p) + len(self.descriptions.get(p, "")) + 3 for p in pars] + [9])
        lines = [head, f"{'':<{width}} {'ML est.':>11} {'2.5 %':>11} {'97.5 %':>11}"]
        for p in pars:
            name = f"{p} ({self.descriptions[p]})" if self.descriptions.get(p) else p
            est = self.estimates.get(p, np.nan)
            lo, hi = ci.loc[p].to_numpy()
            lines.append(f"{name:<{width}} {_g(est):>11} {_g(lo):>11} {_g(hi):>11}")
        lines.append(".confint(level) for other levels, .plot() for the zeta plots, .table for the profiled points")
        return "\n".join(lines)

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile intervals of every profiled parameter (lme4's ``confint.thpr``)."""
        a = (1 - level) / 2
        z = stats.norm.ppf([a, 1 - a])
        rows = {}
        for name, bak in self.backward.items():
            if bak is not None:
                lo, hi = bak(z)
            else:
                lo, hi = self._linear(name, z)
            lo = self.lower.get(name, np.nan) if np.isnan(lo) else lo
            hi = self.upper.get(name, np.nan) if np.isnan(hi) else hi
            rows[name] = (lo, hi)
        cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
        return pd.DataFrame.from_dict(rows, orient="index", columns=cols)

    def plot(self, **kwargs):
        """Zeta plot of the profiled parameters (:func:`hierbayes.inference.profile_plot.plot_profile`)."""
        return plot_profile(self, **kwargs)

    def _linear(self, name: str, z: np.ndarray) -> tuple[float, float]:
        sub = self.table[self.table[".par"] == name].dropna(subset=[".zeta"])
        if len(sub) < 2 or np.any(np.diff(sub[".zeta"].to_numpy()) < -0.01):
            warn(f"non-monotonic profile for {name}", ConvergenceWarning)
            return np.nan, np.nan
        warn(f"bad spline fit for {name}: falling back to linear interpolation", ConvergenceWarning)
        zz, xx = sub[".zeta"].to_numpy(), sub[name].to_numpy()
        return tuple(np.interp(z, zz, xx, left=np.nan, right=np.nan))


def _g(v: float) -> str:
    return "NA" if not np.isfinite(v) else f"{v:.5g}"


def _descriptions(fit: LmerFit) -> dict[str, str]:
    """lme4's names of the variance parameters, in words: ``.sig01`` -> ``sd (Intercept) | Subject``."""
    out, n = {}, 0
    for b in fit.design.blocks:
        for r, c in b.theta_index:
            n += 1
            grp = b.bar_name(c)
            what = f"sd {b.terms[r]}" if r == c else f"cor {b.terms[c]}, {b.terms[r]}"
            out[f".sig{n:02d}"] = f"{what} | {grp}"
    out[".sigma"] = "residual sd"
    return out


def _structure_descriptions(fit: LmerFit) -> dict[str, str]:
    st = fit.structure
    if st is None:
        return {}
    out = {}
    if st.correlation is not None:
        for name in st.correlation.names:
            out[name] = f"{st.correlation.spec.nlme_class} {st.correlation.group_name}"
    if st.variance is not None:
        for name in st.variance.names:
            out[name] = st.variance.spec.nlme_class
    return out


def sdcor_to_theta(fit: LmerFit, values: np.ndarray, sigma: float) -> np.ndarray:
    """theta from SDs and correlations in theta's order (lme4's ``Sv_to_Cv``)."""
    theta, pos = [], 0
    for b in fit.design.blocks:
        vals = values[pos : pos + b.n_theta]
        pos += b.n_theta
        lam = np.zeros((b.k, b.k))
        cov_sd, corr = np.zeros(b.k), np.eye(b.k)
        for v, (r, c) in zip(vals, b.theta_index, strict=True):
            if r == c:
                cov_sd[r] = v
            else:
                corr[r, c] = corr[c, r] = v
        for cols in b.bars:
            idx = np.array(cols)
            lam[np.ix_(idx, idx)] = cov_sd[idx][:, None] * _chol(corr[np.ix_(idx, idx)]) / sigma
        theta.extend(lam[r, c] for r, c in b.theta_index)
    return np.array(theta)


def _chol(C: np.ndarray) -> np.ndarray:
    """Cholesky factor of a correlation matrix, tolerating (near) singularity."""
    k = C.shape[0]
    L = np.zeros_like(C)
    for j in range(k):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, k):
            L[i, j] = (C[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return L


def _variance_bounds(ml) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of lme4's variance parameters ``[sd/cor..., sigma]``: SDs >= 0, correlations in [-1, 1]."""
    pairs = [(r == c) for b in ml.design.blocks for r, c in b.theta_index]
    lower = [0.0 if diag else -1.0 for diag in pairs] + [0.0]
    upper = [np.inf if diag else 1.0 for diag in pairs] + [np.inf]
    return np.array(lower), np.array(upper)


class _Profiler:
    """lme4's profile of an LMM (no residual structure): variance parameters ``[sd/cor..., sigma]``, then betas."""

    def __init__(self, fit: LmerFit, alphamax: float = 0.01):
        self.fit = ml = fit.refit_ml()
        self.objective = ml.devfun
        self.n = ml.devfun.n  # rows with a positive prior weight
        self.ldw = ml.devfun.weights.ldw
        self.base = ml.deviance
        sd = ml.sdcor
        self.names = [*sd.index, *ml.fixef.index]
        self.nvp = len(sd)
        self.opt = np.r_[sd.to_numpy(), ml.fixef.to_numpy()]
        self.stderr = np.sqrt(np.diag(ml.vcov.to_numpy()))
        self.lower, self.upper = _variance_bounds(ml)
        self.opt_lower, self.opt_upper = self.lower, self.upper  # where the inner optimizer may go
        self._start(alphamax)

    def _start(self, alphamax: float) -> None:
        """lme4's cutoff and step, and a check that the profile's deviance is the fit's at the estimates."""
        self.cutoff = float(np.sqrt(stats.chi2.ppf(1 - alphamax, len(self.opt))))
        self.delta = self.cutoff / 8
        check = self.deviance(self.opt[: self.nvp])
        if not abs(check - self.base) <= 1e-5 * max(1.0, abs(self.base)):
            raise FloatingPointError(
                f"profile deviance at the estimates ({check}) differs from the fit's ({self.base})"
            )

    def deviance(self, vp: np.ndarray) -> float:
        sigma = vp[-1]
        if not sigma > 0:
            return np.inf
        f = self.objective.factor(sdcor_to_theta(self.fit, vp[:-1], sigma))
        if f is None:
            return np.inf
        s2 = sigma**2
        return f.logdet_L - self.ldw + f.r2 / s2 + self.n * (_LOG2PI + np.log(s2))

    def _row_for_varpar(self, vp: np.ndarray, dev: float) -> np.ndarray:
        w = self._current
        devdiff = dev - self.base
        if devdiff < -1e-6:
            warn(f"profiling found a lower deviance (diff={devdiff:.3g})", ConvergenceWarning)
        z = np.sign(vp[w] - self.opt[w]) * np.sqrt(max(devdiff, 0.0))
        pieces = criterion_pieces(self.objective, sdcor_to_theta(self.fit, vp[:-1], vp[-1]))
        return np.r_[z, vp, pieces.beta if pieces is not None else np.full(len(self.opt) - self.nvp, np.nan)]

    def varpar_zeta(self, value: float, start: np.ndarray) -> np.ndarray:
        w, nvp = self._current, self.nvp
        others = [i for i in range(nvp) if i != w]
        lo, hi = self.opt_lower[others], self.opt_upper[others]
        x0 = np.clip(start, lo, hi)

        def full(x: np.ndarray) -> np.ndarray:
            vp = np.empty(nvp)
            vp[w] = value
            vp[others] = x
            return vp

        if others:
            opt = run_optimizer(lambda x: self.deviance(full(x)), x0, lo, PROFILE, upper=hi)
            x, dev = opt.final, opt.fmin
        else:
            x, dev = x0, self.deviance(full(x0))
        return self._row_for_varpar(full(x), dev)

    def fixef_zeta(self, value: float, _start=None) -> np.ndarray:
        j = self._current - self.nvp
        design = with_fixed_offset(self.fit.design, j, value)
        obj = LmmObjective(design, reml=False)
        opt = minimize_theta(obj, self.fit.estimates.theta, self.fit.layout.lower)
        theta = opt.final
        pieces = criterion_pieces(obj, theta)
        sigma = np.sqrt(pieces.pwrss / self.n)
        sd = sdcor_parameters(self.fit.design.blocks, self.fit.layout.covariances(theta, sigma), sigma)
        beta = np.insert(pieces.beta, j, value)
        devdiff = max(opt.fmin - self.base, 0.0)
        return np.r_[np.sign(value - self.opt[self._current]) * np.sqrt(devdiff), sd.to_numpy(), beta]

    def first_value(self, w: int) -> float:
        pw = self.opt[w]
        return 0.001 if pw == 0 else pw * 1.01

    def cuts(self, w: int) -> tuple[float, float]:
        """How far the profile of variance parameter ``w`` may go."""
        return self.lower[w], self.upper[w]

    def spline_points(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        """The profiled points the splines go through (all of them, as in lme4)."""
        return df

    def _nextpar(self, rows: list[np.ndarray], cc: int, r: int, lower: float, upper: float) -> float:
        p0, p1 = rows[r - 1][cc], rows[r][cc]
        z0, z1 = rows[r - 1][0], rows[r][0]
        num, denom = p1 - p0, z1 - z0
        if not np.isfinite(denom) or denom == 0:
            step = MINSTEP
        else:
            step = self.delta * num / denom
            if step < 0:
                step = MINSTEP
            elif abs(step) > abs(MAXMULT * num):
                step = np.sign(step) * abs(MAXMULT * num)
        return float(min(upper, max(lower, p1 + np.sign(num) * step)))

    def _fill(self, rows: list[np.ndarray], cc: int, lowcut: float, upcut: float, zetafun) -> list[np.ndarray]:
        i = 1
        while i < MAXPTS - 1 and lowcut < rows[i][cc] < upcut:
            z = abs(rows[i][0])
            if not (np.isnan(z) or z <= self.cutoff):
                break
            value = self._nextpar(rows, cc, i, lowcut, upcut)
            start = np.delete(rows[i][1 : 1 + self.nvp], cc - 1) if cc - 1 < self.nvp else None
            rows.append(zetafun(value, start))
            i += 1
        return rows

    def profile(self, which: list[int], show: bool = False) -> list[np.ndarray]:
        centre = np.r_[0.0, self.opt]
        out = []
        bar = progress_bar(len(which), "profile", show, unit="parameter")
        for w in which:
            bar.set_postfix_str(self.names[w], refresh=False)
            self._current = w
            cc, pw = w + 1, self.opt[w]
            if w < self.nvp:
                lowcut, upcut = self.cuts(w)
                zetafun = self.varpar_zeta
                first = zetafun(self.first_value(w), np.delete(self.opt[: self.nvp], w))
            else:
                lowcut, upcut = -np.inf, np.inf
                zetafun = self.fixef_zeta
                first = zetafun(pw + self.delta * self.stderr[w - self.nvp])
            up = self._fill([centre, first], cc, lowcut, upcut, zetafun)
            down = self._fill([first, centre], cc, lowcut, upcut, zetafun) if pw > lowcut else [first, centre]
            pts = np.unique(np.array(up + down), axis=0)
            pts = pts[np.argsort(pts[:, cc], kind="stable")]
            out.append(pts)
            bar.update()
        bar.close()
        return out


class _StructuredProfiler(_Profiler):
    """The profile with a residual structure: its parameters join the variance ones.

    The variance parameters are ``[sd/cor..., sigma, structure...]``, the
    structure's on nlme's natural scale (``Phi``, ``Rho``, SD ratios, powers)
    and kept just inside their open bounds, where the criterion is not finite
    (a CAR(1) ``Phi`` of 0 is the model without correlation: its profile may
    level off there). At each value of one parameter the ML deviance is
    minimised over all the others, the structure's included; a fixed effect
    is profiled by refitting theta and the structure by ML with its column in
    the offset. A variance function of the fitted values (``varPower()``)
    keeps the ML fit's fitted values (nlme's fixed point treats them as given too).
    """

    def __init__(self, fit: LmerFit, alphamax: float = 0.01):
        self.fit = ml = fit.refit_ml()
        self.sobj = ml.devfun_structured
        self.n = ml.design.n
        self.base = ml.deviance
        sd = ml.sdcor
        self.nsd = len(sd) - 1  # sd/cor before .sigma
        self.ns = ml.structure.npar
        self.nvp = len(sd) + self.ns
        self.snames = list(ml.residual_params)
        self.names = [*sd.index, *self.snames, *ml.fixef.index]
        if len(set(self.names)) != len(self.names):
            raise ModelError(
                f"the residual structure's parameters {', '.join(self.snames)} share names with other parameters "
                f"({', '.join(ml.fixef.index)}); rename the factor levels or columns to profile them"
            )
        self.opt = np.r_[sd.to_numpy(), list(ml.residual_params.values()), ml.fixef.to_numpy()]
        self.stderr = np.sqrt(np.diag(ml.vcov.to_numpy()))
        lower, upper = _variance_bounds(ml)
        slo, shi = ml.structure.bounds()
        self.lower, self.upper = np.r_[lower, slo], np.r_[upper, shi]
        span = np.where(np.isfinite(shi - slo), shi - slo, 1.0)
        self.opt_lower = np.r_[lower, np.where(np.isfinite(slo), slo + 1e-9 * span, slo)]
        self.opt_upper = np.r_[upper, np.where(np.isfinite(shi), shi - 1e-9 * span, shi)]
        self._start(alphamax)

    def cuts(self, w: int) -> tuple[float, float]:
        """Just inside the structure's open bounds."""
        return self.opt_lower[w], self.opt_upper[w]

    def first_value(self, w: int) -> float:
        pw = self.opt[w]
        if w <= self.nsd:
            return super().first_value(w)
        step = 0.01 * max(abs(pw), 0.01)  # a structure parameter: a small step that stays inside its bounds
        return pw + step if pw + step < self.opt_upper[w] else pw - step

    def _view(self, vp: np.ndarray):
        """The criterion over theta at the structure's parameters in ``vp`` (None where not finite)."""
        u = self.fit.structure.unconstrained(vp[self.nsd + 1 :])
        if not np.all(np.isfinite(u)):
            return None
        return self.sobj.at(np.r_[np.zeros(self.sobj.ntheta), u])

    def deviance(self, vp: np.ndarray) -> float:
        sigma = vp[self.nsd]
        if not sigma > 0:
            return np.inf
        view = self._view(vp)
        if view is None:
            return np.inf
        f = view.factor(sdcor_to_theta(self.fit, vp[: self.nsd], sigma))
        if f is None:
            return np.inf
        s2 = sigma**2
        return f.logdet_L - view.weights.ldw + f.r2 / s2 + self.n * (_LOG2PI + np.log(s2))

    def _row_for_varpar(self, vp: np.ndarray, dev: float) -> np.ndarray:
        w = self._current
        devdiff = dev - self.base
        if devdiff < -1e-6:
            warn(f"profiling found a lower deviance (diff={devdiff:.3g})", ConvergenceWarning)
        z = np.sign(vp[w] - self.opt[w]) * np.sqrt(max(devdiff, 0.0))
        beta = np.full(len(self.opt) - self.nvp, np.nan)
        view = self._view(vp)
        f = None if view is None else view.factor(sdcor_to_theta(self.fit, vp[: self.nsd], vp[self.nsd]))
        if f is not None:
            beta = solve(f)[2] + view.beta0
        return np.r_[z, vp, beta]

    def fixef_zeta(self, value: float, _start=None) -> np.ndarray:
        j = self._current - self.nvp
        ml = self.fit
        obj = StructuredObjective(with_fixed_offset(ml.design, j, value), ml.structure, reml=False)
        obj.fitted = self.sobj.fitted
        x0 = np.r_[ml.estimates.theta, ml.estimates.phi]
        opt = run_optimizer(obj, x0, obj.lower, PROFILE)
        theta, u = obj.split(opt.final)
        view = obj.at(opt.final)
        f = view.factor(theta)
        sigma = np.sqrt(f.r2 / self.n)
        sd = sdcor_parameters(ml.design.blocks, ml.layout.covariances(theta, sigma), sigma)
        beta = np.insert(solve(f)[2] + view.beta0, j, value)
        devdiff = max(opt.fmin - self.base, 0.0)
        nat = list(ml.structure.natural(u).values())
        return np.r_[np.sign(value - self.opt[self._current]) * np.sqrt(devdiff), sd.to_numpy(), nat, beta]

    def spline_points(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        """The profiled points the splines go through: beyond a jump of zeta, none.

        A structure's parameter near its bound can make the other parameters
        move to another optimum (e.g. a correlation near 1 with a random-effects
        SD near 0); zeta then jumps, and a spline through the jump bends the
        part that gives the intervals. Points after a jump of more than four
        of lme4's zeta steps (on either side of the estimate) are left out.
        """
        df = df.sort_values(name)
        z = df[".zeta"].to_numpy()
        keep = np.ones(len(z), bool)
        centre = int(np.argmin(np.abs(z)))
        for rng in (range(centre + 1, len(z)), range(centre - 1, -1, -1)):
            prev = centre
            for i in rng:
                if not keep[prev] or abs(z[i] - z[prev]) > 4 * self.delta:
                    keep[i] = False
                prev = i
        return df[keep]


def profile(
    fit: LmerFit, which: list[str] | None = None, alphamax: float = 0.01, progressbar: bool | None = None
) -> Profile:
    """Profile the likelihood of an LMM (lme4's ``profile(m)``).

    Parameters
    ----------
    fit
        A REML or ML fit (REML fits are profiled through their ML refit, as in lme4).
    which
        Parameters to profile (``.sig01``, ``.sigma``, fixed-effect names);
        all by default. ``"theta_"`` and ``"beta_"`` select all variance
        parameters or all fixed effects.
    alphamax
        The profile extends to ``|zeta| = sqrt(qchisq(1 - alphamax, npar))``.
    progressbar
        A bar per profiled parameter: by default in Jupyter and interactive sessions, not in
        scripts (:mod:`hierbayes._progress`); True or False to choose.

    Returns
    -------
    Profile

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"))
    >>> pr = profile(fit)
    >>> pr.confint().round(2).loc[".sigma"].tolist()
    [38.23, 67.66]
    """
    prof = (_Profiler if fit.structure is None else _StructuredProfiler)(fit, alphamax)
    names = prof.names
    idx = _which(which, names, prof.nvp)
    tables = prof.profile(idx, show_progress(progressbar))
    frames, backward, forward = [], {}, {}
    for w, pts in zip(idx, tables, strict=True):
        name = names[w]
        df = pd.DataFrame(pts, columns=[".zeta", *names])
        df[".par"] = name
        frames.append(df)
        ok = prof.spline_points(df.dropna(subset=[".zeta"]), name)
        forward[name] = backward[name] = None
        try:
            forward[name] = interp_spline(ok[name].to_numpy(), ok[".zeta"].to_numpy())
            backward[name] = back_spline(forward[name])
        except (ValueError, np.linalg.LinAlgError):
            warn(f"non-monotonic profile for {name}", ConvergenceWarning)
            backward[name] = None
    bounds = {names[w]: (prof.lower[w], prof.upper[w]) for w in idx if w < prof.nvp}
    table = pd.concat(frames, ignore_index=True)
    estimates = pd.Series(prof.opt, index=names)
    return Profile(
        table=table,
        estimates=estimates,
        backward=backward,
        forward=forward,
        lower={k: v[0] for k, v in bounds.items()},
        upper={k: v[1] for k, v in bounds.items()},
        formula=str(getattr(fit, "formula", "")),
        descriptions={**_descriptions(fit), **_structure_descriptions(fit)},
    )


def _which(which: list[str] | str | None, names: list[str], nvp: int) -> list[int]:
    if which is None:
        return list(range(len(names)))
    if isinstance(which, str):
        which = [which]
    idx: set[int] = set()
    for w in which:
        if w == "theta_":
            idx.update(range(nvp))
        elif w == "beta_":
            idx.update(range(nvp, len(names)))
        elif w in names:
            idx.add(names.index(w))
        else:
            raise UnknownParameterError(f"no parameter {w!r} to profile; the model has {', '.join(names)}")
    return sorted(idx)
