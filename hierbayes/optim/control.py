"""Fit controls with lme4's names: ``lmerControl()``, ``glmerControl()`` and ``optimizer=``.

A control is a frozen record of the settings lme4's ``lmerControl`` and
``glmerControl`` take, with the same names (R's dots may be written as
underscores: ``calc.derivs`` or ``calc_derivs``). It can be given as the
object these functions return or as a plain dict of lme4's names, e.g.
``control={"optimizer": "bobyqa", "optCtrl": {"maxfun": 1e5}, "calc.derivs": False}``.

What each setting does here:

* ``optimizer``: lme4's optimizer names, mapped onto NLopt and SciPy:
  ``"nloptwrap"`` and ``"bobyqa"`` -> BOBYQA (NLopt, what lme4's
  ``nloptwrap`` runs by default), ``"Nelder_Mead"`` -> Nelder-Mead (NLopt),
  ``"nlminbwrap"`` -> L-BFGS-B (SciPy, bounded quasi-Newton with
  finite-difference gradients, like R's ``nlminb``); ``None`` -> no
  optimisation (the fit is evaluated at ``start``, lme4's
  ``optimizer = NULL``). ``"optimx"`` and ``"nmkbw"`` call R packages and are
  not available. For ``glmer`` two names may be given, one per stage.
* ``optCtrl``: the chosen optimizer's settings under lme4's names
  (nloptwrap: ``maxeval``, ``ftol_abs``, ``ftol_rel``, ``xtol_abs``,
  ``xtol_rel``, ``algorithm``; bobyqa: ``maxfun``, ``rhobeg``, ``rhoend``;
  Nelder_Mead: ``maxfun``, ``FtolAbs``, ``FtolRel``, ``XtolRel``, ``xst``;
  nlminbwrap: ``eval.max``, ``iter.max``, ``rel.tol``, ``abs.tol``). Tolerances
  not given keep the engine's defaults (lme4's nloptwrap settings for lmer).
* ``calc.derivs``: compute the finite-difference gradient and Hessian at the
  optimum (for the convergence checks, the GLMM's Hessian-based ``vcov`` and
  the Newton polish of the optimum); False skips them.
* ``check.conv.grad``, ``check.conv.hess``, ``check.conv.singular``: the
  action (``"ignore"``, ``"message"``, ``"warning"``, ``"stop"``) and tolerance
  of lme4's convergence checks; a ``"stop"`` raises an EstimationError.
* ``boundary.tol``, ``restart_edge``: lme4's moves to and restarts from the
  boundary of the parameter space.
* ``check.rankX`` (``"stop.deficient"`` raises instead of dropping aliased
  columns; ``"silent.drop.cols"`` drops them without a warning),
  ``check.scaleX`` (``"ignore"`` or ``"stop"``), ``check.response.not.const``
  (glmer).
* ``nAGQ0initStep`` (glmer): False skips the nAGQ = 0 first stage.
* ``tolPwrss`` (glmer): accepted; PIRLS here always converges to rounding,
  tighter than lme4's default 1e-7, so it has no further effect.

Settings of lme4 with no counterpart here (``sparseX``, ``standardize.X``,
``use.last.params``, the level-count checks, ...) are accepted with lme4's
default value and rejected with any other, naming the setting.

Examples
--------
>>> ctrl = lmerControl(optimizer="bobyqa", optCtrl={"maxfun": 2000})
>>> ctrl.optimizer, ctrl.optCtrl
(('bobyqa',), {'maxfun': 2000})
>>> as_control({"calc.derivs": False}, "lmer").calc_derivs
False
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hierbayes.errors import ArgumentError

#: lme4's optimizer names that hierbayes runs, and the algorithm each maps onto.
OPTIMIZERS = {
    "nloptwrap": "LN_BOBYQA",
    "bobyqa": "LN_BOBYQA",
    "Nelder_Mead": "LN_NELDERMEAD",
    "nlminbwrap": "lbfgsb",
    "lbfgsb": "lbfgsb",  # hierbayes' own name for the SciPy cross-check
}
#: lme4 optimizers that call other R packages.
UNAVAILABLE = {
    "optimx": "it calls the R package optimx",
    "nmkbw": "it calls the R package dfoptim",
}
#: nloptwrap's ``algorithm`` values hierbayes runs (NLopt's derivative-free local algorithms).
NLOPT_ALGORITHMS = ("NLOPT_LN_BOBYQA", "NLOPT_LN_NELDERMEAD", "NLOPT_LN_SBPLX", "NLOPT_LN_COBYLA",
                    "NLOPT_LN_NEWUOA_BOUND", "NLOPT_LN_PRAXIS")  # fmt: skip
#: optCtrl names per optimizer -> the optimizer setting they set (None: accepted, no effect here).
OPTCTRL = {
    "nloptwrap": {"maxeval": "maxeval", "ftol_abs": "ftol_abs", "ftol_rel": "ftol_rel", "xtol_abs": "xtol_abs",
                  "xtol_rel": "xtol_rel", "algorithm": "algorithm", "print_level": "verbose", "maxtime": "maxtime"},
    "bobyqa": {"maxfun": "maxeval", "rhobeg": "initial_step", "rhoend": "xtol_abs", "iprint": "verbose"},
    "Nelder_Mead": {"maxfun": "maxeval", "FtolAbs": "ftol_abs", "FtolRel": "ftol_rel", "XtolRel": "xtol_rel",
                    "xst": "initial_step", "verbose": "verbose"},
    "nlminbwrap": {"eval.max": "maxeval", "iter.max": "maxiter", "rel.tol": "ftol_rel", "abs.tol": "ftol_abs",
                   "trace": "verbose"},
}  # fmt: skip
OPTCTRL["lbfgsb"] = OPTCTRL["nlminbwrap"]
ACTIONS = ("ignore", "message", "warning", "stop")
#: glmerControl's default optimizers; given (or left out), hierbayes runs its own default in both stages.
GLMER_DEFAULT_OPTIMIZERS = ("bobyqa", "Nelder_Mead")


@dataclass(frozen=True)
class ConvCheck:
    """One of lme4's convergence checks (``.makeCC``): what to do, and its tolerance."""

    action: str
    tol: float
    relTol: float | None = None


