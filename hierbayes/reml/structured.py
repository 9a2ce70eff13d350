"""REML/ML with a residual structure (nlme's ``correlation=`` and ``weights=`` of ``lme``).

With residual covariance ``sigma^2 R(phi)`` the profiled criteria are those of
:mod:`hierbayes.reml.objective` computed from the cross-products of the
*whitened* ``W [Z X y]`` (``W'W = R^{-1}``), with ``log|R|`` added (it enters
as ``ldw = -log|R|``, the place prior weights' ``sum(log w)`` takes). The
whitening is row-wise (:mod:`hierbayes.structures`), so an evaluation is O(n)
and no n x n matrix is formed. The structure's unconstrained parameters join
theta in the optimizer: ``x = [theta, phi]``.

For a fixed phi, :meth:`StructuredObjective.at` is an ordinary
:class:`~hierbayes.reml.fit.LmmObjective` over theta on the whitened data, so
the estimates (beta, b, vcov, conditional variances) come from
:func:`~hierbayes.reml.fit.estimates_at` unchanged.

Variance functions of the fitted values (``varPower()``) follow nlme: the
fitted values are held fixed while x is optimised, then updated, until x
changes by less than ``FITTED_TOL`` (relative): nlme's fixed point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.errors import DataError, EstimationError
from hierbayes.linalg import ThetaLayout
from hierbayes.linalg.crossprod import crossproducts
from hierbayes.optim import run_optimizer
from hierbayes.optim.control import OptimizerSettings
from hierbayes.optim.convergence import check_derivatives
from hierbayes.reml.fit import LmmEstimates, LmmObjective, estimates_at, lme4_start, polish
from hierbayes.reml.objective import PriorWeights, criterion, factorize

if TYPE_CHECKING:
    from hierbayes.design import Design
    from hierbayes.structures import ResidualStructure


#: BOBYQA on [theta, phi], tightly (nlme's references are tight fits); Newton steps follow.
STRUCTURED = OptimizerSettings(name="nloptwrap", algorithm="LN_BOBYQA", ftol_abs=1e-12, xtol_abs=1e-10)
#: Relative change of the parameters at which nlme's fitted-values loop stops.
FITTED_TOL = 1e-9
#: At most this many updates of the fitted values.
FITTED_MAXITER = 200


class StructuredObjective:
    """The REML criterion or ML deviance as a function of ``x = [theta, phi]``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> from hierbayes.design import build_design
    >>> from hierbayes.structures import bind_structure
    >>> data = hb.datasets.load("sleepstudy")
    >>> d = build_design("Reaction ~ Days + (1 | Subject)", data)
    >>> s = bind_structure(hb.corAR1("~ 1 | Subject"), None, data, d.blocks)
    >>> obj = StructuredObjective(d, s, reml=True)
    >>> round(obj([1.0, 0.0]), 4) == round(LmmObjective(d, reml=True)([1.0]), 4)
    True
    """

    def __init__(self, design: Design, structure: ResidualStructure, reml: bool = True):
        self.design = design
        self.structure = structure
        self.reml = reml
        self.layout = ThetaLayout(design.blocks)
        self.ntheta = self.layout.size
        o = structure.order
        y = design.y if design.offset is None else design.y - design.offset
        self.beta0 = np.linalg.lstsq(design.X, y, rcond=None)[0] if design.p else np.zeros(0)
        cols = [design.X, (y - design.X @ self.beta0)[:, None], *[b.Z for b in design.blocks]]
        self.M = np.column_stack(cols)[o]
        self.codes = [b.codes[o] for b in design.blocks]
        self.log_pw = np.zeros(design.n)
        if design.weights is not None:
            w = np.asarray(design.weights, float)
            if np.any(w <= 0):
                raise DataError("prior weights of zero cannot be combined with a residual structure; drop those rows")
            self.log_pw = 0.5 * np.log(w)[o]
        self.fitted: np.ndarray | None = None  # sorted rows; for variance functions of the fitted values
        self.lower = np.concatenate([self.layout.lower, np.full(structure.npar, -np.inf)])

    @property
    def n(self) -> int:
        return self.design.n

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        return x[: self.ntheta], x[self.ntheta :]

    def at(self, x) -> LmmObjective | None:
        """The criterion over theta with the structure's parameters fixed at those of ``x`` (None: not finite)."""
        _, u = self.split(x)
        M = self.M if not self.log_pw.any() else self.M * np.exp(self.log_pw)[:, None]
        Mw, logdet = self.structure.whiten(M, u, self.fitted)
        if not np.isfinite(logdet) or not np.all(np.isfinite(Mw)):
            return None
        logdet -= 2.0 * float(self.log_pw.sum())
        d, p = self.design, self.design.p
        blocks, j = [], p + 1
        for b, codes in zip(d.blocks, self.codes, strict=True):
            blocks.append(SimpleNamespace(codes=codes, Z=Mw[:, j : j + b.k], nlevels=b.nlevels, k=b.k))
            j += b.k
        obj = LmmObjective.__new__(LmmObjective)
        obj.design, obj.reml, obj.layout, obj.beta0 = d, self.reml, self.layout, self.beta0
        obj.weights = PriorWeights(None, d.n, -logdet)
        obj.cp = crossproducts(blocks, Mw[:, :p], Mw[:, p], None)
        obj.whitened = True  # its design's rows are not the whitened ones (criterion_pieces takes the factor's pwrss)
        return obj

    def __call__(self, x) -> float:
        obj = self.at(x)
        if obj is None:
            return np.inf
        theta, _ = self.split(x)
        f = factorize(obj.cp, self.layout, theta)
        return criterion(f, obj.weights.n, self.design.p, self.reml, obj.weights.ldw)


