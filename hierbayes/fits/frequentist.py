"""Extractors shared by the REML/ML and GLMM fits (both made from theta, beta and conditional modes)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from hierbayes._warnings import warn
from hierbayes.design.varcorr import sdcor_parameters, varcorr_frame
from hierbayes.errors import ArgumentError, EstimationError, SingularFitWarning
from hierbayes.fits.base import MixedFit
from hierbayes.fits.rcalls import GetME
from hierbayes.linalg import ThetaLayout
from hierbayes.reml.fit import SINGULAR_TOL


class FrequentistFit(GetME, MixedFit):
    """lme4's extractors for a fit with ``estimates`` holding ``theta``, ``beta``, ``vcov``, ``b``, ``condvar``.

    Subclasses provide ``sigma`` (None without a residual SD), ``npar`` and ``loglik``.
    """

    estimates: object
    layout: ThetaLayout

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.estimates.beta, index=list(self.design.x_names), name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates (lme4's ``vcov``)."""
        names = list(self.design.x_names)
        return pd.DataFrame(self.estimates.vcov, index=names, columns=names)

    @property
    def theta(self) -> pd.Series:
        """Relative covariance parameters with lme4's names (``getME(m, "theta")``)."""
        return pd.Series(self.estimates.theta, index=self.layout.names, name="theta")

    @cached_property
    def covariances(self) -> dict[str, np.ndarray]:
        """Covariance matrix of each grouping factor's random effects (``sigma^2 Lambda Lambda'``)."""
        scale = 1.0 if self.sigma is None else self.sigma
        covs = self.layout.covariances(self.estimates.theta, scale)
        return {b.group: c for b, c in zip(self.design.blocks, covs, strict=True)}

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components like ``as.data.frame(VarCorr(m))`` (a Residual row when there is a sigma)."""
        return varcorr_frame(self.design.blocks, list(self.covariances.values()), self.sigma)

    @property
    def sdcor(self) -> pd.Series:
        """SDs, correlations (and sigma) named as lme4's ``confint`` rows (``.sig01``, ..., ``.sigma``)."""
        return sdcor_parameters(self.design.blocks, list(self.covariances.values()), self.sigma)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        return {
            b.group: pd.DataFrame(v, index=pd.Index(b.levels, name=b.group), columns=list(b.terms))
            for b, v in zip(self.design.blocks, self.estimates.b, strict=True)
        }

    @property
    def ranef_condvar(self) -> dict[str, pd.DataFrame]:
        """Conditional variances of the random effects (diagonals of lme4's ``condVar``), as ``ranef``."""
        return {
            b.group: pd.DataFrame(
                np.diagonal(cv, axis1=1, axis2=2).copy(), index=pd.Index(b.levels, name=b.group), columns=list(b.terms)
            )
            for b, cv in zip(self.design.blocks, self.estimates.condvar, strict=True)
        }

    @property
    def ranef_condcov(self) -> dict[str, np.ndarray]:
        """Full conditional covariance per level (levels x k x k), lme4's ``postVar`` array."""
        return {b.group: cv for b, cv in zip(self.design.blocks, self.estimates.condvar, strict=True)}

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.npar

    @property
    def bic(self) -> float:
        return -2 * self.loglik + float(np.log(self.nobs)) * self.npar

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom: observations minus parameters (lme4's ``df.residual``)."""
        return self.nobs - self.npar

    @property
    def is_singular(self) -> bool:
        """Whether a variance is (near) zero or a correlation (near) +-1 (lme4's ``isSingular``)."""
        control = getattr(self.estimates, "control", None)
        tol = SINGULAR_TOL if control is None else control.check_conv_singular.tol
        return bool(np.any(self.estimates.theta[self.layout.lower == 0] < tol))

    def _pad(self, values: np.ndarray) -> np.ndarray:
        """Values of the used rows, padded with NaN at rows dropped for missing values when
        ``na_action="exclude"`` (R's ``naresid``/``napredict``); unchanged otherwise."""
        frame = self.design.frame
        if not getattr(self.model, "exclude", False) or frame.kept is None or frame.kept.all():
            return values
        out = np.full(len(frame.kept), np.nan)
        out[frame.kept] = values
        return out


def singular_warning(fit: FrequentistFit, detail: str = "") -> None:
    """lme4's singular-fit message, under the control's ``check.conv.singular`` action."""
    control = getattr(fit.estimates, "control", None)
    action = "message" if control is None else control.check_conv_singular.action
    if action == "ignore":
        return
    text = (
        f"boundary (singular) fit: a variance component is at zero or a correlation at +-1{detail}. The data "
        "cannot estimate this random-effects structure; simplify it, or fit it with method='bayes', where a "
        "prior keeps the SDs off zero."
    )
    if action == "stop":
        raise EstimationError(text + " (check.conv.singular = 'stop')")
    warn(text, SingularFitWarning)


def use_re_of(use_re: bool, re_form) -> bool:
    """lme4's ``re.form`` for simulate: None (NULL) conditions on the random effects, NA or ~0 draws new ones."""
    if re_form is ...:
        return bool(use_re)  # not given: as use_re says
    if re_form is None:
        return True
    if isinstance(re_form, float) and np.isnan(re_form):
        return False
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "NA", "0", "~1"):
        return False
    raise ArgumentError(
        f"simulate's re_form must be None (condition on the random effects) or 'NA' / '~0' (draw new ones), "
        f"not {re_form!r}"
    )