@dataclass(frozen=True)
class OptimizerSettings:
    """An optimizer and its settings, ready to run (see :func:`hierbayes.optim.minimize.run_optimizer`).

    Attributes
    ----------
    name
        lme4's name (``"nloptwrap"``, ``"bobyqa"``, ...) or None for no optimisation.
    algorithm
        NLopt algorithm (``"LN_BOBYQA"``, ``"LN_NELDERMEAD"``, ...) or ``"lbfgsb"``.
    maxeval, maxiter, maxtime
        Limits on evaluations, iterations (L-BFGS-B) and seconds (None: none).
    ftol_abs, ftol_rel, xtol_abs, xtol_rel
        Stopping tolerances (None: not used).
    initial_step
        Initial step, a number or one per parameter (None: the algorithm's default).
    verbose
        Print every evaluation when > 0.
    """

    name: str | None = "nloptwrap"
    algorithm: str = "LN_BOBYQA"
    maxeval: int = 100_000
    maxiter: int | None = None
    maxtime: float | None = None
    ftol_abs: float | None = 1e-8
    ftol_rel: float | None = None
    xtol_abs: float | None = 1e-8
    xtol_rel: float | None = None
    initial_step: Any = None
    verbose: int = 0

    def updated(self, **changes: Any) -> OptimizerSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Control:
    """lme4's ``lmerControl``/``glmerControl`` settings (see the module docstring).

    Attributes are lme4's names with underscores for R's dots.
    """

    kind: str = "lmer"
    optimizer: tuple[str | None, ...] = ("nloptwrap",)
    optimizer_given: bool = False
    optCtrl: dict = field(default_factory=dict)
    restart_edge: bool = True
    boundary_tol: float = 1e-5
    calc_derivs: bool = True
    check_conv_grad: ConvCheck = ConvCheck("warning", 2e-3)
    check_conv_singular: ConvCheck = ConvCheck("message", 1e-4)
    check_conv_hess: ConvCheck = ConvCheck("warning", 1e-6)
    check_rankX: str = "message+drop.cols"
    check_scaleX: str = "warning"
    check_response_not_const: str = "stop"
    tolPwrss: float = 1e-7
    nAGQ0initStep: bool = True

    def stage(self, i: int) -> str | None:
        """The optimizer of stage i (0 or 1; lmer has one stage)."""
        return self.optimizer[min(i, len(self.optimizer) - 1)]

    def settings(self, i: int, base: OptimizerSettings) -> OptimizerSettings:
        """Settings for stage i: the named optimizer, ``optCtrl`` over the engine's defaults ``base``."""
        name = self.stage(i)
        if name is None:
            return base.updated(name=None)
        # not named by the user: the engine's default for this stage (optCtrl still read under lme4's names)
        out = base.updated(name=name, algorithm=OPTIMIZERS[name]) if self.optimizer_given else base
        return apply_optctrl(out, name, self.optCtrl)


