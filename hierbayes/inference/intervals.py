"""Confidence intervals for REML/ML fits: lme4's ``confint(m, method=)``.

Rows are lme4's (``oldNames = TRUE``): ``.sig01``, ..., ``.sigma``, then the
fixed effects; columns ``"2.5 %"`` and ``"97.5 %"`` (for level 0.95).

* ``"profile"``: profile-likelihood intervals (:mod:`hierbayes.inference.profile`);
* ``"wald"``: ``estimate +- z * SE`` for fixed effects, NaN for the variance
  parameters (as lme4);
* ``"boot"``: parametric (or case) bootstrap percentile intervals
  (:mod:`hierbayes.inference.bootstrap`), 500 replicates unless ``nsim`` is
  given (lme4's default).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._args import check_unknown
from hierbayes._progress import resolve
from hierbayes.errors import ArgumentError, UnknownParameterError
from hierbayes.inference.bootstrap import bootstrap, check_boot_options
from hierbayes.inference.profile import profile

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: the fits sit above this layer

METHODS = ("profile", "wald", "boot")
#: lme4's default number of replicates for ``confint(method = "boot")``.
BOOT_NSIM = 500


def parameter_names(fit: LmerFit) -> list[str]:
    """lme4's confint row names: ``.sig01``, ..., ``.sigma``, a residual structure's (``Phi``, ...), fixed effects."""
    return [*fit.sdcor.index, *_structure_names(fit), *fit.fixef.index]


def _structure_names(fit: LmerFit) -> list[str]:
    return list(fit.residual_params) if getattr(fit, "structure", None) is not None else []


def select(names: list[str], parm: Any, nvp: int) -> list[str]:
    """lme4's ``parm``: names, 1-based positions, ``"theta_"`` or ``"beta_"``; None for all."""
    if parm is None:
        return list(names)
    if isinstance(parm, bool) or not isinstance(parm, (str, int, np.integer, list, tuple, np.ndarray, pd.Index)):
        raise ArgumentError(f"parm must be a name, a 1-based position or a list of them, not {parm!r}")
    items = [parm] if isinstance(parm, str | int | np.integer) else list(parm)
    out: list[str] = []
    for p in items:
        if isinstance(p, int | np.integer) and not isinstance(p, bool):
            if not 1 <= p <= len(names):
                raise UnknownParameterError(
                    f"parm {p} is out of range: there are {len(names)} parameters ({', '.join(names)})"
                )
            chosen = [names[p - 1]]
        elif p == "theta_":
            chosen = names[:nvp]
        elif p == "beta_":
            chosen = names[nvp:]
        elif p in names:
            chosen = [p]
        else:
            raise UnknownParameterError(
                f"no parameter {p!r}; the model has {', '.join(names)} (or 'theta_', 'beta_', 1-based positions)"
            )
        out += [c for c in chosen if c not in out]
    return [n for n in names if n in out]


def check_level(level: Any) -> float:
    """A confidence level strictly between 0 and 1 (an ArgumentError otherwise)."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) or not 0 < level < 1:
        raise ArgumentError(f"level must be a number between 0 and 1, not {level!r}")
    return float(level)


def _columns(level: float) -> list[str]:
    a = (1 - level) / 2
    return [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]


def wald(fit: LmerFit, level: float = 0.95) -> pd.DataFrame:
    """Wald intervals: fixed effects only, NaN rows for the variance parameters (lme4)."""
    a = (1 - level) / 2
    z = stats.norm.ppf(1 - a)
    se = np.sqrt(np.diag(fit.vcov.to_numpy()))
    fe = fit.fixef.to_numpy()
    nvp = len(fit.sdcor) + len(_structure_names(fit))
    lo = np.r_[np.full(nvp, np.nan), fe - z * se]
    hi = np.r_[np.full(nvp, np.nan), fe + z * se]
    return pd.DataFrame(np.c_[lo, hi], index=parameter_names(fit), columns=_columns(level))


def confint(
    fit: LmerFit, method: str = "profile", level: float = 0.95, parm: Any = None, **boot_options: Any
) -> pd.DataFrame:
    """Confidence intervals of all parameters, in lme4's layout (see the module docstring)."""
    method = str(method).lower()
    if method not in METHODS:
        raise ArgumentError(f"confint method must be one of {', '.join(map(repr, METHODS))}, not {method!r}")
    check_level(level)
    names = parameter_names(fit)
    chosen = select(names, parm, len(fit.sdcor) + len(_structure_names(fit)))
    progress = {k: boot_options.pop(k) for k in ("progressbar", "progress") if k in boot_options}
    if boot_options:
        boot_names = [n for n in inspect.signature(bootstrap).parameters if n != "fit"]
        check_unknown({k: v for k, v in boot_options.items() if k not in boot_names}, "confint",
                      ["method", "level", "parm", *boot_names])  # fmt: skip
        if method != "boot":
            raise ArgumentError(f"{', '.join(boot_options)} only apply to method='boot'")
    if method == "wald":
        return wald(fit, level).loc[chosen]
    if method == "profile":
        show = resolve(progress.get("progressbar"), progress.get("progress"), "confint(method='profile')")
        ci = profile(fit, which=chosen, progressbar=show).confint(level)
        ci.columns = _columns(level)
        return ci.loc[chosen]
    check_boot_options(boot_options, "confint(method='boot')")
    boot_options.setdefault("nsim", BOOT_NSIM)
    boot_options.update(progress)
    result = fit.bootstrap(**boot_options)  # the fit keeps the replicates (fit.boot)
    return result.confint(level).loc[chosen]
