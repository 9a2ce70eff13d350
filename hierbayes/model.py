"""``Model``: one formula and data, fitted by any engine; ``lmer``, ``glmer`` and ``bayes``.

The entry points take lme4's arguments under lme4's names (``REML``,
``control``, ``start``, ``verbose``, ``subset``, ``weights``, ``offset``, ``na_action``,
``nAGQ``, ``devFunOnly``) and ``optimizer`` as a shortcut for
``control``'s; an unknown keyword is an :class:`~hierbayes.errors.ArgumentError`
that lists the valid ones.

>>> import hierbayes as hb
>>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
>>> m.fit("ml").method
'ml'
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import warnings
from typing import Any

import numpy as np
import pandas as pd

from hierbayes._args import check_unknown
from hierbayes._threads import single_thread_blas
from hierbayes._warnings import warn
from hierbayes.bayesian import build_pymc_model, sample_posterior
from hierbayes.bayesian.distributional import AuxPredictor, aux_predictors, canonical_names
from hierbayes.bayesian.priors import check_priors_argument
from hierbayes.bayesian.sampling import check_sampler_options
from hierbayes.design import Design, build_design, check_lmm_levels
from hierbayes.design.frame import as_dataframe
from hierbayes.errors import (
    ArgumentError,
    DataError,
    DesignWarning,
    DroppedRowsWarning,
    EstimationError,
    ModelError,
    RankDeficiencyWarning,
    ScalingWarning,
)
from hierbayes.families import Family, get_family
from hierbayes.fits import GlmerFit, LmerFit, PosteriorFit
from hierbayes.formula import Formula, ParsedFormula, parse_formula
from hierbayes.formula.update import update_formula
from hierbayes.glmm import (
    FamilyParDeviance,
    check_nagq,
    deviance_function,
    estimate_family_par_glmm,
    estimate_glmm,
    glm_response,
)
from hierbayes.optim import as_control, with_optimizer
from hierbayes.query import select_rows
from hierbayes.reml import LmmObjective, fit_lmm
from hierbayes.reml.fit import start_theta
from hierbayes.reml.structured import StructuredObjective, fit_structured
from hierbayes.sources import is_source, open_source, streamed_design
from hierbayes.structures import Correlation, ResidualStructure, Variance, bind_structure

METHODS = ("reml", "ml", "bayes")
#: Keyword options of each engine (besides ``method`` and ``REML``/``reml``).
LMM_OPTIONS = ("start", "optimizer", "control", "verbose", "devFunOnly")
GLMM_OPTIONS = ("nAGQ", "start", "optimizer", "control", "verbose", "devFunOnly")


class Model:
    """A mixed model: formula, data, family and priors, before fitting.

    Parameters
    ----------
    formula
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``, or an
        :class:`hierbayes.Formula` with formulas for the family's auxiliary
        parameters (a distributional model, fitted by ``fit("bayes")`` only; see docs/families.md).
    data
        A pandas DataFrame. It is never modified.
    family
        Response family (``"gaussian"`` by default; see :mod:`hierbayes.families`).
    link
        Link function; the family's canonical link when None.
    priors
        Prior overrides by parameter name, for ``fit("bayes")``.
    na_action
        ``"omit"`` (R's ``"na.omit"``): drop rows with missing, infinite or
        empty values in used columns (with a warning; counted in
        ``fit.n_dropped``); ``"exclude"`` (``"na.exclude"``): the same, and the
        fit's ``residuals`` and ``fitted`` have NaN at the dropped rows (R's
        ``naresid``); ``"raise"`` (``"na.fail"``): raise instead.
    weights
        Prior weights: a column name or one number per row. For a gaussian
        model the residual variance of row i is ``sigma^2 / w_i`` (lme4's
        ``weights=``); for binomial data the number of trials of a
        proportion; for Poisson data a multiplier of each row's log-likelihood.
        Missing, negative or all-zero weights are an error.
    offset
        lme4's ``offset=`` argument, a known term added to the linear
        predictor (and to any ``offset()`` terms of the formula): a column
        name, an expression of columns (``"log(expected)"``), or one number
        per row. Given by column or expression, it is evaluated on new data
        when predicting; given as numbers, new data cannot supply it.
    subset
        Rows to use (lme4's ``subset=``): a boolean mask, the name of a
        boolean column, or an R-like condition such as ``"Days > 2"``
        (:mod:`hierbayes.query`). Rows left out are not counted as dropped.
    control
        lme4's ``lmerControl``/``glmerControl`` settings (a dict or
        ``hb.lmerControl(...)``): the design-time checks (``check.rankX``,
        ``check.scaleX``) apply when the model is built, the rest is the
        default of :meth:`fit`.

    Examples
    --------
    >>> import hierbayes as hb
    >>> model = hb.Model("mathach ~ cses + (1 | school)", hb.datasets.load("hsb"))
    >>> fit = model.fit("reml")
    >>> fit.fixef.round(4).to_dict()
    {'(Intercept)': 12.6361, 'cses': 2.1912}
    """

    def __init__(
        self,
        formula: str | ParsedFormula | Formula,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        link: str | None = None,
        priors: dict[str, Any] | None = None,
        na_action: str = "omit",
        weights: str | np.ndarray | None = None,
        subset: Any = None,
        control: Any = None,
        offset: str | np.ndarray | None = None,
        correlation: Correlation | None = None,
        variance: Variance | None = None,
    ):
        self.family = get_family(family, link)
        self.na_action = na_action  # checked by the model frame (lme4's and hierbayes' names, see NA_ACTIONS)
        self.control = control
        self.formula_object = formula if isinstance(formula, Formula) else None
        self.aux: list[AuxPredictor] = []  # the modelled auxiliary parameters (distributional models)
        self.aux_dropped = 0
        if isinstance(formula, Formula):
            if formula.aux:
                canonical_names(self.family, formula.aux)  # a parameter the family lacks: an error before any work
                if is_source(data):
                    raise ModelError("a distributional model (auxiliary formulas) needs the rows in a pandas "
                                     "DataFrame, not data read in pieces")  # fmt: skip
            formula = formula.main
        if is_source(data):  # a Parquet path, an Arrow dataset, a polars or Dask frame: read in pieces
            _check_streamed(self.family, weights, offset, subset, na_action)
            if correlation is not None or variance is not None:
                raise ModelError("a residual structure (correlation=, variance=) needs the rows in a pandas DataFrame, "
                                 "not data read in pieces")  # fmt: skip
            self.correlation, self.variance, self.structure = None, None, None
            self.data, self.subset, self.weights, self.offset = data, None, None, None
            self.priors = check_priors_argument(priors)
            self.design = streamed_design(formula, open_source(data), na_action)
            return
        data, (weights, offset) = _subset(data, subset, (weights, offset))
        if self.formula_object is not None and self.formula_object.aux:
            data, (weights, offset) = self._drop_aux_missing(formula, data, na_action, (weights, offset))
        self.data = data
        self.subset = subset
        self.priors = check_priors_argument(priors)
        self.weights = weights
        self.offset = offset
        self.design: Design = _build(formula, data, na_action, weights, control, self.family, offset)
        self.family.validate(self.design.y, self.design.trials, self.design.response_name)
        self.correlation, self.variance = correlation, variance
        self.structure: ResidualStructure | None = _bind_structure(self, correlation, variance)
        if self.formula_object is not None and self.formula_object.aux:
            self.aux = self._aux_designs()

    def _drop_aux_missing(self, formula, data, na_action: str, per_row: tuple) -> tuple[pd.DataFrame, tuple]:
        """Rows missing a value that only an auxiliary formula uses, dropped before the location's design is built."""
        response = parse_formula(formula if isinstance(formula, str) else formula.text).response_text
        _, keep = aux_predictors(self.family, self.formula_object.aux, as_dataframe(data), response, na_action)
        if keep is None or keep.all():
            return data, per_row
        self.aux_dropped = int((~keep).sum())
        warn(f"{self.aux_dropped} row(s) have missing, infinite or empty values in columns of the auxiliary "
             "formula(s); they were dropped (see fit.n_dropped).", DroppedRowsWarning)  # fmt: skip
        return _take_rows(as_dataframe(data), keep, per_row)

    def _aux_designs(self) -> list[AuxPredictor]:
        """The auxiliary formulas' designs on the rows the location's design kept."""
        kept = self.design.frame.kept
        rows = self.data if kept is None else as_dataframe(self.data).iloc[np.flatnonzero(kept)]
        aux, _ = aux_predictors(self.family, self.formula_object.aux, rows, self.design.response_name, "raise")
        for a in aux:
            if a.design.n != self.design.n:  # cannot happen: the rows were filtered above
                raise ModelError(f"the formula of {a.par} keeps {a.design.n} rows, the main formula {self.design.n}")
        return aux

    @classmethod
    def of_design(cls, design: Design, family: str | Family = "gaussian", link: str | None = None,
                  priors: dict[str, Any] | None = None, na_action: str = "omit") -> Model:  # fmt: skip
        """A model of a design already built from data read in pieces (``hb.load`` of such a fit)."""
        model = cls.__new__(cls)
        model.family = get_family(family, link)
        model.na_action, model.control, model.subset, model.weights, model.offset = na_action, None, None, None, None
        model.data = None
        model.priors = check_priors_argument(priors)
        model.design = design
        model.correlation, model.variance, model.structure = None, None, None
        model.formula_object, model.aux, model.aux_dropped = None, [], 0
        return model

    @property
    def formula(self) -> str:
        return self.design.formula.text

    @property
    def exclude(self) -> bool:
        """Whether the fit pads residuals and fitted values at dropped rows (``na_action="exclude"``)."""
        return self.na_action in ("exclude", "na.exclude")

    def fit(self, method: str | None = None, *, REML: bool | None = None, reml: bool | None = None, **options: Any):
        """Fit the model.

        Parameters
        ----------
        method
            ``"reml"`` or ``"ml"`` (frequentist; gaussian models by REML/ML,
            other families by ML with the Laplace approximation), or
            ``"bayes"`` (PyMC). By default ``"reml"`` (``"ml"`` for a
            non-gaussian family), or as ``REML`` says.
        REML, reml
            lme4's ``REML``: True for REML, False for maximum likelihood.
        **options
            REML/ML: ``start`` (theta, or lme4's ``{"theta": ...}``),
            ``optimizer`` (lme4's names), ``control`` (``hb.lmerControl(...)``
            or a dict of lme4's settings), ``verbose``, ``devFunOnly``.
            GLMMs: the same and ``nAGQ``. Bayesian: ``draws``, ``tune``,
            ``chains``, ``random_seed``, ``sampler``, ... (see
            :func:`hierbayes.bayesian.sample_posterior`) and ``warn`` (a
            SamplingWarning when the diagnostics are poor).

        Returns
        -------
        MixedFit
            ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``, with the same extractors
            (or the criterion as a function with ``devFunOnly=True``).
        """
        method = self._method(method, REML, reml)
        if self.aux and method != "bayes":
            raise ModelError(
                f"the formula models {', '.join(a.text for a in self.aux)} (a distributional model), which only the "
                "Bayesian engine fits: call hb.bayes(hb.Formula(...), data) or Model.fit('bayes'); hb.lmer and "
                "hb.glmer take an hb.Formula without auxiliary formulas"
            )
        if method == "bayes":
            _check_bayes_options(options, "Model.fit")
            return self._fit_bayes(**options)
        if self.family.is_gaussian:
            _check_options(options, LMM_OPTIONS, f"fit('{method}') of a linear mixed model")
            return self._fit_lmm(reml=method == "reml", **options)
        if method == "reml":
            raise ModelError(
                f"REML is defined for gaussian models only; fit the {self.family.name} model with "
                "method='ml' (Laplace approximation, like lme4's glmer) or method='bayes'"
            )
        _check_options(options, GLMM_OPTIONS, f"fit('ml') of a {self.family.name} model")
        return self._fit_glmm(**options)

    def _method(self, method: str | None, REML: bool | None, reml: bool | None) -> str:
        if REML is not None and reml is not None and bool(REML) != bool(reml):
            raise ArgumentError(f"REML={REML!r} and reml={reml!r} disagree; give one of them")
        flag = REML if REML is not None else reml
        if flag is not None and not isinstance(flag, (bool, np.bool_)):
            raise ArgumentError(f"REML must be True or False, not {flag!r}")
        if method is None:
            if flag is None:
                return "reml" if self.family.is_gaussian else "ml"
            return "reml" if flag else "ml"
        if not isinstance(method, str) or method.lower() not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        method = method.lower()
        if flag is not None and (method == "bayes" or (method == "reml") != bool(flag)):
            raise ArgumentError(f"REML={flag!r} contradicts method={method!r}; give one of them")
        return method

    def pymc_model(self, **kwargs: Any):
        """The PyMC model the Bayesian engine samples, for users who want to extend it."""
        return build_pymc_model(self, **kwargs)

    def update(self, formula: str | ParsedFormula | None = None, **changes: Any) -> Model:
        """The same model with another formula or arguments (R's ``update``).

        Parameters
        ----------
        formula
            A new formula, where ``.`` stands for the old formula's side
            (R's ``update.formula``): ``". ~ . - Days"``,
            ``". ~ . - (Days | Subject) + (1 | Subject)"``, ``"log(.) ~ ."``.
        **changes
            Any of the model's arguments (``data``, ``family``, ``link``,
            ``priors``, ``na_action``, ``weights``, ``subset``, ``offset``,
            ``correlation``, ``variance``, ``control``); the others are kept.
            With new ``data``, ``subset`` is applied to it again, and
            ``weights``/``offset`` given as numbers must be given again.

        Examples
        --------
        >>> import hierbayes as hb
        >>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> m.update(". ~ . - (Days | Subject) + (1 | Subject)").formula
        'Reaction ~ Days + (1 | Subject)'
        """
        known = ("data", "family", "link", "priors", "na_action", "weights", "subset", "control", "offset",
                 "correlation", "variance")  # fmt: skip
        check_unknown({k: v for k, v in changes.items() if k not in known}, "Model.update", list(known))
        if formula is None:
            formula = self.formula_object if self.formula_object is not None else self.design.formula
        elif isinstance(formula, str):
            formula = update_formula(self.formula, formula)
        args: dict[str, Any] = {
            "data": self.data, "family": self.family, "priors": self.priors, "na_action": self.na_action,
            "weights": self.weights, "control": self.control, "offset": self.offset,
            "correlation": self.correlation, "variance": self.variance,
        }  # fmt: skip
        if "data" in changes:
            args["subset"] = self.subset  # R evaluates the call again: the subset selects rows of the new data
            for name in ("weights", "offset"):
                value = args[name]
                if name not in changes and value is not None and not isinstance(value, str):
                    raise ArgumentError(f"{name}= was given as numbers for the old data; give {name}= again "
                                        "(or as a column name) with the new data")  # fmt: skip
        if "family" in changes and "link" not in changes:
            args["link"] = None
        if "link" in changes and "family" not in changes:
            args["family"] = self.family.name
        args.update(changes)
        if self.data is None:
            raise ModelError("this model was loaded from data read in pieces; update() needs the data: give data=")
        return Model(formula, **args)

    def with_response(self, y: Any) -> Model:
        """The same model with a new response vector (lme4's ``refit(object, newresp)``), design otherwise unchanged.

        ``y`` has one value per row of the fitted design (for a binomial
        model given as ``cbind(s, f)``, the successes).

        Examples
        --------
        >>> import hierbayes as hb
        >>> m = hb.Model("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> m.with_response(m.design.y * 2).design.y[:2].tolist()
        [499.12, 517.4094]
        """
        values = np.asarray(y, dtype=float).reshape(-1) if not isinstance(y, pd.Series) else y.to_numpy(float)
        if values.shape[0] != self.design.n:
            raise DataError(f"the new response has {values.shape[0]} values; the fitted model has {self.design.n} rows")
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError(f"the new response has a missing or infinite value at position {bad}")
        self.family.validate(values, self.design.trials, self.design.response_name)
        model = copy.copy(self)
        model.design = dataclasses.replace(self.design, y=values)  # the structure's rows are unchanged
        return model

    def _fit_lmm(self, reml: bool, start: Any = None, optimizer: Any = "default", control: Any = None,
                 verbose: int = 0, devFunOnly: bool = False):  # fmt: skip
        given_control = control if control is not None else self.control
        control = as_control(given_control, "lmer")
        _check_rank(self.design, control)
        check_lmm_levels(self.design)
        if self.structure is not None:
            if _flag(devFunOnly, "devFunOnly"):
                return StructuredObjective(self.design, self.structure, reml)
            if optimizer != "default" or given_control is not None:
                raise ArgumentError(
                    "optimizer= and control= are not used with a residual structure (its fit runs BOBYQA tightly, "
                    "then Newton steps); leave them out"
                )
            start = start_theta(self.design, start) if start is not None else None
            est = fit_structured(self.design, self.structure, reml=reml, start=start, verbose=_verbosity(verbose))
            return LmerFit(self, est)
        if _flag(devFunOnly, "devFunOnly"):
            return LmmObjective(self.design, reml)
        est = fit_lmm(self.design, reml=reml, start=start, optimizer=optimizer, control=control,
                      verbose=_verbosity(verbose))  # fmt: skip
        return LmerFit(self, est)

    def _fit_glmm(self, nAGQ: Any = 1, start: Any = None, optimizer: Any = "default", control: Any = None,
                  verbose: int = 0, devFunOnly: bool = False):  # fmt: skip
        control = as_control(control if control is not None else self.control, "glmer")
        _check_rank(self.design, control)
        verbose, devFunOnly = _verbosity(verbose), _flag(devFunOnly, "devFunOnly")
        nAGQ = check_nagq(nAGQ)
        if optimizer != "default":
            control = with_optimizer(control, optimizer)
        if devFunOnly:
            if self.family.ml_parameter is not None:  # a function of c(theta, beta, log(par)) (par fixed: without)
                return FamilyParDeviance(self.design, glm_response(self.design, self.family), self.family)
            return deviance_function(self.design, self.family, nAGQ)
        estimate = estimate_family_par_glmm if self.family.ml_parameter is not None else estimate_glmm
        with single_thread_blas():
            est = estimate(self.design, self.family, nAGQ=nAGQ, start=start, control=control, verbose=verbose)
        return GlmerFit(self, est)

    def _fit_bayes(self, warn: bool = True, **options: Any):
        post = sample_posterior(self.design, self.family, self.priors, structure=self.structure, aux=self.aux,
                                **options)  # fmt: skip
        return PosteriorFit(self, post.idata, post.info, post.priors, warn=warn, pending=post.pending)

    def __repr__(self) -> str:
        if self.aux:
            text = ", ".join([self.formula, *(a.text for a in self.aux)])
            return f"Model({text!r}, family={self.family.name}/{self.family.link.name}, n={self.design.n})"
        return f"Model({self.formula!r}, family={self.family.name}/{self.family.link.name}, n={self.design.n})"