@dataclass(frozen=True)
class StructuredEstimates(LmmEstimates):
    """:class:`~hierbayes.reml.fit.LmmEstimates` and the residual structure's estimates.

    Attributes
    ----------
    structure
        The bound structure.
    phi
        Its unconstrained parameters.
    residual_params
        nlme's printed parameters (``coef(modelStruct, unconstrained = FALSE)``).
    logdet_R
        ``log|R|`` at the estimates (sigma excluded).
    fitted_iterations
        Updates of the fitted values (varPower() of the fitted values; 0 otherwise).
    """

    structure: ResidualStructure | None = None
    phi: np.ndarray | None = None
    residual_params: dict | None = None
    logdet_R: float = 0.0
    fitted_iterations: int = 0
    fitted_sorted: np.ndarray | None = None


def fit_structured(design: Design, structure: ResidualStructure, reml: bool = True, start=None,
                   verbose: int = 0) -> StructuredEstimates:  # fmt: skip
    """Fit by REML or ML with a residual structure (see the module docstring)."""
    obj = StructuredObjective(design, structure, reml)
    theta0 = lme4_start(design) if start is None else np.asarray(start, float)
    x = np.concatenate([theta0, structure.start])
    settings = STRUCTURED.updated(verbose=verbose) if verbose else STRUCTURED
    if structure.uses_fitted:
        obj.fitted = np.ones(design.n)  # at the start (power 0) the fitted values do not matter
        est0 = estimates_at(obj.at(x), x[: obj.ntheta], None)
        obj.fitted = _fitted(design, est0)[structure.order]
    iterations = 0
    while True:
        opt = run_optimizer(obj, x, obj.lower, settings)
        if not np.isfinite(opt.fmin):
            raise EstimationError(
                f"the {'REML criterion' if reml else 'deviance'} with the residual structure is not finite at any "
                "parameter value the optimizer tried: the model cannot be fitted to these data"
            )
        report = check_derivatives(obj, opt.final, obj.lower, None, check=False)
        opt, report = polish(obj, opt, obj.lower, report, None)
        if not structure.uses_fitted:
            break
        iterations += 1
        change = np.max(np.abs(opt.final - x) / np.maximum(np.abs(x), 1e-3))
        x = opt.final
        view = obj.at(x)
        est = estimates_at(view, x[: obj.ntheta], opt)
        obj.fitted = _fitted(design, est)[structure.order]
        if change < FITTED_TOL or iterations >= FITTED_MAXITER:
            break
    x = opt.final
    view = obj.at(x)
    if view is None:
        raise EstimationError("the residual structure is degenerate at the optimum")
    theta, u = obj.split(x)
    est = estimates_at(view, theta, dataclasses.replace(opt, final=x))
    fields = {f.name: getattr(est, f.name) for f in dataclasses.fields(LmmEstimates)}
    return StructuredEstimates(**fields, structure=structure, phi=u, residual_params=structure.natural(u),
                               logdet_R=-view.weights.ldw, fitted_iterations=iterations,
                               fitted_sorted=obj.fitted)  # fmt: skip


def _fitted(design: Design, est: LmmEstimates) -> np.ndarray:
    out = design.X @ est.beta
    if design.offset is not None:
        out = out + design.offset
    for blk, b in zip(design.blocks, est.b, strict=True):
        out = out + np.einsum("ij,ij->i", blk.Z, b[blk.codes])
    return out
