"""Protocols naming, for type annotations only, objects that live in a higher layer than their users.

The inference and tables modules take fits (``hierbayes.fits``) and the fits keep
their model (``hierbayes.model``); both sit above them. Annotating with the classes
themselves would need imports upward (an import cycle for a type checker); these
Protocols say what the lower layers use of them, and the classes satisfy them.
Nothing here is imported at run time by the modules that use it (``TYPE_CHECKING``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd


class Model(Protocol):
    """A :class:`hierbayes.Model`: formula, data, design and family, before fitting."""

    formula: str
    data: pd.DataFrame
    design: Any  # hierbayes.design.Design
    family: Any  # hierbayes.families.Family
    priors: dict[str, Any]


class MixedFit(Protocol):
    """A fitted mixed model (:class:`hierbayes.fits.base.MixedFit`: REML/ML or Bayesian)."""

    model: Model
    method: str

    @property
    def fixef(self) -> pd.Series: ...

    @property
    def ranef(self) -> dict[str, pd.DataFrame]: ...

    @property
    def varcorr(self) -> pd.DataFrame: ...

    @property
    def nobs(self) -> int: ...


class LmerFit(MixedFit, Protocol):
    """A linear mixed model fitted by REML or ML (:class:`hierbayes.fits.lmer.LmerFit`)."""

    estimates: Any  # hierbayes.reml.fit.LmmEstimates

    @property
    def theta(self) -> pd.Series: ...

    @property
    def sigma(self) -> float: ...

    @property
    def vcov(self) -> pd.DataFrame: ...

    @property
    def fitted(self) -> np.ndarray: ...


class GlmerFit(MixedFit, Protocol):
    """A generalized linear mixed model fitted by ML (:class:`hierbayes.fits.glmer.GlmerFit`)."""

    estimates: Any  # hierbayes.glmm.fit.GlmmEstimates

    @property
    def theta(self) -> pd.Series: ...

    @property
    def vcov(self) -> pd.DataFrame: ...

    @property
    def deviance(self) -> float: ...


class Profile(Protocol):
    """A likelihood profile (:class:`hierbayes.inference.profile.Profile`), as its zeta plot reads it."""

    table: pd.DataFrame
    estimates: pd.Series
    backward: dict[str, Any]  # parameter -> spline of the parameter in zeta (or None)
    forward: dict[str, Any]  # parameter -> spline of zeta in the parameter (or None)