def lmer(
    formula: str | Formula,
    data: pd.DataFrame,
    REML: bool | None = None,
    *,
    reml: bool | None = None,
    control: Any = None,
    start: Any = None,
    verbose: int = 0,
    subset: Any = None,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    na_action: str = "omit",
    optimizer: Any = "default",
    devFunOnly: bool = False,
    correlation: Correlation | None = None,
    variance: Variance | None = None,
    **unknown: Any,
):
    """Fit a linear mixed model by REML (default) or ML, like ``lme4::lmer``.

    Parameters
    ----------
    formula
        An lme4 formula.
    data
        A pandas DataFrame (never modified).
    REML
        REML (True; lme4's default, also when None) or maximum likelihood (False); ``reml`` is the same.
    control
        ``hb.lmerControl(...)`` or a dict of lme4's settings (:mod:`hierbayes.optim.control`).
    start
        Starting theta: a vector, or lme4's ``{"theta": [...]}``.
    verbose
        Print every evaluation of the criterion when > 0.
    subset
        Rows to use: a boolean mask, a boolean column's name or a condition such as ``"Days > 2"``.
    weights
        Prior weights (column name or array): the residual variance of row i is ``sigma^2 / w_i``.
    offset
        lme4's ``offset=``: a column name, an expression of columns or one number per row, added to
        the linear predictor and to any ``offset()`` in the formula (see :class:`Model`).
    na_action
        ``"omit"``/``"na.omit"``, ``"exclude"``/``"na.exclude"`` or ``"raise"``/``"na.fail"``
        (see :class:`Model`).
    optimizer
        lme4's optimizer name (``"nloptwrap"``, ``"bobyqa"``, ``"Nelder_Mead"``, ``"nlminbwrap"``);
        a shortcut for ``control={"optimizer": ...}``.
    devFunOnly
        Return the criterion as a function of theta instead of fitting.
    correlation
        A residual correlation structure within groups, nlme's ``correlation=``:
        ``hb.corAR1("~ 1 | g")``, ``hb.corCAR1("~ t | g")``, ``hb.corCompSymm("~ 1 | g")``.
    variance
        A residual variance function, nlme's ``weights=``: ``hb.varIdent("~ 1 | s")``,
        ``hb.varPower()``, ``hb.varPower("~ x")``, ``hb.varExp("~ x")``, ``hb.varComb(...)``.
        With either, the fit is nlme's ``lme`` (``fit.residual_params`` holds their estimates).

    Returns
    -------
    LmerFit

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> round(float(fit.reml_criterion), 1)
    1743.6
    >>> hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"), REML=False).method
    'ml'
    """
    _check_unknown(unknown, "hb.lmer", _LMER_NAMES)
    model = Model(formula, data, na_action=na_action, weights=weights, subset=subset, control=control, offset=offset,
                  correlation=correlation, variance=variance)  # fmt: skip
    if REML is None and reml is None:
        REML = True
    return model.fit(REML=REML, reml=reml, start=start, optimizer=optimizer, control=control, verbose=verbose,
                     devFunOnly=devFunOnly)  # fmt: skip


