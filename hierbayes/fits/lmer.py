"""``LmerFit``: a linear mixed model fitted by REML or ML, with lme4's extractors."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hierbayes.errors import ArgumentError, ModelError
from hierbayes.fits.base import require_rows
from hierbayes.fits.frequentist import FrequentistFit, singular_warning, use_re_of
from hierbayes.fits.lmer_summary import LmerSummary
from hierbayes.inference.anova_terms import anova_table
from hierbayes.inference.bootstrap import bootstrap
from hierbayes.inference.coef_table import coef_table, ddf_method
from hierbayes.inference.intervals import confint
from hierbayes.inference.profile import profile
from hierbayes.inference.r2 import icc_interval, icc_values, r2_nakagawa
from hierbayes.inference.ranova import ranova
from hierbayes.inference.simulate import simulate
from hierbayes.linalg import ThetaLayout
from hierbayes.optim import OptSummary
from hierbayes.reml import LmmEstimates, LmmObjective
from hierbayes.reml.fit import SINGULAR_TOL, fit_lmm
from hierbayes.reml.objective import prior_weights, profiled_criterion
from hierbayes.reml.structured import StructuredObjective, fit_structured

if TYPE_CHECKING:
    from hierbayes._types import Model  # a Protocol: hierbayes.model sits above the fits


class LmerFit(FrequentistFit):
    """A linear mixed model fitted by REML or maximum likelihood.

    Made by :func:`hierbayes.lmer` or ``Model(...).fit("reml" | "ml")``.
    Conventions follow lme4: a REML fit reports the REML criterion, and its
    ``loglik``, ``aic`` and ``bic`` are REML ones (as ``logLik`` and ``AIC``
    on an lme4 REML fit are); ``deviance`` is -2 times the ML log-likelihood
    at the estimates.

    Attributes
    ----------
    estimates
        The engine's :class:`~hierbayes.reml.LmmEstimates`.
    boot
        The last bootstrap replicates (a ``BootResult``), or None: set by
        :meth:`bootstrap`, ``confint(method="boot")`` and ``icc(ci="boot")``,
        and nothing else. ``intervals="auto"`` in the tables and
        ``hb.compare`` uses them when present; ``fit.boot = None`` forgets them.
    cache
        Results computed once and reused (lmerTest's derivatives of the
        variance parameters, the Kenward-Roger adjustment, the tables'
        default profile intervals, emmeans' bases), by name.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> fit.fixef.round(3).to_dict()
    {'(Intercept)': 251.405, 'Days': 10.467}
    >>> round(fit.sigma, 3)
    25.592
    """

    def __init__(self, model: Model, estimates: LmmEstimates, warn: bool = True):
        super().__init__(model)
        #: The last bootstrap replicates (:meth:`bootstrap`, ``confint(method="boot")``, ``icc(ci="boot")``):
        #: tables and ``hb.compare`` take their intervals from them when asked for ``intervals="auto"``.
        self.boot = None
        self._ml_refit: LmerFit | None = None
        self.estimates = estimates
        self.method = "reml" if estimates.reml else "ml"
        self.layout = ThetaLayout(self.design.blocks)
        self.convergence = estimates.convergence
        if warn:
            self._warn()

    # --- lme4 extractors ----------------------------------------------------------------
    @property
    def reml(self) -> bool:
        return self.estimates.reml

    @property
    def sigma(self) -> float:
        return self.estimates.sigma

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, theta, sigma and a residual structure's (lme4's/nlme's logLik df)."""
        extra = self.structure.npar if self.structure is not None else 0
        return self.design.p + self.layout.size + 1 + extra

    @property
    def structure(self):
        """The residual structure (correlation and/or variance function) bound to the rows, or None."""
        return getattr(self.estimates, "structure", None)

    @property
    def residual_params(self) -> dict[str, float]:
        """The residual structure's parameters with nlme's names, on the natural scale.

        As ``coef(fit$modelStruct, unconstrained = FALSE)`` prints them:
        ``Phi`` (AR(1), continuous AR(1); ``Phi1`` for AR(1) on positions with
        gaps), ``Rho`` (compound symmetry), one SD ratio per non-reference
        stratum (varIdent), ``power`` (varPower), ``expon`` (varExp),
        ``A.``/``B.`` prefixes for varComb. Empty without a structure.

        Examples
        --------
        >>> import hierbayes as hb
        >>> ov = hb.datasets.load("ovary")
        >>> fit = hb.lmer("follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)", ov,
        ...               correlation=hb.corAR1("~ 1 | Mare"))
        >>> {k: round(v, 4) for k, v in fit.residual_params.items()}
        {'Phi': 0.6074}
        """
        return dict(getattr(self.estimates, "residual_params", None) or {})

    def _without_structure(self, what: str) -> None:
        if self.structure is not None:
            raise ModelError(
                f"{what} is not available for a fit with a residual structure (correlation=/variance=) yet: it "
                "would ignore the structure; use confint(method='wald') and hb.anova for likelihood-ratio tests"
            )

    def _ldw(self) -> float:
        if self.structure is not None:
            return -self.estimates.logdet_R
        return prior_weights(self.design).ldw

    @property
    def nobs(self) -> int:
        """Observations used: rows kept after dropping incomplete ones, less rows of prior weight zero (as R's lm)."""
        return prior_weights(self.design).n

    @property
    def reml_criterion(self) -> float:
        """The REML criterion at the estimates (lme4's ``REMLcrit``)."""
        e, w = self.estimates, prior_weights(self.design)
        return profiled_criterion(e.logdet_L, e.logdet_RX, e.pwrss, w.n, self.design.p, True, self._ldw())

    @property
    def deviance(self) -> float:
        """-2 times the ML log-likelihood at the estimates (lme4's ``deviance(m, REML = FALSE)``)."""
        e, w = self.estimates, prior_weights(self.design)
        return profiled_criterion(e.logdet_L, e.logdet_RX, e.pwrss, w.n, self.design.p, False, self._ldw())

    @property
    def weights(self) -> np.ndarray:
        """Prior weights, one per row (ones without ``weights=``; lme4's ``weights(m)``)."""
        require_rows(self.design, "weights")
        w = self.design.weights
        return self._pad(np.ones(self.design.n) if w is None else np.asarray(w, float).copy())

    @property
    def fitted(self) -> np.ndarray:
        """Fitted values conditional on the random effects (NaN at dropped rows with ``na_action="exclude"``)."""
        return self._pad(self.predict())

    @property
    def residuals(self) -> np.ndarray:
        """Response residuals ``y - fitted`` (NaN at dropped rows with ``na_action="exclude"``, R's naresid)."""
        return self._pad(self.design.y - self.predict())

    def resid(self, type: str = "response", scaled: bool = False) -> np.ndarray:
        """Residuals of one type (lme4's ``residuals(m, type, scaled)``).

        ``"response"``: ``y - fitted``; ``"pearson"``: times ``sqrt(w)`` (the
        prior weights); ``"working"``: as response. ``scaled=True`` divides by sigma.
        With a residual structure (nlme's types): ``"pearson"`` divides by the
        variance function's SD multiplier, and ``"normalized"`` (nlme's; always
        scaled) whitens the residuals of each correlation group, so that they
        are uncorrelated with variance 1 under the model.
        """
        types = ("response", "pearson", "working", "deviance") + (("normalized",) if self.structure else ())
        if type not in types:
            raise ArgumentError(f"type must be one of {', '.join(types)}, not {type!r}")
        require_rows(self.design, "resid()")
        r = self.design.y - self.predict()
        if self.structure is not None and type in ("pearson", "deviance", "normalized"):
            st, o = self.structure, self.structure.order
            obj, fitted = self.devfun_structured, self.estimates.fitted_sorted
            M = (r[o] * np.exp(obj.log_pw))[:, None]
            if type == "normalized":
                M = st.normalize(M, self.estimates.phi, fitted)
            else:
                M = M * np.exp(-st.log_sd(self.estimates.phi, fitted))[:, None]
            out = np.empty_like(r)
            out[o] = M[:, 0]
            return self._pad(out / self.sigma if (scaled or type == "normalized") else out)
        if type in ("pearson", "deviance") and self.design.weights is not None:
            r = r * np.sqrt(np.asarray(self.design.weights, float))
        if scaled:
            r = r / self.sigma
        return self._pad(r)

    @property
    def objective(self) -> float:
        """The optimised criterion: REML criterion or ML deviance."""
        return self.estimates.objective

    @property
    def loglik(self) -> float:
        """Log-likelihood (the REML one for a REML fit, as lme4's ``logLik``)."""
        return -0.5 * (self.reml_criterion if self.reml else self.deviance)

    @cached_property
    def devfun(self) -> LmmObjective:
        """The criterion as a function of theta (lme4's ``devFunOnly = TRUE``).

        With a residual structure: the criterion over theta with the
        structure's parameters held at their estimates (the whitened data's
        criterion); :attr:`devfun_structured` is the one over both.
        """
        if self.structure is not None:
            return self.devfun_structured.at(np.concatenate([self.estimates.theta, self.estimates.phi]))
        return LmmObjective(self.design, self.reml)

    @cached_property
    def devfun_structured(self) -> StructuredObjective:
        """With a residual structure: the criterion as a function of ``[theta, structure parameters]``."""
        if self.structure is None:
            raise ModelError("this fit has no residual structure; its criterion is fit.devfun")
        obj = StructuredObjective(self.design, self.structure, self.reml)
        obj.fitted = self.estimates.fitted_sorted
        return obj

    @property
    def optinfo(self) -> OptSummary:
        """The optimizer's record (lme4's ``optinfo``, MixedModels.jl's ``OptSummary``).

        Settings, start, final theta, objective, evaluations, time, return
        code and lme4's convergence messages; ``print(fit.optinfo)`` shows them.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> print(fit.optinfo)  # doctest: +ELLIPSIS
        Optimizer: BOBYQA (NLopt) [nloptwrap: ftol_abs=1e-08, xtol_abs=1e-08, maxeval=100000]
        Start:     [1, 0, 1]
        Final:     [0.96673..., 0.01516..., 0.2309...]
        Objective: 1743.628272 after ... evaluations in ...
        Return:    NLOPT ... reached...converged
        Checks:    none failed
        """
        return self.estimates.opt

    def icc(self, ci: str | None = None, level: float = 0.95, **boot_options) -> pd.Series | pd.DataFrame:
        """Intraclass correlation of each grouping factor, optionally with a bootstrap interval.

        For a random-intercept factor this is ``var_g / (sum of all random-effect
        variances + sigma^2)``. For a factor with random slopes the variance of
        its random effects is averaged over the rows, ``mean_i z_i' Sigma_g z_i``
        (Johnson 2014; Nakagawa et al. 2017's adjusted ICC).

        Parameters
        ----------
        ci
            None for the point estimates (a Series), or ``"boot"`` for a
            DataFrame with the ICC and a parametric bootstrap percentile
            interval (the replicates are kept as ``fit.boot``).
        level
            Interval level.
        **boot_options
            ``nsim``, ``seed``, ``resample``, ``n_jobs``, ``progress`` (see :meth:`bootstrap`).

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("mathach ~ (1 | school)", hb.datasets.load("hsb"))
        >>> round(float(fit.icc()["school"]), 3)
        0.18
        """

        if ci is None:
            if boot_options:
                raise ArgumentError(f"{', '.join(boot_options)} only apply with ci='boot'")
            return icc_values(self.design, list(self.covariances.values()), self.sigma)
        if ci != "boot":
            raise ArgumentError(f"ci must be None or 'boot', not {ci!r}")
        self._without_structure("icc(ci='boot')")
        require_rows(self.design, "icc(ci='boot') (a bootstrap)")
        return icc_interval(self, level=level, **boot_options)

    def r2(self) -> pd.Series:
        """Nakagawa's marginal and conditional R2 (with var_fixed, var_random, var_residual).

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("mathach ~ cses + (1 | school)", hb.datasets.load("hsb"))
        >>> fit.r2()[["R2_marginal", "R2_conditional"]].round(3).tolist()
        [0.044, 0.225]
        """

        require_rows(self.design, "r2() (the variance of the fixed-effects predictions)")
        return r2_nakagawa(self)

    def simulate(self, nsim: int = 1, seed: int | None = None, use_re: bool = False, re_form: Any = ...) -> np.ndarray:
        """New responses from the fitted model, an (n x nsim) array (lme4's ``simulate``).

        ``use_re=False`` draws new random effects (lme4's ``re.form = NA``);
        ``use_re=True`` keeps the fitted conditional modes (``re.form = NULL``).
        ``re_form`` takes lme4's spelling: None (condition on the random
        effects), ``"NA"`` or ``"~0"`` (new ones); it wins over ``use_re`` when given.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.simulate(nsim=2, seed=1).shape
        (180, 2)
        """

        require_rows(self.design, "simulate()")
        return simulate(self, nsim=nsim, seed=seed, use_re=use_re_of(use_re, re_form))

    def bootstrap(
        self,
        nsim: int = 1000,
        seed: int | None = None,
        resample: str | list[str] | None = None,
        use_re: bool = False,
        n_jobs: int | None = None,
        progress: bool | None = None,
        use_u: bool | None = None,
        progressbar: bool | None = None,
    ):
        """Parametric bootstrap (lme4's ``bootMer``) or case bootstrap over groups (``resample=["Subject"]``).

        Replicates run on all cores with per-replicate seeds (results do not
        depend on ``n_jobs``). The result is kept as ``fit.boot``; its
        ``.confint()`` gives percentile intervals and ``.idata`` an ArviZ 1.x
        DataTree of the replicates. ``progressbar`` (older spelling ``progress``): a bar, by
        default in Jupyter and interactive sessions only.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.bootstrap(nsim=20, seed=1, n_jobs=1).t.columns.tolist()
        ['.sig01', '.sigma', '(Intercept)', 'Days']
        """

        if use_u is not None:  # lme4's bootMer spelling
            use_re = bool(use_u)
        require_rows(self.design, "bootstrap()")
        self.boot = bootstrap(self, nsim=nsim, seed=seed, resample=resample, use_re=use_re, n_jobs=n_jobs,
                              progress=progress, progressbar=progressbar)  # fmt: skip
        return self.boot

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Fixed-effects table with df and p-values (``summary(lmerTest::lmer(...))$coefficients``).

        Parameters
        ----------
        ddf
            None: ``"satterthwaite"``, or ``"containment"`` (nlme's) for a fit
            with a residual structure. ``"satterthwaite"`` (lmerTest's default;
            with a residual structure, over its parameters too: the variance
            parameters are ``(theta, phi, sigma)``), ``"containment"`` (nlme's
            between/within df), ``"kenward-roger"``
            (pbkrtest's adjusted SEs and df; REML fits), ``"residual"``
            (df = n - p) or ``"wald"`` (z tests).

        Returns
        -------
        pandas.DataFrame
            Estimate, Std. Error, df, t value, Pr(>|t|) (z value, Pr(>|z|) for ``"wald"``).

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ 1 + Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.coef_table().round(4).loc["(Intercept)", ["Std. Error", "df"]].tolist()
        [9.7467, 22.8102]
        """

        return coef_table(self, self._ddf(ddf))

    def _ddf(self, ddf: str | None) -> str:
        if ddf is None:
            return "containment" if self.structure is not None else "satterthwaite"
        if self.structure is not None and ddf_method(ddf) == "kenward-roger":
            raise ModelError(
                "Kenward-Roger's adjustment is not available with a residual structure; use ddf='containment' "
                "(nlme's) or 'satterthwaite'"
            )
        return ddf

    def _refit_settings(self, same_design: bool) -> tuple[str, dict]:
        options: dict = {}
        if self.structure is None and self.estimates.control is not None:
            options["control"] = self.estimates.control
        if same_design:  # lme4's refit starts at the estimates
            options["start"] = self.estimates.theta
        return ("reml" if self.reml else "ml"), options

    def refit_ml(self) -> LmerFit:
        """The same model fitted by maximum likelihood (lme4's ``refitML``); an ML fit returns itself.

        The refit starts from this fit's theta and is kept, so repeated
        likelihood-ratio tests refit once.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> round(float(fit.refit_ml().loglik), 4)
        -897.0393
        """
        if not self.reml:
            return self
        if self._ml_refit is None and self.structure is not None:
            est = fit_structured(self.design, self.structure, reml=False, start=self.estimates.theta)
            self._ml_refit = LmerFit(self.model, est, warn=False)
        if self._ml_refit is None:
            est = fit_lmm(self.design, reml=False, start=self.estimates.theta, control=self.estimates.control)
            self._ml_refit = LmerFit(self.model, est, warn=False)
        return self._ml_refit

    def anova(self, type: int | str = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
        """F tests of the fixed-effects terms, like ``anova()`` on an lmerTest fit.

        Parameters
        ----------
        type
            3 (lmerTest's default; marginal hypotheses for treatment coding) or 1 (sequential).
        ddf
            ``"satterthwaite"`` or ``"kenward-roger"`` (REML fits).

        Returns
        -------
        pandas.DataFrame
            One row per term (``sector``, ``sector:cses``, ...): Sum Sq, Mean Sq,
            NumDF, DenDF, F value, Pr(>F). For likelihood-ratio tests between fits
            use :func:`hierbayes.anova`.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.anova().round(2).loc["Days", ["NumDF", "DenDF", "F value"]].tolist()
        [1.0, 17.0, 45.85]
        """

        return anova_table(self, type=type, ddf=ddf)

    def ranova(self) -> pd.DataFrame:
        """Likelihood-ratio tests for dropping each random-effects term (lmerTest's ``ranova``).

        Returns
        -------
        pandas.DataFrame
            Rows ``<none>`` (this model) and one per reduction, named as
            lmerTest names them (``"(1 | Subject)"``, ``"Days in (Days | Subject)"``):
            npar, logLik, AIC, LRT, Df, Pr(>Chisq). The reduced models'
            formulas are in ``attrs["formulas"]``. A residual structure stays in
            every reduced model with the same groups (nlme's ``gls`` when no
            random effects are left), as nlme's ``anova(full, reduced)`` compares them.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.ranova().index.tolist()
        ['<none>', 'Days in (Days | Subject)']
        """

        return ranova(self)

    def confint(
        self,
        method: str = "profile",
        level: float = 0.95,
        parm: str | int | list | None = None,
        **boot_options,
    ) -> pd.DataFrame:
        """Confidence intervals of the SDs, correlations, sigma and fixed effects (lme4's ``confint``).

        Parameters
        ----------
        method
            ``"profile"`` (lme4's default: profile likelihood, through the ML
            refit for REML fits), ``"wald"`` (fixed effects only; NaN rows for
            the variance parameters, as lme4) or ``"boot"`` (bootstrap
            percentile intervals).
        level
            Confidence level.
        parm
            Parameters (names like ``".sig01"``, ``"Days"``, 1-based positions,
            ``"theta_"`` or ``"beta_"``); all by default.
        **boot_options
            For ``method="boot"``: ``nsim`` (500 by default, as lme4), ``seed``, ``resample`` (grouping
            factors for a case bootstrap, e.g. ``["Subject"]``), ``use_re``,
            ``n_jobs``, ``progress`` (see :func:`hierbayes.inference.bootstrap.bootstrap`).
            The replicates are kept as ``fit.boot``.

        Returns
        -------
        pandas.DataFrame
            Rows ``.sig01``, ..., ``.sigma``, a residual structure's parameters (nlme's names, natural
            scale: ``Phi``, ``Rho``, varIdent's ratios, ``power``; profiled like the SDs, with the other
            parameters re-optimised), fixed effects; columns ``"2.5 %"``, ``"97.5 %"``.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.confint(parm=".sigma").round(3).values.tolist()
        [[22.898, 28.858]]
        """

        return confint(self, method=method, level=level, parm=parm, **boot_options)

    def profile(self, which: str | list[str] | None = None, progressbar: bool | None = None):
        """Profile the likelihood (lme4's ``profile``); ``.table`` holds the zeta table.

        ``progressbar``: a bar per parameter, by default in Jupyter and interactive sessions only.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Yield ~ 1 + (1 | Batch)", hb.datasets.load("dyestuff"))
        >>> fit.profile().table.columns.tolist()
        ['.zeta', '.sig01', '.sigma', '(Intercept)', '.par']
        """

        return profile(self, which=which, progressbar=progressbar)

    def summary(self, ddf: str | None = None):
        """lmerTest-style summary (``print(fit.summary())``); ``ddf`` as in :meth:`coef_table`."""

        return LmerSummary.from_fit(self, ddf=self._ddf(ddf))

    # --- warnings -------------------------------------------------------------------------
    def _warn(self) -> None:
        if self.is_singular:
            singular_warning(self, f" ({_singular_detail(self)})")
        if self.convergence is not None:
            self.convergence.warn()


def _singular_detail(fit: LmerFit) -> str:
    names = [n for n, lo, t in zip(fit.layout.names, fit.layout.lower, fit.estimates.theta, strict=True) if lo == 0]
    vals = [t for lo, t in zip(fit.layout.lower, fit.estimates.theta, strict=True) if lo == 0]
    return ", ".join(f"theta[{n}] = {v:.2g}" for n, v in zip(names, vals, strict=True) if v < SINGULAR_TOL)