#: lme4 settings accepted with their default value only: name -> (lmer default, glmer default).
_DEFAULT_ONLY = {
    "use_last_params": (False, False),
    "sparseX": (False, False),
    "standardize_X": (False, False),
    "check_nobs_vs_rankZ": ("ignore", "ignore"),
    "check_nobs_vs_nlev": ("stop", "stop"),
    "check_nlev_gtreq_5": ("ignore", "ignore"),
    "check_nlev_gtr_1": ("stop", "stop"),
    "check_nobs_vs_nRE": ("stop", "stop"),
    "check_formula_LHS": ("stop", "stop"),
    "compDev": (True, True),
    "mod_type": ("lmer", "glmer"),
}
_RANKX = ("message+drop.cols", "silent.drop.cols", "warn+drop.cols", "stop.deficient")
_SCALEX = ("warning", "stop", "ignore")
_GLMER_ONLY = ("tolPwrss", "nAGQ0initStep", "check_response_not_const")


def lmerControl(
    optimizer: str | None = "nloptwrap",
    restart_edge: bool = True,
    boundary_tol: float = 1e-5,
    calc_derivs: bool = True,
    check_conv_grad: Any = None,
    check_conv_singular: Any = None,
    check_conv_hess: Any = None,
    check_rankX: str = "message+drop.cols",
    check_scaleX: str = "warning",
    optCtrl: dict | None = None,
    **lme4_settings: Any,
) -> Control:
    """lme4's ``lmerControl()``: settings for ``hb.lmer(..., control=)``.

    Parameters are lme4's (R's dots written as underscores); see
    the module docstring for what each does here. Other lme4 settings
    (``sparseX``, ``check.nlev.gtr.1``, ...) are accepted with lme4's default value.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"),
    ...               control=hb.lmerControl(optimizer="Nelder_Mead", optCtrl={"maxfun": 5000}))
    >>> round(fit.reml_criterion, 2)
    1743.63
    """
    return as_control(
        {"optimizer": optimizer, "restart_edge": restart_edge, "boundary_tol": boundary_tol,
         "calc_derivs": calc_derivs, "check_conv_grad": check_conv_grad, "check_conv_singular": check_conv_singular,
         "check_conv_hess": check_conv_hess, "check_rankX": check_rankX, "check_scaleX": check_scaleX,
         "optCtrl": optCtrl, **lme4_settings},
        "lmer",
    )  # fmt: skip


