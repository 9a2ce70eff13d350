"""Convergence checks at the optimum, after lme4's ``checkConv``.

The gradient and Hessian of the criterion are taken by central finite
differences (lme4's ``deriv12``, step 1e-4). A fit is flagged when the
largest of ``min(|scaled gradient|, |gradient|)`` exceeds 0.002, when the
Hessian has negative eigenvalues, or when its eigenvalue ratio exceeds 1e6.
Parameters on a bound are left out (a boundary optimum has a non-zero
gradient by construction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hierbayes._warnings import warn
from hierbayes.errors import ConvergenceWarning, EstimationError

GRAD_TOL = 2e-3
HESS_TOL = 1e-6


@dataclass(frozen=True)
class ConvergenceReport:
    """Derivatives of the criterion at the optimum and what they say.

    Attributes
    ----------
    gradient, hessian
        Finite-difference derivatives (free parameters only).
    free
        Indices of parameters not on a bound.
    messages
        lme4-style warnings, empty when all is well.
    """

    gradient: np.ndarray
    hessian: np.ndarray
    free: np.ndarray
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.messages

    def warn(self) -> None:
        for m in self.messages:
            warn(m, ConvergenceWarning)


def derivatives(
    fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, h: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian (forward steps where a bound is near)."""
    x = np.asarray(x, float)
    n = len(x)
    f0 = fun(x)
    step = np.full(n, h)
    fwd = x - step < lower  # too close to the lower bound for a central step
    g = np.empty(n)
    H = np.empty((n, n))
    fp, fm = np.empty(n), np.empty(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = step[i]
        fp[i] = fun(x + e)
        fm[i] = fun(x - e) if not fwd[i] else fun(x + 2 * e)
        if fwd[i]:
            g[i] = (-3 * f0 + 4 * fp[i] - fm[i]) / (2 * step[i])
            H[i, i] = (f0 - 2 * fp[i] + fm[i]) / step[i] ** 2
        else:
            g[i] = (fp[i] - fm[i]) / (2 * step[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / step[i] ** 2
    for i in range(n):
        for j in range(i + 1, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i], ej[j] = step[i], step[j]
            if fwd[i] or fwd[j]:
                fij = fun(x + ei + ej)
                H[i, j] = (fij - fp[i] - fp[j] + f0) / (step[i] * step[j])
            else:
                H[i, j] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                    4 * step[i] * step[j]
                )
            H[j, i] = H[i, j]
    return g, H


def convergence_messages(
    g: np.ndarray, H: np.ndarray, grad_tol: float = GRAD_TOL, hess_tol: float = HESS_TOL
) -> list[str]:
    """lme4's checks on a gradient and Hessian (free parameters only)."""
    if len(g) == 0:
        return []
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return ["Problem with Hessian check (infinite or missing values?)"]
    return gradient_messages(g, H, grad_tol) + hessian_messages(H, hess_tol)


def gradient_messages(
    g: np.ndarray, H: np.ndarray, tol: float = GRAD_TOL, rel_tol: float | None = None, coefs: np.ndarray | None = None
) -> list[str]:
    """lme4's ``check.conv.grad``: the scaled gradient (and, with ``rel_tol``, the relative one)."""
    if len(g) == 0:
        return []
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return ["Problem with Hessian check (infinite or missing values?)"]
    messages = []
    try:
        R = np.linalg.cholesky(H).T  # H = R'R as R's chol()
        scgrad = np.linalg.solve(R, g)
    except np.linalg.LinAlgError:
        scgrad = None
        messages.append("unable to evaluate scaled gradient")
    if scgrad is not None:
        mingrad = np.minimum(np.abs(scgrad), np.abs(g))
        if mingrad.max() > tol:
            w = int(np.argmax(mingrad)) + 1
            messages.append(
                f"Model failed to converge with max|grad| = {mingrad.max():.6g} (tol = {tol:g}, component {w})"
            )
    if rel_tol is not None and coefs is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.max(np.abs(g / np.asarray(coefs, float)))
        if rel > rel_tol:
            messages.append(f"Model failed to converge with max|relative grad| = {rel:.6g} (tol = {rel_tol:g})")
    return messages


def hessian_messages(H: np.ndarray, tol: float = HESS_TOL) -> list[str]:
    """lme4's ``check.conv.hess``: negative eigenvalues, or a large eigenvalue ratio."""
    if H.size == 0:
        return []
    if not np.all(np.isfinite(H)):
        return ["Problem with Hessian check (infinite or missing values?)"]
    ev = np.linalg.eigvalsh((H + H.T) / 2)
    negative = int(np.sum(ev < -tol))
    if negative:
        return [f"Model failed to converge: degenerate Hessian with {negative} negative eigenvalues"]
    if ev.min() > tol and ev.max() / ev.min() > 1 / tol:
        return [
            f"Model is nearly unidentifiable: large eigenvalue ratio ({ev.max() / ev.min():.3g}) - Rescale variables?"
        ]
    return []


def controlled_messages(g: np.ndarray, H: np.ndarray, coefs: np.ndarray, control) -> list[str]:
    """The convergence messages lme4's ``checkConv`` gives under a control's actions and tolerances.

    Checks whose action is ``"ignore"`` give no message; one whose action is
    ``"stop"`` raises an EstimationError with its messages.
    """
    out = []
    grad, hess = control.check_conv_grad, control.check_conv_hess
    for check, compute in (
        (grad, lambda: gradient_messages(g, H, grad.tol, grad.relTol, coefs)),
        (hess, lambda: hessian_messages(H, hess.tol)),
    ):
        if check.action == "ignore" or len(g) == 0:
            continue
        msgs = compute()
        if msgs and check.action == "stop":
            raise EstimationError("; ".join(msgs) + " (the control's convergence check action is 'stop')")
        out += [m for m in msgs if m not in out]
    return out


def free_parameters(theta: np.ndarray, lower: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of parameters not on their lower bound."""
    return np.flatnonzero(~(np.isfinite(lower) & (theta - lower < tol)))


def gradient(fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """The central-difference gradient of :func:`derivatives` alone (2 evaluations per parameter)."""
    x = np.asarray(x, float)
    g = np.empty(len(x))
    f0 = None
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        if x[i] - h < lower[i]:  # forward, as derivatives() does near a bound
            f0 = fun(x) if f0 is None else f0
            g[i] = (-3 * f0 + 4 * fun(x + e) - fun(x + 2 * e)) / (2 * h)
        else:
            g[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def updated_gradient(
    fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, report: ConvergenceReport, control=None
) -> ConvergenceReport:
    """The report at a point near the one it was computed at: a new gradient, the same Hessian and free set."""
    x = np.asarray(x, float)
    free = report.free

    def sub(z: np.ndarray) -> float:
        full = x.copy()
        full[free] = z
        return fun(full)

    g = gradient(sub, x[free], lower[free])
    H = report.hessian
    messages = convergence_messages(g, H) if control is None else controlled_messages(g, H, x[free], control)
    return ConvergenceReport(gradient=g, hessian=H, free=free, messages=messages)


def check_derivatives(
    fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray, control=None, check: bool = True
) -> ConvergenceReport:
    """lme4's convergence check at an optimum: derivatives in the free parameters and their verdict.

    ``control`` (a :class:`hierbayes.optim.control.Control`) sets the checks' actions and tolerances
    (lme4's defaults when None). ``check=False`` computes the derivatives without a verdict (no messages).
    """
    x = np.asarray(x, float)
    free = free_parameters(x, lower)

    def sub(z: np.ndarray) -> float:
        full = x.copy()
        full[free] = z
        return fun(full)

    g, H = derivatives(sub, x[free], lower[free]) if len(free) else (np.zeros(0), np.zeros((0, 0)))
    if not check:
        messages: list[str] = []
    elif control is None:
        messages = convergence_messages(g, H)
    else:
        messages = controlled_messages(g, H, x[free], control)
    return ConvergenceReport(gradient=g, hessian=H, free=free, messages=messages)
