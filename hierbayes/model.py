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
        self.priors = dict(priors or {})
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
            Engine options: ``start``, ``optimizer`` for REML/ML.

        Returns
        -------
        MixedFit
            ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``, with the same extractors.
        """
        method = str(method).lower()
        if method not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if method in ("reml", "ml"):
            if not self.family.is_gaussian:
                raise ModelError(
                    f"REML/ML linear mixed models need the gaussian family with identity link; for the "
                    f"{self.family.name} family use method='bayes'"
                )
            return self._fit_lmm(reml=method == "reml", **kwargs)
        raise ModelError("the Bayesian engine is not available in this build")

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
    >>> round(fit.reml_criterion, 1)
    1743.6
    """
    model_kw = {k: kwargs.pop(k) for k in ("na_action",) if k in kwargs}
    return Model(formula, data, **model_kw).fit("reml" if reml else "ml", **kwargs)