def glmer(
    formula: str | Formula,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    weights: str | np.ndarray | None = None,
    *,
    control: Any = None,
    start: Any = None,
    verbose: int = 0,
    subset: Any = None,
    offset: str | np.ndarray | None = None,
    na_action: str = "omit",
    optimizer: Any = "default",
    devFunOnly: bool = False,
    **unknown: Any,
):
    """Fit a generalized linear mixed model by maximum likelihood, like ``lme4::glmer``.

    Parameters
    ----------
    formula
        An lme4 formula; binomial responses as ``cbind(successes, failures)``,
        0/1, or proportions with ``weights``.
    data
        A pandas DataFrame (never modified).
    family, link
        ``"binomial"``, ``"bernoulli"``, ``"poisson"``, ``"Gamma"``,
        ``"inverse_gaussian"`` or ``"negative_binomial"`` (R's spellings too:
        ``"inverse.gaussian"``, ``"negative.binomial"``; or ``hb.Gamma(link)``,
        ``hb.inverse_gaussian(link)``, ``hb.negative_binomial(theta)`` with a
        fixed theta), and a link (R's default when None: ``Gamma``'s is
        ``"inverse"``). The negative binomial's theta (``fit.nb_theta``, as
        ``glmer.nb``) and the Gamma/inverse Gaussian dispersion (``fit.sigma``
        = sqrt(phi)) are estimated by maximum likelihood; for these two
        families the fit maximises the Laplace likelihood (glmmTMB's fit, not
        lme4 1.1-31's: docs/families.md). As in lme4,
        ``family="gaussian"`` (identity link) fits the linear mixed model by
        REML with a warning (call :func:`lmer` instead).
    nAGQ
        1 for the Laplace approximation; more for adaptive Gauss-Hermite
        quadrature (a single scalar random effect only); 0 for lme4's fast
        first stage only.
    weights
        Prior weights (number of trials for proportions; multipliers of the
        log-likelihood for Poisson counts).
    control
        ``hb.glmerControl(...)`` or a dict of lme4's settings.
    start
        lme4's ``{"theta": ..., "fixef": ...}`` (or a vector of theta).
    offset
        lme4's ``offset=`` (on the link scale, e.g. ``"log(expected)"`` for rates): a column name,
        an expression of columns or one number per row, added to any ``offset()`` in the formula.
    verbose, subset, na_action, optimizer, devFunOnly
        As in :func:`lmer`; ``optimizer`` may name one optimizer per stage.

    Returns
    -------
    GlmerFit

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> round(fit.deviance, 2)
    184.05
    """
    _check_unknown(unknown, "hb.glmer", _GLMER_NAMES)
    fam = get_family(family, link, r_default=True)
    if fam.is_gaussian:  # lme4's shortcut (its message), then lme4's lmer call: REML by default
        warn(
            "calling glmer() with family=gaussian (identity link) as a shortcut to lmer() is deprecated; "
            "please call lmer() directly",
            DesignWarning,
        )
        if nAGQ != 1:
            raise ArgumentError(f"nAGQ={nAGQ!r} applies to GLMMs; a gaussian model is fitted by lmer (REML)")
        return lmer(formula, data, control=control, start=start, verbose=verbose, subset=subset, weights=weights,
                    offset=offset, na_action=na_action, optimizer=optimizer, devFunOnly=devFunOnly)  # fmt: skip
    model = Model(formula, data, family=fam, weights=weights, na_action=na_action, subset=subset, control=control,
                  offset=offset)  # fmt: skip
    return model.fit("ml", nAGQ=nAGQ, start=start, optimizer=optimizer, control=control, verbose=verbose,
                     devFunOnly=devFunOnly)  # fmt: skip


