"""``GlmerFit``: a GLMM fitted by maximum likelihood (Laplace or AGQ), with lme4's extractors."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hierbayes._args import check_unknown
from hierbayes._warnings import warn
from hierbayes.design.newdata import new_levels_policy
from hierbayes.errors import ArgumentError, OverdispersionWarning
from hierbayes.fits.base import PREDICT_ARGS, check_predict_type, linear_predictor, predict_interval
from hierbayes.fits.frequentist import FrequentistFit, singular_warning, use_re_of
from hierbayes.fits.glmer_summary import GlmerSummary
from hierbayes.glmm.family_par import FamilyParDeviance
from hierbayes.glmm.fit import GlmmEstimates, make_devfun
from hierbayes.inference import glmm_intervals
from hierbayes.inference.glmm_bootstrap import boot_confint, simulate_response
from hierbayes.inference.intervals import check_level, select
from hierbayes.inference.simulate import check_nsim
from hierbayes.linalg import ThetaLayout
from hierbayes.optim import OptStages

if TYPE_CHECKING:
    from hierbayes._types import Model  # a Protocol: hierbayes.model sits above the fits

#: Warn about overdispersion of a Poisson fit when the Pearson ratio exceeds this and p < OVERDISPERSION_P
OVERDISPERSION_RATIO = 1.5
OVERDISPERSION_P = 1e-3
RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


class GlmerFit(FrequentistFit):
    """A generalized linear mixed model fitted by maximum likelihood (lme4's ``glmerMod``).

    Made by :func:`hierbayes.glmer` or ``Model(..., family=...).fit("ml")``.
    Conventions follow lme4, with one naming difference: ``deviance`` is
    -2 logLik (the "deviance" column of lme4's summary and ``anova``), while
    lme4's ``deviance(m)`` -- the sum of squared deviance residuals at the
    conditional modes -- is ``conditional_deviance``. ``residuals`` is
    lme4's default for glmer, the deviance residuals; ``resid(type)`` gives
    the others. ``predict`` is on the link scale by default, as in lme4;
    ``fitted`` is on the response scale (proportions for binomial data).
    For nAGQ > 1 the log-likelihood is lme4's AGQ value, which omits the
    saturated model's constant, so it is not comparable with Laplace fits.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> fit.fixef.round(3).to_dict()
    {'(Intercept)': -1.399, 'period2': -0.992, 'period3': -1.129, 'period4': -1.58}
    >>> round(fit.aic, 2)
    194.05
    """

    method = "ml"

    def __init__(self, model: Model, estimates: GlmmEstimates, warn: bool = True):
        super().__init__(model)
        self.estimates = estimates
        self.layout = ThetaLayout(self.design.blocks)
        self.response = estimates.response
        self.convergence = estimates.convergence
        if warn:
            self._warn()

    # --- lme4 extractors ----------------------------------------------------------------
    @property
    def family(self):
        """The family (with its estimated parameter: ``family.theta`` of a negative binomial, ``family.dispersion``)."""
        return self.response.family

    @property
    def nAGQ(self) -> int:
        return self.estimates.nAGQ

    @property
    def sigma(self) -> float | None:
        """sqrt(phi) for Gamma and inverse Gaussian fits (the Gamma's CV); None for binomial, Poisson, NB.

        The random effects' SDs (``varcorr``) are on the linear-predictor
        scale, not multiplied by sigma as lme4 1.1-31 prints them.
        """
        fam = self.response.family
        if fam.ml_parameter != "dispersion":
            return None
        return float(np.sqrt(fam.parameter))

    @property
    def nb_theta(self) -> float | None:
        """The negative binomial's theta (lme4's ``getME(fit, "glmer.nb.theta")``); None for other families."""
        fam = self.response.family
        return float(fam.parameter) if fam.ml_parameter == "theta" else None

    @cached_property
    def covariances(self) -> dict[str, np.ndarray]:
        """Covariance matrix of each grouping factor's random effects (``Lambda Lambda'``, linear-predictor scale)."""
        covs = self.layout.covariances(self.estimates.theta, 1.0)
        return {b.group: c for b, c in zip(self.design.blocks, covs, strict=True)}

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, theta, and an estimated NB theta or dispersion (lme4's logLik df)."""
        return self.design.p + self.layout.size + int(self.estimates.family_par_free)

    @property
    def loglik(self) -> float:
        """The (Laplace or AGQ) log-likelihood at the estimates (lme4's ``logLik``)."""
        return -0.5 * self.estimates.objective

    @property
    def deviance(self) -> float:
        """-2 logLik: the "deviance" of lme4's summary and anova tables."""
        return self.estimates.objective

    @property
    def objective(self) -> float:
        return self.estimates.objective

    @property
    def conditional_deviance(self) -> float:
        """Sum of squared deviance residuals at the conditional modes (lme4's ``deviance(m)`` for a GLMM)."""
        return float(self.response.dev_resid(self.estimates.mu).sum())

    @property
    def optinfo(self) -> OptStages:
        """The optimizer records of both stages, ``(stage1, stage2)`` (stage 2 None for nAGQ = 0).

        Each is an :class:`~hierbayes.optim.OptSummary`: settings, start, final
        parameters, objective, evaluations, time, return code and lme4's
        convergence messages (lme4's ``optinfo``).
        """
        return OptStages(self.estimates.opt_stage1, self.estimates.opt)

    @cached_property
    def devfun(self):
        """The deviance as a function of c(theta, beta) (lme4's ``devFunOnly = TRUE``, nAGQ >= 1 stage).

        For a family with its own estimated parameter (NB theta, a
        dispersion), a function of ``c(theta, beta, log(par))``
        (:class:`~hierbayes.glmm.FamilyParDeviance`).
        """
        if self.estimates.family_par_free:
            return FamilyParDeviance(self.design, self.response, self.model.family)
        return make_devfun(self.design, self.response, max(self.nAGQ, 1))

    def _refit_settings(self, same_design: bool) -> tuple[str, dict]:
        options: dict = {"nAGQ": self.nAGQ}
        if self.estimates.control is not None:
            options["control"] = self.estimates.control
        return "ml", options

    # --- model comparison protocol (hb.anova) ----------------------------------------------
    def refit_ml(self) -> GlmerFit:
        """A GLMM fit is already a maximum-likelihood fit: returns itself."""
        return self

    # --- predictions and residuals --------------------------------------------------------
    @property
    def fitted(self) -> np.ndarray:
        """Fitted means conditional on the random effects (proportions for binomial data), lme4's ``fitted``.

        NaN at rows dropped for missing values with ``na_action="exclude"`` (R's naresid).
        """
        return self._pad(self.estimates.mu.copy())

    @property
    def weights(self) -> np.ndarray:
        """Prior weights as lme4 stores them (``weights(m)``): trials times the user's weights for binomial data."""
        return self._pad(np.asarray(self.response.wt, float).copy())

    @property
    def linear_predictor(self) -> np.ndarray:
        """eta at the conditional modes, offset included."""
        return self.estimates.eta.copy()

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        re_form: str | float | None = None,
        new_levels: str | None = None,
        type: str = "link",
        *,
        allow_new_levels: bool | None = None,
        interval: str | None = None,
        level: float = 0.95,
        **unknown,
    ) -> np.ndarray | pd.DataFrame:
        """Predictions on the link (default, as lme4) or response scale.

        Parameters
        ----------
        newdata, re_form, new_levels, allow_new_levels
            As :meth:`MixedFit.predict`.
        type
            ``"link"`` (eta) or ``"response"`` (the mean: a probability or a rate).
        interval, level
            ``"confidence"``: a DataFrame of ``estimate``, ``std_error``, ``lower``,
            ``upper`` (delta method on the link scale, mapped through the inverse link
            for ``type="response"``).
        """
        check_unknown(unknown, "predict", [a for a in PREDICT_ARGS if a not in ("nsim", "random_seed")])
        check_predict_type(type)
        if interval is not None:
            return predict_interval(self, newdata, re_form, new_levels, allow_new_levels, interval, level, type=type)
        policy = new_levels_policy(allow_new_levels, new_levels)
        eta = linear_predictor(self.design, self.estimates.beta, self.estimates.b, newdata, re_form, policy)
        return eta if type == "link" else self.response.linkinv(eta)

    @property
    def residuals(self) -> np.ndarray:
        """Deviance residuals, lme4's default ``residuals(m)`` for a GLMM; see :meth:`resid` for other types."""
        return self.resid("deviance")

    def resid(self, type: str = "deviance") -> np.ndarray:
        """Residuals of one type: ``"deviance"``, ``"pearson"``, ``"response"`` or ``"working"`` (lme4's)."""
        if type not in RESIDUAL_TYPES:
            raise ArgumentError(f"type must be one of {', '.join(RESIDUAL_TYPES)}, not {type!r}")
        return self._pad(self.response.residuals(self.estimates.eta, type))

    # --- tables ---------------------------------------------------------------------------
    def coef_table(self) -> pd.DataFrame:
        """Fixed effects with Wald z tests (lme4's ``coef(summary(m))``)."""
        fe = self.fixef
        se = np.sqrt(np.diag(self.estimates.vcov))
        z = fe.to_numpy() / se
        return pd.DataFrame(
            {"Estimate": fe, "Std. Error": se, "z value": z, "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))}, index=fe.index
        )

    def summary(self):
        """lme4-style summary; ``print(fit.summary())``."""

        return GlmerSummary.from_fit(self)

    def overdispersion(self) -> pd.Series:
        """Pearson chi-square check for overdispersion (Poisson fits).

        Returns ``pearson_chisq`` (sum of squared Pearson residuals),
        ``df_residual``, ``ratio`` (their quotient, about 1 without
        overdispersion) and ``p_value`` (upper chi-square tail).

        Examples
        --------
        >>> import hierbayes as hb, warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     fit = hb.glmer("TICKS ~ YEAR + cHEIGHT + (1|LOCATION/BROOD)", hb.datasets.load("grouseticks"),
        ...                    family="poisson")
        >>> round(float(fit.overdispersion()["ratio"]), 3)
        1.741
        """
        chi2 = float(np.nansum(self.resid("pearson") ** 2))
        rdf = self.df_resid
        return pd.Series(
            {"pearson_chisq": chi2, "df_residual": rdf, "ratio": chi2 / rdf, "p_value": stats.chi2.sf(chi2, rdf)},
            name="overdispersion",
        )

    def confint(self, method: str = "profile", level: float = 0.95, parm=None, **boot_options) -> pd.DataFrame:
        """Confidence intervals, rows named as lme4's (``.sig01``, ..., then fixed effects).

        Parameters
        ----------
        method
            ``"profile"`` (lme4's default: likelihood-profile intervals),
            ``"wald"`` (fixed effects only; NaN for variance parameters), or
            ``"boot"`` (parametric bootstrap percentile intervals).
        level
            Confidence level.
        parm
            Parameters (names like ``".sig01"``, ``"period2"``, 1-based positions,
            ``"theta_"`` or ``"beta_"``); all by default.
        **boot_options
            For ``method="boot"``: ``nsim``, ``seed``, ``progressbar`` (or ``progress``).
        """

        methods = ("profile", "wald", "boot")
        key = method.lower() if isinstance(method, str) else method
        if key not in methods:
            raise ArgumentError(f"confint method must be one of {', '.join(map(repr, methods))}, not {method!r}")
        check_level(level)
        if key == "profile" and self.estimates.family_par_free:
            raise ArgumentError(
                f"profile intervals are not available for a {self.family.name} fit with an estimated "
                f"{self.family.ml_parameter}; use confint(method='wald') or confint(method='boot')"
            )
        names = [*self.sdcor.index, *self.fixef.index]
        chosen = select(names, parm, len(self.sdcor))
        check_unknown({k: v for k, v in boot_options.items() if k not in ("nsim", "seed", "progressbar", "progress")},
                      "confint", ["method", "level", "parm", "nsim", "seed", "progressbar"])  # fmt: skip
        if key != "boot":  # no progress bar to show for these; accepted as for LmerFit.confint
            boot_options = {k: v for k, v in boot_options.items() if k not in ("progressbar", "progress")}
        allowed = ("nsim", "seed", "progressbar", "progress") if key == "boot" else ()
        bad = [k for k in boot_options if k not in allowed]
        if bad:
            raise ArgumentError(
                f"confint(method={method!r}) got unknown keyword(s) {', '.join(map(repr, bad))}"
                + (f"; valid: {', '.join(allowed)}" if allowed else " (nsim, seed and progress apply to method='boot')")
            )
        if key == "wald":
            return glmm_intervals.wald_confint(self, level).loc[chosen]
        if key == "profile":
            return glmm_intervals.profile_confint(self, level, parm=chosen).loc[chosen]

        return boot_confint(self, level=level, **boot_options).loc[chosen]

    def simulate(self, nsim: int = 1, seed: int | None = None, use_re: bool = False, re_form=...) -> np.ndarray:
        """New responses from the fitted model, shape (n, nsim) like lme4's ``simulate`` and ``LmerFit.simulate``.

        New random effects are drawn unless ``use_re`` (then the conditional
        modes are used); ``re_form`` takes lme4's spelling (None: condition on
        them, ``"NA"``/``"~0"``: new ones). Responses come back in the design's
        form: successes for ``cbind(s, f)``, proportions for proportions with
        weights, 0/1 for bernoulli data, counts for Poisson.
        """

        return simulate_response(self, check_nsim(nsim), np.random.default_rng(seed),
                                 use_u=use_re_of(use_re, re_form)).T  # fmt: skip

    # --- warnings -------------------------------------------------------------------------
    def _warn(self) -> None:
        if self.is_singular:
            singular_warning(self)
        if self.convergence is not None:
            self.convergence.warn()
        if self.family.check_overdispersion:
            od = self.overdispersion()
            if od["ratio"] > OVERDISPERSION_RATIO and od["p_value"] < OVERDISPERSION_P:
                warn(
                    f"the Poisson fit is overdispersed: Pearson chi-square / df = {od['ratio']:.2f} "
                    f"(chi-square = {od['pearson_chisq']:.1f} on {od['df_residual']} df, p = {od['p_value']:.2g}); "
                    "standard errors are too small. Add an observation-level random effect (1 | obs) "
                    "or fit a negative binomial model (hb.glmer_nb).",
                    OverdispersionWarning,
                )
