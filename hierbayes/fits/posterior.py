"""``PosteriorFit``: a Bayesian fit behind the same extractors as the REML fit.

Point values are posterior means; interval columns are equal-tailed
credible intervals (``prob=0.95`` unless told). The draws themselves are in
``fit.idata``, an ``xarray.DataTree`` with ArviZ 1.x's groups (variable names
and dims are listed in :mod:`hierbayes.bayesian.names`), and behind the
``*_draws`` accessors. ``fit.idata`` is what PyMC 6's ``pm.sample`` and bambi
return under that name, and what every ArviZ 1.x function takes
(``az.summary``, ``az.loo``, ``az.compare``, ``az.plot_forest``,
``az.plot_ppc_dist``, ``az.plot_trace``, ``az.plot_rank``, ...);
``fit.datatree`` is the same object under the name of its type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hierbayes.bayesian import names
from hierbayes.bayesian.categories import threshold_names
from hierbayes.bayesian.diagnostics import diagnose
from hierbayes.bayesian.distributional import AUX_LINKS, aux_draws, aux_re_form, aux_rows, params_of
from hierbayes.bayesian.predict import draws_of, encode_rows, eta_chunks, mean_of
from hierbayes.bayesian.sampling import add_groups, posterior_draws
from hierbayes.design.newdata import new_levels_policy
from hierbayes.errors import ModelError
from hierbayes.families import LINKS
from hierbayes.fits.base import MixedFit, predict_interval

if TYPE_CHECKING:
    from collections.abc import Callable

    import xarray as xr

    from hierbayes._types import Model  # a Protocol: hierbayes.model sits above the fits
    from hierbayes.bayesian.priors import PriorSet
    from hierbayes.bayesian.sampling import SamplingInfo

KINDS = ("mean", "draws", "predictive")


class PosteriorFit(MixedFit):
    """A mixed model fitted by NUTS (PyMC), made by ``Model(...).fit("bayes")`` or :func:`hierbayes.bayesian`.

    Attributes
    ----------
    idata
        An ``xarray.DataTree`` as ArviZ 1.x expects it (what ``pymc.sample``
        returns): groups ``posterior``, ``sample_stats``, ``observed_data``,
        ``constant_data`` (binomial trials) and, unless switched off for size,
        ``log_likelihood`` and ``posterior_predictive`` (variable ``y``).
        Also available as ``fit.datatree``.
    info
        Sampler (the NUTS implementation that ran), settings and timings
        (:class:`hierbayes.bayesian.sampling.SamplingInfo`).
    priors
        The priors used (:class:`hierbayes.bayesian.priors.PriorSet`).
    diagnostics
        Divergences, max R-hat, min bulk/tail ESS (:class:`hierbayes.bayesian.diagnostics.Diagnostics`).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.bayes("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"),
    ...                draws=300, tune=300, chains=2, random_seed=1)  # doctest: +SKIP
    >>> fit.varcorr.columns.tolist()  # doctest: +SKIP
    ['grp', 'var1', 'var2', 'vcov', 'sdcor', 'sdcor_lower', 'sdcor_upper']
    >>> import arviz as az
    >>> az.loo(fit.idata).elpd  # doctest: +SKIP
    -885.1...
    """

    method = "bayes"

    def __init__(
        self,
        model: Model,
        idata: xr.DataTree,
        info: SamplingInfo,
        priors: PriorSet,
        warn: bool = True,
        pending: Callable[[], dict] | None = None,
    ):
        super().__init__(model)
        self._idata = idata
        self._pending = pending
        self.info = info
        self.priors = priors
        self._fitted: np.ndarray | None = None
        self._posterior: tuple[Any, xr.Dataset] | None = None
        self.diagnostics = diagnose(idata, self._checked_vars(), self._label)
        if warn:
            self.diagnostics.warn()

    @property
    def idata(self) -> xr.DataTree:
        """The draws as an ``xarray.DataTree`` (ArviZ 1.x), with every group.

        The pointwise ``log_likelihood`` and ``posterior_predictive`` groups are computed (in one vectorized
        pass over the draws, with the fit's seed: the same values every time) when ``idata`` is first accessed,
        not when the fit is made.
        """
        if self._pending is not None:
            self._idata = add_groups(self._idata, self._pending())
            self._pending = None
        return self._idata

    @idata.setter
    def idata(self, value: xr.DataTree) -> None:
        self._idata, self._pending, self._posterior = value, None, None

    @property
    def datatree(self) -> xr.DataTree:
        """The posterior as an ``xarray.DataTree`` (ArviZ 1.x); the same object as ``fit.idata``."""
        return self.idata

    # --- draws ----------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """The ``posterior`` group of ``fit.idata`` as an ``xarray.Dataset``."""
        node = self._idata["posterior"]
        if self._posterior is None or self._posterior[0] is not node:
            self._posterior = (node, node.to_dataset())
        return self._posterior[1]

    def fixef_draws(self) -> xr.DataArray:
        """Draws of the fixed effects, dims (chain, draw, fixef)."""
        return self.posterior["beta"]

    def ranef_draws(self, group: str) -> xr.DataArray:
        """Draws of one factor's random effects, dims (chain, draw, level, term), coords = names."""
        self._group(group)
        da = self.posterior[names.ranef_var(group)]
        return da.rename({names.level_dim(group): "level", names.term_dim(group): "term"})

    def sd_draws(self, group: str) -> xr.DataArray:
        """Draws of a factor's random-effect SDs, dims (chain, draw, term)."""
        self._group(group)
        return self.posterior[names.sd_var(group)].rename({names.term_dim(group): "term"})

    def corr_draws(self, group: str) -> xr.DataArray:
        """Draws of a factor's correlation matrix, dims (chain, draw, term, term2) (identity if uncorrelated)."""
        import xarray as xr  # xarray only for draws: import hierbayes stays light

        block = self._group(group)
        if names.has_corr(block):
            da = self.posterior[names.corr_var(group)]
            return da.rename({names.term_dim(group): "term", names.term2_dim(group): "term2"})
        sd = self.sd_draws(group)
        eye = xr.DataArray(np.eye(block.k), dims=("term", "term2"), coords={"term": sd.term.values,
                                                                              "term2": sd.term.values})  # fmt: skip
        return (sd * 0 + 1) * eye

    def cov_draws(self, group: str) -> xr.DataArray:
        """Draws of a factor's covariance matrix, dims (chain, draw, term, term2)."""
        sd = self.sd_draws(group)
        return self.corr_draws(group) * sd * sd.rename({"term": "term2"})

    def sigma_draws(self) -> xr.DataArray | None:
        """Draws of the residual SD (None for families without one)."""
        return self.posterior["sigma"] if "sigma" in self.posterior else None

    def param_draws(self, name: str) -> xr.DataArray:
        """Draws of a family parameter (``sigma``, ``nu``, ``alpha``, ``shape``, ``phi``, ``psi``).

        A parameter with its own formula has a value per row: ``predict(kind=name)``.
        """
        if name in self._aux:
            raise KeyError(f"'{name}' has its own formula ({self._aux[name].text}): it has one value per row; use "
                           f"fit.predict(kind='{name}') and its coefficients fit.aux_fixef['{name}']")  # fmt: skip
        return self.posterior[name]

    # --- distributional models ------------------------------------------------------------
    @property
    def _aux(self) -> dict:
        return {a.par: a for a in getattr(self.model, "aux", ())}

    @property
    def aux_formulas(self) -> dict[str, str]:
        """The auxiliary parameters with their own formula (distributional model): name -> formula."""
        return {p: a.text for p, a in self._aux.items()}

    def aux_fixef_draws(self, par: str) -> xr.DataArray:
        """Draws of an auxiliary parameter's fixed effects (link scale), dims (chain, draw, fixef)."""
        a = self._aux_of(par)
        return self.posterior[names.dpar(a.par, names.BETA)].rename({names.dpar(a.par, names.FIXEF_DIM): "fixef"})

    @property
    def aux_fixef(self) -> dict[str, pd.Series]:
        """Posterior means of each modelled auxiliary parameter's fixed effects, on its link scale (log, logit).

        Keys are the parameters (``"sigma"``); series are named ``sigma_fixef``. The location's are ``fixef``.
        """
        return {p: pd.Series(self.aux_fixef_draws(p).mean(("chain", "draw")).values, index=list(a.design.x_names),
                             name=f"{p}_fixef") for p, a in self._aux.items()}  # fmt: skip

    @property
    def aux_ranef(self) -> dict[str, dict[str, pd.DataFrame]]:
        """Posterior means of each modelled auxiliary parameter's random effects: parameter -> factor -> table."""
        out = {}
        for p, a in self._aux.items():
            out[p] = {}
            for b in a.design.blocks:
                m = self.posterior[names.dpar(p, names.ranef_var(b.group))].mean(("chain", "draw")).values
                out[p][b.group] = pd.DataFrame(m, index=pd.Index(b.levels, name=b.group), columns=list(b.terms))
        return out

    def _aux_of(self, par: str):
        if par not in self._aux:
            raise KeyError(f"'{par}' has no formula of its own in this model"
                           + (f"; these do: {', '.join(self._aux)}" if self._aux else ""))  # fmt: skip
        return self._aux[par]

    @staticmethod
    def interval(draws: xr.DataArray, prob: float = 0.95) -> tuple[xr.DataArray, xr.DataArray]:
        """Equal-tailed credible interval over chains and draws: (lower, upper)."""
        if not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1), not {prob}")
        q = draws.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=("chain", "draw"))
        return q.isel(quantile=0, drop=True), q.isel(quantile=1, drop=True)

    def fixef_interval(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior mean, SD and equal-tailed interval of each fixed effect."""
        return _table(self.fixef_draws(), prob).set_axis(list(self.design.x_names))

    def ranef_interval(self, group: str, prob: float = 0.95) -> pd.DataFrame:
        """Long table of one factor's random effects: index (level, term); mean, sd, lower, upper."""
        da = self.ranef_draws(group)
        lo, hi = self.interval(da, prob)
        mean, sd = da.mean(("chain", "draw")), da.std(("chain", "draw"))
        idx = pd.MultiIndex.from_product([da.level.values, da.term.values], names=["level", "term"])
        return pd.DataFrame(
            {"mean": mean.values.ravel(), "sd": sd.values.ravel(), "lower": lo.values.ravel(),
             "upper": hi.values.ravel()}, index=idx,
        )  # fmt: skip

    # --- the shared extractors ----------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.fixef_draws().mean(("chain", "draw")).values, index=list(self.design.x_names),
                         name="fixef")  # fmt: skip

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        out = {}
        for b in self.design.blocks:
            m = self.ranef_draws(b.group).mean(("chain", "draw")).values
            out[b.group] = pd.DataFrame(m, index=pd.Index(b.levels, name=b.group), columns=list(b.terms))
        return out

    @property
    def sigma(self) -> float | None:
        s = self.sigma_draws()
        return None if s is None else float(s.mean())

    @property
    def varcorr(self) -> pd.DataFrame:
        return self.varcorr_table(0.95)

    def varcorr_table(self, prob: float = 0.95) -> pd.DataFrame:
        """``varcorr`` with another interval probability.

        Rows and the columns grp/var1/var2/vcov/sdcor are as in
        ``LmerFit.varcorr`` (R's ``as.data.frame(VarCorr(m))``), with posterior
        means (``sdcor`` is the mean SD or correlation, not the root of the
        mean variance), plus ``sdcor_lower``/``sdcor_upper``.
        """
        rows = []
        for b in self.design.blocks:
            sd = self.sd_draws(b.group)
            corr = self.corr_draws(b.group)
            for cols in b.bars:
                grp = b.bar_name(cols[0])
                for c in cols:
                    s = sd.isel(term=c)
                    rows.append((grp, b.terms[c], None, s**2, s))
                for j, cj in enumerate(cols):
                    for ci in cols[j + 1 :]:
                        r = corr.isel(term=ci, term2=cj)
                        rows.append((grp, b.terms[cj], b.terms[ci], r * sd.isel(term=ci) * sd.isel(term=cj), r))
        s = self.sigma_draws()
        if s is not None:
            rows.append(("Residual", None, None, s**2, s))
        out = []
        for grp, v1, v2, vc, sc in rows:
            lo, hi = self.interval(sc, prob)
            out.append((grp, v1, v2, float(vc.mean()), float(sc.mean()), float(lo), float(hi)))
        return pd.DataFrame(out, columns=["grp", "var1", "var2", "vcov", "sdcor", "sdcor_lower", "sdcor_upper"])

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        re_form: str | float | None = None,
        new_levels: str | None = None,
        kind: str = "mean",
        scale: str = "response",
        random_seed: int | None = None,
        *,
        allow_new_levels: bool | None = None,
        interval: str | None = None,
        level: float = 0.95,
    ) -> np.ndarray | xr.DataArray | pd.DataFrame:
        """Predictions: posterior means, or draws of the mean or of new responses, or intervals.

        Parameters
        ----------
        newdata, re_form
            As for :meth:`MixedFit.predict`.
        new_levels
            For levels not seen when fitting: ``"error"`` (lme4's default),
            ``"population"`` (effect zero), or ``"sample"`` (per draw, a new effect
            from the fitted distribution of that factor's effects).
        allow_new_levels
            lme4's spelling: True is ``new_levels="population"``.
        kind
            ``"mean"``: posterior mean of the expected response (an array);
            ``"draws"``: its draws; ``"predictive"``: posterior predictive draws
            of the response (both DataArrays with dims (chain, draw, obs)).
            Ordinal models (``cumulative``, ``sratio``) predict a probability
            per category on the response scale: ``"mean"`` is a DataFrame
            (rows x categories, the response's levels as columns), ``"draws"``
            a DataArray with dims (chain, draw, obs, category);
            ``"predictive"`` draws category codes (0 for the first level, as
            ``fit.idata``'s ``y``), and ``scale="link"`` is the location
            predictor ``eta`` (without the thresholds).
        scale
            ``"response"`` or ``"link"`` (the linear predictor; not for ``"predictive"``).
        random_seed
            Seed for ``new_levels="sample"`` and ``kind="predictive"``.
        interval, level
            ``"confidence"``: a DataFrame of ``estimate`` (posterior mean), ``lower``,
            ``upper`` (equal-tailed credible interval of the expected response);
            ``"prediction"``: the posterior predictive interval of a new observation
            (new levels draw their effects from the fitted distribution with
            ``allow_new_levels=True``).
        """
        fam = self.model.family
        if interval is not None:
            if fam.response_kind is not None:
                raise ModelError(
                    f"interval= is for a one-number prediction per row; a {fam.name} model predicts a probability "
                    "per category: take kind='draws' (dims chain, draw, obs, category) and its quantiles"
                )
            return predict_interval(self, newdata, re_form, new_levels, allow_new_levels, interval, level,
                                    random_seed=random_seed, type=scale)  # fmt: skip

        fam = self.model.family
        if kind not in KINDS and kind not in fam.aux:
            raise ValueError(f"kind must be one of {', '.join(KINDS + fam.aux)}, not {kind!r}")
        if kind in fam.aux:
            return self._predict_aux(kind, newdata, re_form, new_levels_policy(allow_new_levels, new_levels), scale,
                                     random_seed)  # fmt: skip
        if scale not in ("response", "link") or (scale == "link" and kind == "predictive"):
            raise ValueError("scale must be 'response' or 'link' ('link' not with kind='predictive')")
        default = newdata is None and re_form is None and kind == "mean" and scale == "response"
        if default and self._fitted is not None:
            return self._fitted.copy()
        rows = encode_rows(self.design, newdata, re_form, new_levels_policy(allow_new_levels, new_levels))
        draws = posterior_draws(self.design, self.model.family, self.posterior)
        rng = np.random.default_rng(random_seed)
        parts = aux_rows(list(self._aux.values()), self.posterior, newdata, re_form,
                         new_levels_policy(allow_new_levels, new_levels), rows.ok, self.design)  # fmt: skip

        def params(sl):
            return params_of(draws, parts, sl, rng)

        if fam.response_kind is not None and scale == "response" and kind != "predictive":
            return self._category_probs(rows, draws, params, kind, newdata, rng)

        if kind == "predictive":
            trials = fam.counts(self.design.y, self.design.trials, self.design.weights)[1] if newdata is None else None
            if fam.has_trials and trials is None:
                raise ValueError("posterior predictive draws of a binomial model need the fitting data's trials")
            out = draws_of(rows, draws, lambda eta, sl: fam.rvs(eta, params(sl), trials, rng), rng)
        elif scale == "link":
            out = (mean_of if kind == "mean" else draws_of)(rows, draws, lambda eta, sl: eta, rng)
        else:
            fn = mean_of if kind == "mean" else draws_of
            out = fn(rows, draws, lambda eta, sl: fam.response_mean(eta, params(sl)), rng)
        if kind == "mean":
            if default:
                self._fitted = out.copy()
            return out
        return self._as_obs_array(out, newdata)

    def _category_probs(self, rows, draws, params, kind: str, newdata, rng) -> pd.DataFrame | xr.DataArray:
        """Per-category probabilities: posterior means (rows x categories) or their draws."""
        import xarray as xr  # xarray only for draws: import hierbayes stays light

        fam, levels = self.model.family, list(self.design.response_levels)
        index = list(self.design.frame.row_index) if newdata is None else list(pd.DataFrame(newdata).index)
        columns = pd.Index(levels, name=self.design.response_name)
        if kind == "mean":
            total = np.zeros((rows.n, len(levels)))
            for sl, eta in eta_chunks(rows, draws, rng):
                total += fam.category_probs(eta, params(sl)).sum(axis=0)
            out = np.full((len(rows.ok), len(levels)), np.nan)
            out[rows.ok] = total / draws.size
            return pd.DataFrame(out, index=index, columns=columns)
        arr = np.full((draws.size, len(rows.ok), len(levels)), np.nan)
        for sl, eta in eta_chunks(rows, draws, rng):
            arr[sl][:, rows.ok] = fam.category_probs(eta, params(sl))
        post = self.posterior
        return xr.DataArray(
            arr.reshape(post.sizes["chain"], post.sizes["draw"], -1, len(levels)),
            dims=("chain", "draw", "obs", "category"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": index, "category": levels},
        )

    @property
    def thresholds(self) -> pd.Series | None:
        """Posterior means of an ordinal model's thresholds, named as ``ordinal::clmm`` names them (``1|2``, ...).

        The posterior variable is ``threshold`` (bambi's name; ``threshold[0]``, ... in :meth:`summary`).
        None for the other families.
        """
        if names.THRESHOLD not in self.model.family.aux:
            return None
        means = self.posterior[names.THRESHOLD].mean(("chain", "draw")).values
        return pd.Series(means, index=threshold_names(self.design), name="threshold")

    def _predict_aux(self, par: str, newdata, re_form, new_levels: str, scale: str, random_seed) -> np.ndarray:
        """Posterior mean of an auxiliary parameter per row (its formula's, or the constant's)."""
        if scale not in ("response", "link"):
            raise ValueError("scale must be 'response' or 'link'")
        rng = np.random.default_rng(random_seed)
        if par not in self._aux:  # one value for every row
            rows = encode_rows(self.design, newdata, re_form, new_levels)
            draws = self.posterior[par].values.ravel()
            link = (lambda v: v) if scale == "response" else LINKS[AUX_LINKS.get(par, "log")]
            out = np.full(len(rows.ok), np.nan)
            out[rows.ok] = float(np.mean(link(draws)))
            return out
        a = self._aux[par]
        rows = encode_rows(a.design, newdata, aux_re_form(self.design, re_form), new_levels)
        inv = (lambda e: e) if scale == "link" else a.link.inverse
        return mean_of(rows, aux_draws(a, self.posterior), lambda eta, sl: inv(eta), rng)

    def _as_obs_array(self, arr: np.ndarray, newdata) -> xr.DataArray:
        import xarray as xr  # xarray only for draws: import hierbayes stays light

        post = self.posterior
        index = list(self.design.frame.row_index) if newdata is None else list(pd.DataFrame(newdata).index)
        return xr.DataArray(
            arr.reshape(post.sizes["chain"], post.sizes["draw"], -1),
            dims=("chain", "draw", "obs"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": index},
        )

    @property
    def residuals(self) -> np.ndarray:
        """Response residuals; for binomial counts, observed proportion minus fitted probability."""
        fam = self.model.family
        if fam.response_kind is not None:
            raise ModelError(
                f"a {fam.name} response is a category, which has no residual y - fitted; compare the observed "
                "categories with fit.fitted (the probabilities per category) or the posterior predictive draws"
            )
        y = np.asarray(self.design.y, dtype=float)
        if self.design.trials is not None:
            y = y / self.design.trials
        return y - self.fitted

    # --- diagnostics and summaries ---------------------------------------------------------------
    @property
    def n_divergences(self) -> int:
        return self.diagnostics.n_divergences

    @property
    def max_rhat(self) -> float:
        return self.diagnostics.max_rhat

    @property
    def min_ess_bulk(self) -> float:
        return self.diagnostics.min_ess_bulk

    @property
    def min_ess_tail(self) -> float:
        return self.diagnostics.min_ess_tail

    @property
    def residual_params(self) -> dict[str, float]:
        """Posterior means of the residual structure's parameters, with nlme's names (empty without one).

        As :attr:`hierbayes.fits.LmerFit.residual_params`: ``Phi``/``Phi1``/``Rho``,
        one ratio per non-reference stratum (varIdent), ``power``, ``expon``.
        """
        st = getattr(self.model, "structure", None)
        if st is None:
            return {}
        post, out = self.posterior, {}
        for name in st.names:
            if name in post:
                out[name] = float(post[name].mean())
        if st.variance is not None and st.variance.kind == "ident":
            means = post["ratio"].mean(("chain", "draw"))
            out.update({n: float(means.sel(stratum=n)) for n in st.variance.names})
        return out

    def describe_priors(self) -> pd.DataFrame:
        """The priors used, one row per parameter (default or user's)."""
        return self.priors.frame()

    def parameters(self, ranef: bool = False) -> xr.Dataset:
        """The posterior with one variable per scalar parameter, named readably (``b[Days]``, ...)."""
        import xarray as xr  # xarray only for draws: import hierbayes stays light

        post, out = self.posterior, {}
        for x in self.design.x_names:
            out[names.fixef_label(x)] = post["beta"].sel(fixef=x, drop=True)
        for b in self.design.blocks:
            sd = self.sd_draws(b.group)
            for j, t in enumerate(b.terms):
                out[names.sd_label(b.group, t)] = sd.isel(term=j, drop=True)
            corr = self.corr_draws(b.group)
            for cols in b.bars:
                for j, cj in enumerate(cols):
                    for ci in cols[j + 1 :]:
                        out[names.corr_label(b.group, b.terms[cj], b.terms[ci])] = corr.isel(
                            term=ci, term2=cj, drop=True
                        )
        for p in self.model.family.aux:
            if p not in self._aux:
                out[p] = post[p]
        for p, a in self._aux.items():  # a distributional model's coefficients: sigma_b[x], sigma_sd[g:x], ...
            beta = post[names.dpar(p, names.BETA)]
            for x in a.design.x_names:
                out[f"{p}_{names.fixef_label(x)}"] = beta.sel({names.dpar(p, names.FIXEF_DIM): x}, drop=True)
            for b in a.design.blocks:
                sd = post[names.dpar(p, names.sd_var(b.group))]
                for j, t in enumerate(b.terms):
                    out[f"{p}_{names.sd_label(b.group, t)}"] = sd.isel({sd.dims[-1]: j}, drop=True)
                if names.has_corr(b):
                    corr = post[names.dpar(p, names.corr_var(b.group))]
                    for cols in b.bars:
                        for j, cj in enumerate(cols):
                            for ci in cols[j + 1 :]:
                                out[f"{p}_{names.corr_label(b.group, b.terms[cj], b.terms[ci])}"] = corr.isel(
                                    {corr.dims[-2]: ci, corr.dims[-1]: cj}, drop=True
                                )
                if ranef:
                    r = post[names.dpar(p, names.ranef_var(b.group))]
                    for li, lvl in enumerate(b.levels):
                        for j, t in enumerate(b.terms):
                            out[f"{p}_{names.ranef_label(b.group, lvl, t)}"] = r.isel(
                                {r.dims[-2]: li, r.dims[-1]: j}, drop=True
                            )
        if ranef:
            for b in self.design.blocks:
                r = self.ranef_draws(b.group)
                for li, lvl in enumerate(b.levels):
                    for j, t in enumerate(b.terms):
                        out[names.ranef_label(b.group, lvl, t)] = r.isel(level=li, term=j, drop=True)
        return xr.Dataset(out)

    def summary(self, prob: float = 0.95, ranef: bool = False, **kwargs: Any) -> pd.DataFrame:
        """ArviZ summary (mean, sd, equal-tailed interval, ESS, R-hat, MCSE) with readable names.

        Rows are ``b[...]``, ``sd[group:term]``, ``corr[group:term1,term2]``,
        ``sigma`` and other family parameters, and with ``ranef=True`` the
        random effects ``r[group:level,term]``. Columns are those of
        ``arviz_stats.summary`` (unrounded), with the interval named by its
        quantiles (``eti_2.5%``, ``eti_97.5%`` for ``prob=0.95``).
        ``kwargs`` go to ``arviz_stats.summary`` (e.g. ``kind="stats"``,
        ``ci_kind="hdi"``).
        """
        from arviz_stats import summary  # ArviZ only for posterior summaries: import hierbayes stays light

        if not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1), not {prob}")
        ds = self.parameters(ranef=ranef)
        kwargs.setdefault("ci_prob", prob)
        kwargs.setdefault("ci_kind", "eti")
        kwargs.setdefault("round_to", "none")
        with np.errstate(invalid="ignore", divide="ignore"):  # constant draws give NaN R-hat, not a warning
            table = pd.DataFrame(summary(ds, **kwargs))
        p = kwargs["ci_prob"]
        kind = kwargs["ci_kind"]
        return table.rename(
            columns={c: f"{kind}_{100 * (1 - p) / 2:g}%" if c.endswith("_lb") else f"{kind}_{100 * (1 + p) / 2:g}%"
                     for c in table.columns if c.startswith(kind) and c.endswith(("_lb", "_ub"))}
        )  # fmt: skip

    def loo(self, **kwargs: Any):
        """PSIS-LOO cross-validation (``arviz_stats.loo``) from the stored pointwise log-likelihood.

        Returns arviz-stats' ``ELPDData``: ``elpd``, ``se``, ``p`` and, with
        ``pointwise=True``, ``elpd_i`` and ``pareto_k``.
        """
        from arviz_stats import loo  # ArviZ only for LOO: import hierbayes stays light

        if "log_likelihood" not in self.idata.children:
            raise ValueError("this fit has no log_likelihood group; refit with log_likelihood=True")
        return loo(self.idata, **kwargs)

    # --- helpers -----------------------------------------------------------------------------------
    def _group(self, group: str):
        try:
            return self.design.block(group)
        except KeyError as exc:
            raise KeyError(str(exc.args[0])) from None

    def _checked_vars(self) -> list[str]:
        wanted = [names.BETA]
        for b in self.design.blocks:
            wanted += [names.sd_var(b.group), names.corr_var(b.group), names.ranef_var(b.group)]
        wanted += [p for p in self.model.family.aux if p not in self._aux]
        for p, a in self._aux.items():
            wanted.append(names.dpar(p, names.BETA))
            for b in a.design.blocks:
                wanted += [names.dpar(p, v(b.group)) for v in (names.sd_var, names.corr_var, names.ranef_var)]
        st = getattr(self.model, "structure", None)
        if st is not None:
            wanted += [*st.names, "ratio"]
        return [v for v in wanted if v in self.posterior]

    def _label(self, var: str, index: tuple) -> str:
        da = self.posterior[var]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        parts = [str(da[d].values[i]) for d, i in zip(dims, index, strict=False)]
        return f"{var}[{','.join(parts)}]" if parts else var

    def _refit_settings(self, same_design: bool) -> tuple[str, dict]:
        i = self.info
        return "bayes", {"draws": i.draws, "tune": i.tune, "chains": i.chains, "target_accept": i.target_accept,
                         "random_seed": i.random_seed, "sampler": i.sampler}  # fmt: skip

    def __repr__(self) -> str:
        i = self.info
        sampler = f"{i.sampler} {i.sampler_version}".strip()
        if getattr(i, "backend", "pymc") == "compiled":
            sampler += " (compiled log-density)"
        formula = ", ".join([self.formula, *self.aux_formulas.values()])
        how = ", marginalized" if i.marginalized else ""
        if self._aux and self.model.family.is_gaussian:
            how = ", random effects sampled (sigma has a formula: not marginalized)"
        return (
            f"<PosteriorFit bayes: {formula}, n={self.nobs}, {i.chains} chains x {i.draws} draws, "
            f"NUTS: {sampler}{how}; {self.diagnostics}>"
        )

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing, infinite or empty values (in any of the formulas' columns)."""
        return self.design.n_dropped + getattr(self.model, "aux_dropped", 0)


def _table(da, prob: float) -> pd.DataFrame:
    lo, hi = PosteriorFit.interval(da, prob)
    return pd.DataFrame(
        {"mean": da.mean(("chain", "draw")).values, "sd": da.std(("chain", "draw")).values, "lower": lo.values,
         "upper": hi.values}
    )  # fmt: skip