def lme(
    fixed: str,
    data: pd.DataFrame,
    random: str | dict[str, str] | None = None,
    correlation: Correlation | None = None,
    weights: Variance | str | None = None,
    method: str = "REML",
    na_action: str = "na.fail",
    **options: Any,
) -> LmerFit:
    """Fit a linear mixed model with nlme's ``lme`` arguments (the same engine as :func:`lmer`).

    Parameters
    ----------
    fixed
        The fixed part with the response, ``"distance ~ age"``.
    data
        A pandas DataFrame (never modified).
    random
        nlme's random part: ``"~ 1 | Subject"``, ``"~ age | Subject"``,
        ``"~ 1 | Dog/Side"`` (nested), or ``{"Dog": "~ day", "Side": "~ 1"}``
        (R's ``list(Dog = ~ day, Side = ~ 1)``: each factor nested in the ones
        before it). nlme's pdMat classes are not taken; write ``pdDiag(~ age)``
        as ``hb.lmer("... + (age || Subject)")``.
    correlation
        ``hb.corAR1(...)``, ``hb.corCAR1(...)``, ``hb.corCompSymm(...)``.
    weights
        nlme's variance function (``hb.varIdent(...)``, ``hb.varPower(...)``,
        ...), or ``"~ x"`` (nlme's ``varFixed(~ x)``: variance proportional to
        the column ``x``, i.e. prior weights ``1 / x``). Not lme4's prior weights.
    method
        ``"REML"`` (nlme's default) or ``"ML"``.
    na_action
        nlme's default ``"na.fail"`` (missing values are an error); ``"na.omit"`` drops them.
    **options
        Passed to :func:`lmer` (``subset``, ``control``, ...).

    Returns
    -------
    LmerFit
        Summaries in lme4's layout, with nlme's structure blocks.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lme("Reaction ~ Days", hb.datasets.load("sleepstudy"), random="~ Days | Subject")
    >>> fit.formula, round(float(fit.loglik), 3)
    ('Reaction ~ Days + (Days | Subject)', -871.814)
    """
    if not isinstance(fixed, str) or "~" not in fixed:
        raise ArgumentError(f"fixed= must be a two-sided formula such as 'distance ~ age', not {fixed!r}")
    if not isinstance(method, str) or method.upper() not in ("REML", "ML"):
        raise ArgumentError(f"method must be 'REML' or 'ML' (nlme's), not {method!r}")
    variance, prior = None, None
    if isinstance(weights, str):
        prior = _var_fixed(weights, data)
    elif weights is not None:
        if not isinstance(weights, Variance):
            raise ArgumentError(
                "weights= of lme is nlme's variance function (hb.varIdent(...), hb.varPower(...), or '~ x' for "
                "varFixed); for lme4's prior weights use hb.lmer(..., weights=)"
            )
        variance = weights
    formula = f"{fixed.strip()} + {' + '.join(_nlme_random(random))}"
    return lmer(formula, data, REML=method.upper() == "REML", correlation=correlation, variance=variance,
                weights=prior, na_action=na_action, **options)  # fmt: skip


