"""The extractor API every fit shares, whatever engine made it.

``MixedFit`` is the contract between the engines and everything downstream
(tables, plots, the CLI): ``fixef``, ``ranef``, ``coef``, ``varcorr``,
``sigma``, ``predict``, ``fitted``, ``residuals``, ``summary``, ``nobs``,
``ngroups``, ``n_dropped``. Names that exist in lme4 keep lme4's meaning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hierbayes._args import check_unknown
from hierbayes.design import Design
from hierbayes.design.newdata import encode_rows, new_levels_policy
from hierbayes.errors import ArgumentError, DataError
from hierbayes.fits.rcalls import RCalls
from hierbayes.tables.tidy import augment, tidy

if TYPE_CHECKING:
    from hierbayes._types import Model  # a Protocol: hierbayes.model sits above the fits


#: The keywords of ``predict`` (lme4's spellings ``allow.new.levels`` and ``re.form`` get a hint).
PREDICT_ARGS = [
    "newdata",
    "re_form",
    "new_levels",
    "type",
    "allow_new_levels",
    "interval",
    "level",
    "nsim",
    "random_seed",
]


#: The function behind ``predict(interval=...)``: :func:`hierbayes.interpret.intervals.predict_interval`. The
#: interpret package sits above the fits, so it registers the function when it is imported, and ``import
#: hierbayes`` imports it (so every fit has it); the fits never import it.
_PREDICT_INTERVAL: list[Callable[..., pd.DataFrame]] = []


def register_predict_interval(function: Callable[..., pd.DataFrame]) -> None:
    """Set the function that computes ``fit.predict(..., interval=...)`` (called by :mod:`hierbayes.interpret`)."""
    _PREDICT_INTERVAL[:] = [function]


def predict_interval(fit: MixedFit, *args: Any, **kwargs: Any) -> pd.DataFrame:
    """``fit.predict(newdata, interval=...)``: the registered function's DataFrame of estimates and intervals."""
    if not _PREDICT_INTERVAL:  # only when hierbayes.fits is loaded without the package (never by import hierbayes)
        raise RuntimeError("predict(interval=...) needs hierbayes.interpret: import hierbayes.interpret first")
    return _PREDICT_INTERVAL[0](fit, *args, **kwargs)


def check_predict_type(type: str) -> None:
    if not isinstance(type, str) or type not in ("link", "response"):
        raise ArgumentError(f"type must be 'link' or 'response', not {type!r}")