def glmerControl(
    optimizer: str | tuple | list | None = ("bobyqa", "Nelder_Mead"),
    restart_edge: bool = False,
    boundary_tol: float = 1e-5,
    calc_derivs: bool = True,
    check_conv_grad: Any = None,
    check_conv_singular: Any = None,
    check_conv_hess: Any = None,
    check_rankX: str = "message+drop.cols",
    check_scaleX: str = "warning",
    optCtrl: dict | None = None,
    tolPwrss: float = 1e-7,
    nAGQ0initStep: bool = True,
    check_response_not_const: str = "stop",
    **lme4_settings: Any,
) -> Control:
    """lme4's ``glmerControl()``: settings for ``hb.glmer(..., control=)``.

    ``optimizer`` takes one name (both stages) or two (the nAGQ = 0 stage,
    then the full one). lme4's default pair ``("bobyqa", "Nelder_Mead")``
    runs hierbayes' default: BOBYQA in both stages, with lme4's per-parameter
    initial steps in the second; a pair given explicitly is run as named.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"),
    ...                family="binomial", control=hb.glmerControl(nAGQ0initStep=False))
    >>> round(fit.deviance, 2)
    184.05
    """
    settings = {
        "optimizer": optimizer, "restart_edge": restart_edge, "boundary_tol": boundary_tol,
        "calc_derivs": calc_derivs, "check_conv_grad": check_conv_grad, "check_conv_singular": check_conv_singular,
        "check_conv_hess": check_conv_hess, "check_rankX": check_rankX, "check_scaleX": check_scaleX,
        "optCtrl": optCtrl, "tolPwrss": tolPwrss, "nAGQ0initStep": nAGQ0initStep,
        "check_response_not_const": check_response_not_const, **lme4_settings,
    }  # fmt: skip
    if isinstance(optimizer, (tuple, list)) and tuple(optimizer) == GLMER_DEFAULT_OPTIMIZERS:
        del settings["optimizer"]  # lme4's default pair: hierbayes' default optimisation
    return as_control(settings, "glmer")


def _valid_names(kind: str) -> list[str]:
    names = ["optimizer", "optCtrl", "restart_edge", "boundary.tol", "calc.derivs", "check.conv.grad",
             "check.conv.singular", "check.conv.hess", "check.rankX", "check.scaleX"]  # fmt: skip
    if kind == "glmer":
        names += ["tolPwrss", "nAGQ0initStep", "check.response.not.const"]
    return names + sorted(k.replace("_", ".") for k in _DEFAULT_ONLY)


def as_control(control: Any, kind: str) -> Control:
    """A :class:`Control` from None, a Control, or a dict of lme4's names (dots or underscores).

    Raises
    ------
    ArgumentError
        An unknown setting, or a value lme4 would not take, naming it and the valid ones.
    """
    if kind not in ("lmer", "glmer"):
        raise ValueError(kind)
    if control is None:
        return Control(kind=kind, **_glmer_defaults(kind))
    if isinstance(control, Control):
        if control.kind == kind:
            return control
        # lme4 accepts an lmerControl in glmer (with a warning) and vice versa; keep the shared settings
        shared = {f.name: getattr(control, f.name) for f in dataclasses.fields(control)
                  if f.name not in ("kind", "optimizer_given", "restart_edge", *_GLMER_ONLY)}  # fmt: skip
        if not control.optimizer_given:
            shared.pop("optimizer")
        return _build(kind, shared)
    if not isinstance(control, dict):
        raise ArgumentError(
            f"control must be hb.{kind}Control(...) or a dict of lme4's {kind}Control settings, "
            f"not {type(control).__name__}"
        )
    settings, spelled = {}, {}
    for key, value in control.items():
        name = str(key).replace(".", "_")
        if name in settings:
            raise ArgumentError(f"control sets '{key}' twice")
        settings[name], spelled[name] = value, str(key)
    return _build(kind, settings, spelled)


def _glmer_defaults(kind: str) -> dict:
    return {"optimizer": GLMER_DEFAULT_OPTIMIZERS, "restart_edge": False} if kind == "glmer" else {}