def _nlme_random(random: Any) -> list[str]:
    """nlme's ``random=`` as lme4 bars: ``"~ x | g"`` -> ``(x | g)``; a dict nests each factor in the ones before."""
    if random is None:
        raise ArgumentError("random= is needed (nlme takes it from a groupedData object, hierbayes does not): "
                            "e.g. random='~ 1 | Subject'")  # fmt: skip
    if isinstance(random, str):
        text = random.strip()
        if not text.startswith("~") or "|" not in text:
            raise ArgumentError(f"random= must be a one-sided formula with a grouping factor such as "
                                f"'~ 1 | Subject', not {random!r}")  # fmt: skip
        return [f"({text[1:].strip()})"]
    if isinstance(random, dict) and random:
        bars, outer = [], []
        for group, form in random.items():
            if not isinstance(form, str) or not form.strip().startswith("~") or "|" in form:
                raise ArgumentError(f"random={{{group!r}: ...}} needs a one-sided formula without '|' such as "
                                    f"'~ 1' or '~ age', not {form!r}")  # fmt: skip
            outer.append(str(group))
            bars.append(f"({form.strip()[1:].strip()} | {':'.join(outer)})")
        return bars
    raise ArgumentError(f"random= must be a string such as '~ 1 | Subject' or a dict such as "
                        f"{{'Subject': '~ age'}}, not {type(random).__name__}")  # fmt: skip


