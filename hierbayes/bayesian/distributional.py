"""Distributional models: a family's auxiliary parameter (``sigma``, ``alpha``, ``psi``...) with its own predictor.

``hb.bayes(hb.Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)"), data)`` gives
each row its own ``sigma = exp(eta_sigma)``, ``eta_sigma = X_s b_s + Z_s r_s``:
fixed and random effects as in the location formula, with their own priors.
Each parameter is on its family's default link (bambi's and brms'): ``logit``
for ``psi`` (a probability), ``log`` for the others (scales, shapes,
precisions, degrees of freedom).

Names (one scheme, the location's with the parameter in front):

=====================  =================================  ================================
what                   posterior variable (dims)          label (summary, priors)
=====================  =================================  ================================
fixed effects          ``sigma__beta`` (``sigma__fixef``)  ``sigma_b[x]``
SDs of factor g        ``sigma__sd__g``                    ``sigma_sd[g:(Intercept)]``
correlations           ``sigma__corr__g``                  ``sigma_corr[g:(Intercept),x]``
random effects         ``sigma__r__g``                     ``sigma_r[g:level,term]``
LKJ shape (prior)      --                                  ``sigma_eta[g]``
=====================  =================================  ================================

Prior shortcuts work as for the location (``"sigma_b"``: every slope,
``"sigma_sd"``: every SD, ``"sigma_Intercept"``, ``"sigma_x"``...). bambi's names for two
parameters are accepted: ``alpha`` for the gamma ``shape``, ``kappa`` for the beta ``phi``.

Default priors: :mod:`hierbayes.bayesian.priors` (``aux_default_priors``).

NumPy at import; the PyMC variables are made by :func:`hierbayes.bayesian.model.aux_parameter`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes.bayesian import names
from hierbayes.bayesian.predict import PosteriorDraws, chol_draws, encode_rows, eta_slice, flat
from hierbayes.design import build_design
from hierbayes.design.newdata import included_terms
from hierbayes.errors import ModelError
from hierbayes.families import LINKS

if TYPE_CHECKING:
    from hierbayes.design import Design
    from hierbayes.families import Family, Link

#: each auxiliary parameter's link (bambi's defaults); the others are on the log link
AUX_LINKS = {"psi": "logit"}
#: bambi's names of auxiliary parameters that hierbayes names otherwise: family -> {bambi's: hierbayes'}
ALIASES = {"gamma": {"alpha": "shape"}, "beta": {"kappa": "phi"}}


@dataclass(frozen=True)
class AuxPredictor:
    """One modelled auxiliary parameter: its name, formula (right side), design on the model's rows, link."""

    par: str
    rhs: str
    design: Design
    link: Link

    @property
    def text(self) -> str:
        return f"{self.par} ~ {self.rhs}"


def aux_link(par: str) -> Link:
    return LINKS[AUX_LINKS.get(par, "log")]


def canonical_names(family: Family, pairs: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The (parameter, formula) pairs under the family's names, in the family's order; a ModelError for others."""
    alias = ALIASES.get(family.name, {})
    out: dict[str, str] = {}
    for name, rhs in pairs:
        par = alias.get(name, name)
        if par not in family.aux:
            if family.aux:
                known = ", ".join(family.aux) + "".join(
                    f" ('{b}' in bambi's spelling)" for b, h in alias.items() if h in family.aux
                )
                raise ModelError(
                    f"the {family.name} family has no auxiliary parameter '{name}' to give a formula to; "
                    f"its parameters are: {known}"
                )
            raise ModelError(
                f"the {family.name} family has no auxiliary parameter ('{name}' given a formula): its only parameter "
                "is the mean, which the main formula models; drop the auxiliary formula or choose a family that has "
                f"'{name}'"
            )
        if par in out:
            raise ModelError(f"'{name}' and '{par}' name the same parameter of the {family.name} family; give one")
        out[par] = rhs
    return [(p, out[p]) for p in family.aux if p in out]


def aux_predictors(
    family: Family, pairs: tuple[tuple[str, str], ...], data: pd.DataFrame, response: str, na_action: str
) -> tuple[list[AuxPredictor], np.ndarray | None]:
    """Designs of the auxiliary formulas on ``data``'s rows, and the rows to drop first (None: none).

    A row with a missing value in a column only an auxiliary formula uses is
    dropped before the location's design is built (``na_action="omit"``, with a
    warning), so every formula sees the same rows. Call again on the kept rows.
    """
    out, keep = [], None
    for par, rhs in canonical_names(family, pairs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the location formula's design warns about its own dropped rows
            d = build_design(f"{response} ~ {rhs}", data, na_action=na_action, require_random=False,
                             binary_response=family.binomial)  # fmt: skip
        if d.frame.kept is not None:
            keep = d.frame.kept if keep is None else keep & d.frame.kept
        out.append(AuxPredictor(par, rhs, d, aux_link(par)))
    return out, keep


def coords(aux: AuxPredictor) -> dict[str, list[str]]:
    return {names.dpar(aux.par, k): v for k, v in names.coords(aux.design).items()}


def aux_draws(aux: AuxPredictor, post) -> PosteriorDraws:
    """Flattened draws of one auxiliary predictor's coefficients (as the location's :class:`PosteriorDraws`)."""
    par = aux.par
    return PosteriorDraws(
        beta=flat(post[names.dpar(par, names.BETA)]),
        ranef=[flat(post[names.dpar(par, names.ranef_var(b.group))]) for b in aux.design.blocks],
        chol=[chol_draws(post, b, par) for b in aux.design.blocks],
        params={},
    )


def aux_re_form(design: Design, re_form: object) -> object:
    """What an auxiliary predictor conditions on: nothing when ``re_form`` drops every random effect, else all."""
    return "~0" if re_form is not None and not included_terms(design, re_form) else None


@dataclass(frozen=True)
class AuxRows:
    """One auxiliary predictor's draws and its encoding of the rows being predicted."""

    par: str
    link: Link
    rows: object
    draws: PosteriorDraws
    main_ok: np.ndarray  # the location's encoded rows (of newdata's): the rows predicted


def aux_rows(aux: list[AuxPredictor], post, newdata, re_form, new_levels: str, main_ok: np.ndarray, main_design):
    """The auxiliary predictors' encodings of the rows a prediction is for (the fitting rows when newdata is None)."""
    out = []
    for a in aux:
        rows = encode_rows(a.design, newdata, aux_re_form(main_design, re_form), new_levels)
        out.append(AuxRows(a.par, a.link, rows, aux_draws(a, post), main_ok))
    return out


def params_of(draws: PosteriorDraws, parts: list[AuxRows], sl: slice, rng=None) -> dict[str, np.ndarray]:
    """The family's parameters for draws ``sl``: scalars as (chunk, 1), modelled ones as (chunk, rows)."""
    out = {k: v[sl][:, None] for k, v in draws.params.items()}
    for part in parts:
        value = part.link.inverse(eta_slice(part.rows, part.draws, sl, rng))
        if not np.array_equal(part.rows.ok, part.main_ok):  # rows missing a column of one formula only: NaN
            full = np.full((value.shape[0], len(part.main_ok)), np.nan)
            full[:, part.rows.ok] = value
            value = full[:, part.main_ok]
        out[part.par] = value
    return out