class MixedFit(RCalls, ABC):
    """Base class of fitted mixed models (REML/ML, GLMM and posterior fits).

    Parameters
    ----------
    model
        The :class:`hierbayes.Model` that was fitted.
    """

    #: "reml", "ml" or "bayes"
    method: str = ""

    def __init__(self, model: Model):
        self.model = model
        #: Results computed once from the fit and kept for later calls (e.g. lmerTest's derivatives of the
        #: variance parameters, which every coefficient table and anova of the fit reuses).
        self.cache: dict[str, object] = {}

    # --- what every engine provides -------------------------------------------------
    @property
    @abstractmethod
    def fixef(self) -> pd.Series:
        """Fixed effects (posterior means for a Bayesian fit), named like lme4's ``fixef``."""

    @property
    @abstractmethod
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Random effects per grouping factor: a levels x terms DataFrame (lme4's ``ranef``)."""

    @property
    @abstractmethod
    def varcorr(self) -> pd.DataFrame:
        """Variance components like R's ``as.data.frame(VarCorr(m))``: grp, var1, var2, vcov, sdcor."""

    @property
    @abstractmethod
    def sigma(self) -> float | None:
        """Residual standard deviation (None for families without one)."""

    @abstractmethod
    def summary(self):
        """A printable summary in the layout users know (lme4's, or ArviZ's for posteriors)."""

    # --- shared -----------------------------------------------------------------------
    @property
    def design(self) -> Design:
        return self.model.design

    @property
    def formula(self) -> str:
        return self.design.formula.text

    @property
    def nobs(self) -> int:
        """Number of observations used (after dropping incomplete rows)."""
        return self.design.n

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor."""
        return {b.group: b.nlevels for b in self.design.blocks}

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing, infinite or empty values."""
        return self.design.n_dropped

    @property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-level coefficients: fixed effects plus that level's random effects (lme4's ``coef``).

        Columns are the fixed effects in order; a random term that is not also a
        fixed effect is appended as its own column.
        """
        fe = self.fixef
        out = {}
        for group, re in self.ranef.items():
            df = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index, columns=fe.index)
            for term in re.columns:
                df[term] = (df[term] if term in df else 0.0) + re[term]
            out[group] = df
        return out

    @property
    def fitted(self) -> np.ndarray:
        """Fitted values conditional on the random effects (on the response scale)."""
        return self.predict()

    @property
    def residuals(self) -> np.ndarray:
        """Response residuals ``y - fitted`` (conditional on the random effects)."""
        return self.design.y - self.fitted

    def _ranef_arrays(self) -> list[np.ndarray]:
        """Point estimates of the random effects per block (levels x k), design order."""
        re = self.ranef
        return [re[b.group].loc[list(b.levels), list(b.terms)].to_numpy() for b in self.design.blocks]

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
        nsim: int = 1000,
        random_seed: int | None = None,
        **unknown,
    ) -> np.ndarray | pd.DataFrame:
        """Predictions from point estimates of the effects, optionally with intervals.

        Parameters
        ----------
        newdata
            Data to predict for (a DataFrame or a dict of columns); the fitting
            data when None. Columns are read as the types they had when fitting
            (``"2"`` and ``2`` are one level); zero rows give an empty array.
        re_form
            Random effects to condition on: None for all; ``"NA"``, ``np.nan`` or
            ``"~0"`` for none (population-level predictions); or a formula of
            random-effects terms, e.g. ``"~(1 | Subject)"``, to include only those
            (lme4's ``re.form``).
        new_levels
            For levels of a grouping factor not seen when fitting: ``"error"``
            (lme4's default), or ``"population"`` (random effect zero).
        type
            lme4's ``type``: ``"link"`` or ``"response"``, the same for a
            linear mixed model.
        allow_new_levels
            lme4's spelling: True is ``new_levels="population"``; with
            ``interval="prediction"`` a new level's effects are drawn from the
            fitted distribution.
        interval
            None (the predictions alone), ``"confidence"`` (delta-method interval
            of the mean, conditional on the random effects) or ``"prediction"``
            (an interval for a new observation, by simulation: residual noise,
            the random effects' and the parameters' uncertainty; see
            :mod:`hierbayes.interpret.intervals`).
        level
            Interval level.
        nsim, random_seed
            Simulations for ``interval="prediction"``, and their seed.

        Returns
        -------
        numpy.ndarray or pandas.DataFrame
            One prediction per row (NaN where a used value is missing); with
            ``interval``, a DataFrame of ``estimate``, (``std_error``,) ``lower``, ``upper``.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> pi = fit.predict({"Days": [5], "Subject": ["308"]}, interval="prediction", random_seed=1)
        >>> pi.columns.tolist(), bool(pi.lower[0] < pi.estimate[0] < pi.upper[0])
        (['estimate', 'lower', 'upper'], True)
        """
        check_unknown(unknown, "predict", PREDICT_ARGS)
        check_predict_type(type)
        if interval is not None:
            return predict_interval(self, newdata, re_form, new_levels, allow_new_levels, interval, level, nsim,
                                    random_seed)  # fmt: skip
        policy = new_levels_policy(allow_new_levels, new_levels)
        eta = linear_predictor(self.design, self.fixef.to_numpy(), self._ranef_arrays(), newdata, re_form, policy)
        return self._inverse_link(eta)

    def _inverse_link(self, eta: np.ndarray) -> np.ndarray:
        return eta

    def tidy(self, **kw) -> pd.DataFrame:
        """broom.mixed-style parameter table; see :func:`hierbayes.tables.tidy`."""
        return tidy(self, **kw)

    def augment(self, **kw) -> pd.DataFrame:
        """The model's rows with .fitted, .resid, ...; see :func:`hierbayes.tables.augment`."""
        return augment(self, **kw)

    def save(self, path) -> None:
        """Write the fit to a netCDF file; :func:`hierbayes.load` reads it back (see :mod:`hierbayes.io`)."""
        from hierbayes.fits.save import save  # netCDF writing loads xarray: import hierbayes stays light

        save(self, path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method}: {self.formula}, n={self.nobs}>"


def require_rows(design: Design, what: str) -> None:
    """A DataError when ``design`` keeps no rows (data read in pieces) and ``what`` needs them."""
    streamed = getattr(design, "streamed", None)
    if streamed is not None:
        raise DataError(
            f"{what} needs the fitting rows, which a fit from the {streamed.source} does not keep (it holds their "
            "cross-products only); read a piece of the data (e.g. pd.read_parquet(path, columns=...) or one "
            "record batch) and use fit.predict(newdata=piece), and piece[response] - fit.predict(newdata=piece) "
            "for residuals"
        )


def linear_predictor(
    design: Design,
    beta: np.ndarray,
    b: list[np.ndarray],
    newdata: pd.DataFrame | None = None,
    re_form: str | float | None = None,
    new_levels: str = "error",
) -> np.ndarray:
    """``X beta + offset + sum_g Z_g b_g`` for the fitting data or new data.

    Levels not seen when fitting raise (``"error"``) or contribute zero
    (``"population"``). Rows of ``newdata`` with a missing value in a used column give NaN.
    """
    if new_levels == "sample":
        raise DataError("new_levels='sample' draws new random effects: it needs a posterior fit (method='bayes')")
    if newdata is None:
        require_rows(design, "predict() without newdata (fitted values, residuals)")
    rows = encode_rows(design, newdata, re_form, new_levels)
    eta = rows.X @ beta
    if rows.offset is not None:
        eta = eta + rows.offset
    for enc, bb in zip(rows.blocks, b, strict=True):
        if enc is None:
            continue
        codes, Z = enc
        unseen = codes < 0
        eta = eta + np.where(unseen, 0.0, np.einsum("ij,ij->i", Z, bb[np.where(unseen, 0, codes)]))
    out = np.full(len(rows.ok), np.nan)
    out[rows.ok] = eta
    return out