def _var_fixed(form: str, data: Any) -> np.ndarray:
    """nlme's ``varFixed(~ x)``: residual variance proportional to the column x, as prior weights 1 / x."""
    name = form.strip().lstrip("~").strip().strip("`")
    frame = as_dataframe(data)
    if not form.strip().startswith("~") or name not in frame.columns:
        raise ArgumentError(f"weights={form!r}: nlme's varFixed form is '~ column' naming a column of data")
    x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(x > 0))
    if bad.size:
        raise DataError(f"weights={form!r} (varFixed): column {name!r} must be positive; row {int(bad[0])} is "
                        f"{frame[name].iloc[int(bad[0])]!r}")  # fmt: skip
    return 1.0 / x


def glmer_nb(formula: str, data: pd.DataFrame, link: str = "log", **options: Any):
    """A negative-binomial GLMM with theta by maximum likelihood, like ``lme4::glmer.nb``.

    ``hb.glmer(formula, data, family="negative_binomial", link=link, **options)``;
    theta is ``fit.nb_theta`` (lme4's ``getME(fit, "glmer.nb.theta")``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer_nb("TICKS ~ YEAR + (1 | LOCATION)", hb.datasets.load("grouseticks"))
    >>> round(fit.nb_theta, 3)
    2.049
    """
    if "family" in options:
        raise ArgumentError("hb.glmer_nb fits the negative binomial family; call hb.glmer for another family")
    return glmer(formula, data, family="negative_binomial", link=link, **options)


