"""``Model``: one formula and data, fitted by any engine.

>>> import hierbayes as hb
>>> m = hb.Model("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
>>> m.fit("ml").method
'ml'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hierbayes.design import Design, build_design, check_lmm_levels
from hierbayes.errors import ModelError
from hierbayes.families import Family, get_family
from hierbayes.formula import ParsedFormula

METHODS = ("reml", "ml", "bayes")


class Model:
    """A mixed model: formula, data, family and priors, before fitting.

    Parameters
    ----------
    formula
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data
        A pandas DataFrame. It is never modified.
    family
        Response family (``"gaussian"`` by default; see :mod:`hierbayes.families`).
    link
        Link function; the family's canonical link when None.
    priors
        Prior overrides by parameter name, for ``fit("bayes")``.
    na_action
        ``"omit"``: drop rows with missing, infinite or empty values in used
        columns (with a warning; counted in ``fit.n_dropped``); ``"raise"``:
        raise instead.
    weights
        Prior weights (column name or array), for binomial proportions.

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
        formula: str | ParsedFormula,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        link: str | None = None,
        priors: dict[str, Any] | None = None,
        na_action: str = "omit",
        weights: str | np.ndarray | None = None,
    ):
        self.family = get_family(family, link)
        self.data = data
        from hierbayes.bayesian.priors import check_priors_argument

        self.priors = check_priors_argument(priors)
        self.na_action = na_action
        self.weights = weights
        self.design: Design = build_design(formula, data, na_action=na_action, weights=weights)
        self.family.validate(self.design.y, self.design.trials, self.design.response_name)

    @property
    def formula(self) -> str:
        return self.design.formula.text

    def fit(self, method: str = "reml", **kwargs: Any):
        """Fit the model.

        Parameters
        ----------
        method
            ``"reml"`` or ``"ml"`` (frequentist; gaussian models by REML/ML,
            other families by ML with the Laplace approximation), or
            ``"bayes"`` (PyMC).
        **kwargs
            Engine options: ``start``, ``optimizer`` for REML/ML; ``nAGQ`` for
            GLMMs; ``draws``, ``tune``, ``chains``, ``random_seed``,
            ``sampler``, ... for the Bayesian engine.

        Returns
        -------
        MixedFit
            ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``, with the same extractors.
        """
        method = str(method).lower()
        if method not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if method == "bayes":
            from hierbayes.bayesian import fit_bayes

            return fit_bayes(self, **kwargs)
        if self.family.is_gaussian:
            return self._fit_lmm(reml=method == "reml", **kwargs)
        if method == "reml":
            raise ModelError(
                f"REML is defined for gaussian models only; fit the {self.family.name} model with "
                "method='ml' (Laplace approximation, like lme4's glmer) or method='bayes'"
            )
        from hierbayes.glmm import fit_glmm

        return fit_glmm(self, **kwargs)

    def pymc_model(self, **kwargs: Any):
        """The PyMC model the Bayesian engine samples, for users who want to extend it."""
        from hierbayes.bayesian import build_pymc_model

        return build_pymc_model(self, **kwargs)

    def _fit_lmm(self, reml: bool, start: np.ndarray | None = None, optimizer: str = "bobyqa"):
        from hierbayes.fits.lmer import LmerFit
        from hierbayes.reml.fit import fit_lmm

        if self.design.weights is not None:
            raise ModelError("prior weights are supported for binomial GLMMs only; drop weights= for an LMM")
        check_lmm_levels(self.design)
        return LmerFit(self, fit_lmm(self.design, reml=reml, start=start, optimizer=optimizer))

    def __repr__(self) -> str:
        return f"Model({self.formula!r}, family={self.family.name}/{self.family.link.name}, n={self.design.n})"


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, **kwargs: Any):
    """Fit a linear mixed model by REML (default) or ML, like ``lme4::lmer``.

    Parameters
    ----------
    formula
        An lme4 formula.
    data
        A pandas DataFrame.
    reml
        REML (True, lme4's default) or maximum likelihood (False).
    **kwargs
        ``na_action``, and fit options ``start`` and ``optimizer``.

    Returns
    -------
    LmerFit

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> round(float(fit.reml_criterion), 1)
    1743.6
    """
    model_kw = {k: kwargs.pop(k) for k in ("na_action",) if k in kwargs}
    return Model(formula, data, **model_kw).fit("reml" if reml else "ml", **kwargs)


def glmer(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    weights: str | np.ndarray | None = None,
    **kwargs: Any,
):
    """Fit a generalized linear mixed model by maximum likelihood, like ``lme4::glmer``.

    Parameters
    ----------
    formula
        An lme4 formula; binomial responses as ``cbind(successes, failures)``,
        0/1, or proportions with ``weights``.
    data
        A pandas DataFrame.
    family, link
        ``"binomial"``, ``"bernoulli"`` or ``"poisson"``, and a link.
    nAGQ
        1 for the Laplace approximation; more for adaptive Gauss-Hermite
        quadrature (a single scalar random effect only).
    weights
        Prior weights (number of trials for proportions).

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
    model_kw = {k: kwargs.pop(k) for k in ("na_action",) if k in kwargs}
    return Model(formula, data, family=family, link=link, weights=weights, **model_kw).fit("ml", nAGQ=nAGQ, **kwargs)


def bayes(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    link: str | None = None,
    priors: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """Fit a mixed model by Bayesian inference with PyMC (partial pooling).

    Shortcut for ``Model(formula, data, family, link, priors).fit("bayes", **kwargs)``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.bayes("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"),
    ...                draws=200, tune=200, chains=2, random_seed=1)  # doctest: +SKIP
    >>> fit.fixef.round(0)  # doctest: +SKIP
    """
    model_kw = {k: kwargs.pop(k) for k in ("na_action", "weights") if k in kwargs}
    return Model(formula, data, family=family, link=link, priors=priors, **model_kw).fit("bayes", **kwargs)