def _build(kind: str, settings: dict, spelled: dict | None = None) -> Control:
    fields = {f.name for f in dataclasses.fields(Control)} - {"kind", "optimizer_given"}
    if kind == "lmer":
        fields -= set(_GLMER_ONLY)
    out: dict[str, Any] = _glmer_defaults(kind)
    for name, value in settings.items():
        if name in _DEFAULT_ONLY:
            default = _DEFAULT_ONLY[name][kind == "glmer"]
            if value != default:
                raise ArgumentError(
                    f"control setting '{name.replace('_', '.')}' = {value!r} is not available in hierbayes; only "
                    f"lme4's default ({default!r}) is accepted"
                )
            continue
        if name not in fields:
            close = difflib.get_close_matches(name.replace("_", "."), _valid_names(kind), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ArgumentError(
                f"unknown {kind}Control setting '{(spelled or {}).get(name, name)}'{hint} "
                f"(valid: {', '.join(_valid_names(kind))})"
            )
        if value is None and name != "optimizer":
            continue  # R's NULL: the default
        out[name] = value
    if "optimizer" in out and "optimizer" in settings:
        out["optimizer"] = _optimizer_names(out["optimizer"], kind)
        out["optimizer_given"] = not (kind == "glmer" and out["optimizer"] == GLMER_DEFAULT_OPTIMIZERS)
    # optCtrl is checked against the optimizer named here (else when the fit picks its optimizer)
    out["optCtrl"] = _optctrl(out.get("optCtrl"), out["optimizer"] if "optimizer" in settings else (), kind)
    for name in ("restart_edge", "calc_derivs", "nAGQ0initStep"):
        if name in out and not isinstance(out[name], bool):
            raise ArgumentError(f"control setting '{name.replace('_', '.')}' must be True or False, not {out[name]!r}")
    for name in ("boundary_tol", "tolPwrss"):
        if name in out:
            out[name] = _nonnegative(out[name], name)
    for name, default in (("check_conv_grad", ConvCheck("warning", 2e-3)),
                          ("check_conv_singular", ConvCheck("message", 1e-4)),
                          ("check_conv_hess", ConvCheck("warning", 1e-6))):  # fmt: skip
        if name in out:
            out[name] = _conv_check(out[name], name, default)
    _choice(out, "check_rankX", _RANKX)
    _choice(out, "check_scaleX", _SCALEX)
    _choice(out, "check_response_not_const", ("stop", "warning", "ignore"))
    return Control(kind=kind, **out)


def _optimizer_names(value: Any, kind: str) -> tuple[str | None, ...]:
    names = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if not 1 <= len(names) <= (2 if kind == "glmer" else 1):
        raise ArgumentError(
            f"optimizer takes {'one or two names (one per stage)' if kind == 'glmer' else 'one name'}, "
            f"not {len(names)}: {value!r}"
        )
    for n in names:
        check_optimizer_name(n)
    return names


def check_optimizer_name(name: Any) -> None:
    """Raise an ArgumentError unless ``name`` is an optimizer hierbayes runs (None: no optimisation)."""
    if name is None:
        return
    if not isinstance(name, str):
        raise ArgumentError(f"optimizer must be a name such as 'bobyqa', not {type(name).__name__}")
    if name in UNAVAILABLE:
        raise ArgumentError(
            f"optimizer '{name}' is not available in hierbayes ({UNAVAILABLE[name]}); use one of "
            f"{', '.join(n for n in OPTIMIZERS if n != 'lbfgsb')}"
        )
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(name, list(OPTIMIZERS), n=1, cutoff=0.5)
        if not close:
            close = [n for n in OPTIMIZERS if n.lower() == name.lower().replace("-", "_")]
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ArgumentError(
            f"unknown optimizer '{name}'{hint} (lme4's optimizers available here: "
            f"{', '.join(n for n in OPTIMIZERS if n != 'lbfgsb')}; None for no optimisation)"
        )


def _optctrl(value: Any, optimizers: tuple, kind: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentError(f"optCtrl must be a dict of the optimizer's settings, not {type(value).__name__}")
    named = [n for n in optimizers if n is not None]
    for key in value:
        for n in named:
            if key not in OPTCTRL[n]:
                valid = ", ".join(OPTCTRL[n])
                raise ArgumentError(f"optCtrl has '{key}', which optimizer '{n}' does not take (valid: {valid})")
    return dict(value)


def apply_optctrl(settings: OptimizerSettings, name: str, optctrl: dict) -> OptimizerSettings:
    """Settings with ``optCtrl`` (lme4's names for optimizer ``name``) applied."""
    changes: dict[str, Any] = {}
    for key, value in optctrl.items():
        target = OPTCTRL[name].get(key)
        if target is None:
            raise ArgumentError(f"optCtrl has '{key}', which optimizer '{name}' does not take "
                                f"(valid: {', '.join(OPTCTRL[name])})")  # fmt: skip
        if target == "algorithm":
            if value not in NLOPT_ALGORITHMS:
                raise ArgumentError(
                    f"optCtrl algorithm {value!r} is not available (choose from {', '.join(NLOPT_ALGORITHMS)})"
                )
            changes["algorithm"] = value.removeprefix("NLOPT_")
        elif target in ("maxeval", "maxiter", "verbose"):
            changes[target] = _count(value, key, minimum=0 if target == "verbose" else 1)
        elif target == "initial_step":
            changes[target] = _steps(value, key)
        else:
            changes[target] = _nonnegative(value, key)
    return settings.updated(**changes)


def _count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ArgumentError(f"optCtrl '{name}' must be a whole number >= {minimum}, not {value!r}")
    if float(value) != int(value):
        raise ArgumentError(f"optCtrl '{name}' must be a whole number, not {value!r}")
    return int(value)


def _nonnegative(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or v < 0:
        raise ArgumentError(f"'{name.replace('_', '.')}' must be a number >= 0, not {value!r}")
    return v


def _steps(value: Any, name: str):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim > 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ArgumentError(f"optCtrl '{name}' must be a positive number (or one per parameter), not {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def _conv_check(value: Any, name: str, default: ConvCheck) -> ConvCheck:
    label = name.replace("_", ".")
    if isinstance(value, ConvCheck):
        return value
    if isinstance(value, str):
        value = {"action": value}
    if not isinstance(value, dict):
        raise ArgumentError(f"control setting '{label}' must be an action ({', '.join(ACTIONS)}) or a dict "
                            f"with 'action' and 'tol', not {value!r}")  # fmt: skip
    unknown = set(value) - {"action", "tol", "relTol"}
    if unknown:
        raise ArgumentError(f"control setting '{label}' takes action, tol and relTol, not {', '.join(sorted(unknown))}")
    action = value.get("action", default.action)
    if action not in ACTIONS:
        raise ArgumentError(f"'{label}' action must be one of {', '.join(ACTIONS)}, not {action!r}")
    tol = _nonnegative(value.get("tol", default.tol), f"{label} tol")
    rel = value.get("relTol")
    return ConvCheck(action, tol, None if rel is None else _nonnegative(rel, f"{label} relTol"))


def _choice(out: dict, name: str, allowed: tuple) -> None:
    if name in out and out[name] not in allowed:
        raise ArgumentError(
            f"control setting '{name.replace('_', '.')}' must be one of {', '.join(allowed)}, not {out[name]!r}"
        )


def with_optimizer(control: Control, optimizer) -> Control:
    """The control with lme4's ``optimizer`` (one name; None for no optimisation) set."""
    if isinstance(optimizer, (tuple, list)) and control.kind == "glmer" and 1 <= len(optimizer) <= 2:
        for o in optimizer:
            check_optimizer_name(o)
        names = tuple(optimizer)
    else:
        check_optimizer_name(optimizer)
        names = (optimizer,)
    for n in names:
        if n is not None:
            apply_optctrl(OptimizerSettings(), n, control.optCtrl)  # optCtrl must suit the new optimizer
    return dataclasses.replace(control, optimizer=names, optimizer_given=True)