def bayes(
    formula: str | Formula,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    link: str | None = None,
    priors: dict[str, Any] | None = None,
    *,
    subset: Any = None,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    na_action: str = "omit",
    correlation: Correlation | None = None,
    variance: Variance | None = None,
    **options: Any,
):
    """Fit a mixed model by Bayesian inference with PyMC (partial pooling).

    Shortcut for ``Model(formula, data, family, link, priors, ...).fit("bayes", **options)``;
    ``options`` are :func:`hierbayes.bayesian.sample_posterior`'s (``draws``, ``tune``,
    ``chains``, ``random_seed``, ...) and ``pymc.sample``'s. ``correlation`` and ``variance``
    are residual structures as in :func:`lmer` (gaussian family; the random effects are then
    sampled, and their parameters are in ``fit.residual_params``).
    ``formula`` may be an :class:`hierbayes.Formula` with formulas for the family's auxiliary
    parameters, ``hb.Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)")`` (a distributional model;
    docs/families.md).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.bayes("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"),
    ...                draws=200, tune=200, chains=2, random_seed=1)  # doctest: +SKIP
    >>> fit.fixef.round(0)  # doctest: +SKIP
    """
    _check_bayes_options(options)
    model = Model(formula, data, family=family, link=link, priors=priors, na_action=na_action, weights=weights,
                  subset=subset, offset=offset, correlation=correlation, variance=variance)  # fmt: skip
    return model.fit("bayes", **options)


_LMER_NAMES = [n for n in inspect.signature(lmer).parameters if n != "unknown"]
_GLMER_NAMES = [n for n in inspect.signature(glmer).parameters if n != "unknown"]


def _check_unknown(unknown: dict, where: str, valid: list[str]) -> None:
    hint = None
    if where == "hb.glmer" and set(unknown) & {"correlation", "variance"}:
        raise ModelError(
            f"{', '.join(sorted(set(unknown) & {'correlation', 'variance'}))} (a residual structure) is defined for "
            "gaussian models only: hb.glmer does not take one; fit a gaussian model with hb.lmer or hb.bayes"
        )
    if where == "hb.lmer" and set(unknown) & {"family", "link"}:
        hint = "hb.lmer fits gaussian models; for another family call hb.glmer(..., family=...)"
    check_unknown(unknown, where, valid, hint)


def _check_options(options: dict, valid: tuple[str, ...], where: str) -> None:
    unknown = [k for k in options if k not in valid]
    if unknown:
        _check_unknown({k: options[k] for k in unknown}, where.split("(")[0], [*valid, "REML"])


def _check_bayes_options(options: dict, where: str = "hb.bayes") -> None:
    """Sampler settings, then keywords that are neither sample_posterior's nor pymc.sample's (nor NUTS')."""
    check_sampler_options(options)
    engine_only = ("design", "family", "priors", "structure", "aux")  # set by the model, not by the user
    own = [n for n, p in inspect.signature(sample_posterior).parameters.items()
           if n not in engine_only and p.kind is not inspect.Parameter.VAR_KEYWORD]  # fmt: skip
    own.append("warn")
    unknown = [k for k in options if k not in own]
    if not unknown:
        return
    import pymc as pm  # PyMC only when an unknown keyword may be one of its own: import hierbayes stays light

    passed = set(inspect.signature(pm.sample).parameters) | set(inspect.signature(pm.NUTS.__init__).parameters)
    unknown = [k for k in unknown if k not in passed or k in ("self", "kwargs", "model")]
    if unknown:
        _check_unknown({k: options[k] for k in unknown}, where, [*own, "(and pymc.sample's keywords)"])


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def _verbosity(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise ArgumentError(f"verbose must be a whole number >= 0 (or True/False), not {value!r}")
    return int(value)


def _take_rows(df: pd.DataFrame, mask: np.ndarray, per_row: tuple) -> tuple[pd.DataFrame, tuple]:
    """The rows of ``mask`` (a new frame), and the per-row arrays among ``per_row`` (weights, offset) cut alike."""
    out = []
    for values in per_row:
        if values is not None and not isinstance(values, str) and np.ndim(values) and len(values) == len(df):
            values = np.asarray(values)[mask]
        out.append(values)
    return df.loc[mask], tuple(out)


def _subset(data: Any, subset: Any, per_row: tuple) -> tuple[pd.DataFrame, tuple]:
    """The rows ``subset`` selects (a new frame; the user's is untouched), and the weights and offset of those rows."""
    if subset is None:
        return data, per_row
    df = as_dataframe(data)
    mask = select_rows(df, subset)
    if not mask.any():
        raise DataError(f"subset {subset!r} selects none of the {len(df)} rows" if isinstance(subset, str)
                        else f"subset selects none of the {len(df)} rows")  # fmt: skip
    out = []
    for values in per_row:  # R evaluates weights and offset in the data frame, then subsets them with the rows
        if values is not None and not isinstance(values, str) and np.ndim(values) and len(values) == len(df):
            values = np.asarray(values)[mask]
        out.append(values)
    return df.loc[mask], tuple(out)


def _check_streamed(family: Family, weights, offset, subset, na_action) -> None:
    """What a model of data read in pieces (hierbayes.sources) does not take, as errors that say what to do."""
    if not family.is_gaussian:
        raise ModelError(
            f"a {family.name} model needs a pandas DataFrame: fits from data read in pieces (Parquet, Arrow, polars, "
            "Dask) are linear mixed models (gaussian family); GLMMs need a pass over the rows per PIRLS iteration, "
            "not supported yet"
        )
    for name, value in (("weights", weights), ("offset", offset), ("subset", subset)):
        if value is not None:
            raise ArgumentError(f"{name}= is not supported for data read in pieces (Parquet, Arrow, polars, Dask); "
                                f"filter or transform the data first (e.g. a pyarrow.dataset filter or a Dask "
                                f"expression), or fit a pandas DataFrame")  # fmt: skip
    if na_action in ("exclude", "na.exclude"):
        raise ArgumentError("na_action='exclude' pads per-row results, which a fit from data read in pieces does not "
                            "keep; use na_action='omit'")  # fmt: skip


def _build(formula, data, na_action: str, weights, control, family: Family, offset=None) -> Design:
    """The design, with lme4's design-time control checks (``check.rankX``, ``check.scaleX``) applied."""
    # a factor response is 0/1 for the binomial families (R's binomial()$initialize)
    kw = {"na_action": na_action, "weights": weights, "offset": offset, "binary_response": family.binomial}
    if family.response_kind is not None:  # ordinal/categorical: category codes (and no intercept for ordinal)
        kw["category_response"] = (family.response_kind, family.name)
    if control is None:
        return build_design(formula, data, **kw)
    ctrl = as_control(control, "lmer" if family.is_gaussian else "glmer")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = build_design(formula, data, **kw)
    for w in caught:
        if issubclass(w.category, RankDeficiencyWarning) and ctrl.check_rankX == "silent.drop.cols":
            continue
        if issubclass(w.category, ScalingWarning):
            if ctrl.check_scaleX == "ignore":
                continue
            if ctrl.check_scaleX == "stop":
                raise EstimationError(f"{w.message} (check.scaleX = 'stop')")
        warn(str(w.message), w.category)
    return design


def _bind_structure(model: Model, correlation, variance) -> ResidualStructure | None:
    """The residual structure on the model's rows (None without one); only gaussian models take one."""
    if correlation is None and variance is None:
        return None
    if not model.family.is_gaussian:
        given = ", ".join(n for n, v in (("correlation", correlation), ("variance", variance)) if v is not None)
        raise ModelError(
            f"{given} (a residual structure) is defined for gaussian models only, not for the "
            f"{model.family.name} family: fit it with hb.lmer or a gaussian hb.bayes"
        )
    kept = model.design.frame.kept
    rows = model.data if kept is None else model.data.iloc[np.flatnonzero(kept)]
    return bind_structure(correlation, variance, rows, model.design.blocks)


def _check_rank(design: Design, control) -> None:
    if design.aliased and control.check_rankX == "stop.deficient":
        raise EstimationError(
            f"the fixed-effect model matrix is rank deficient ({', '.join(design.aliased)} are linear "
            "combinations of earlier columns) and check.rankX = 'stop.deficient'"
        )
