"""Names of the posterior variables and their dims: the one place they are defined.

Every Bayesian fit (marginalized or not, any family) stores the same
variables in ``fit.idata.posterior``:

==================  =======================================  ==========================================
variable            dims (after chain, draw)                 what it is
==================  =======================================  ==========================================
``beta``            ``fixef``                                fixed effects; coords = ``design.x_names``
``sd__<g>``         ``<g>__term``                            SD of each random-effect term of factor g
``corr__<g>``       ``<g>__term``, ``<g>__term2``            correlation matrix of factor g's effects
                                                             (only when g has a correlated bar; zero
                                                             between terms of different bars)
``r__<g>``          ``<g>__level``, ``<g>__term``            random effects of factor g (lme4's ranef);
                                                             coords = level names and term names
``sigma``           --                                       residual SD (gaussian, student_t)
``nu``              --                                       student_t degrees of freedom
``alpha``           --                                       negative binomial dispersion
                                                             (variance mu + mu^2 / alpha)
``shape``           --                                       gamma shape (variance mu^2 / shape)
``phi``             --                                       beta precision (variance mu(1-mu)/(1+phi))
``psi``             --                                       zero-inflated Poisson: probability of the
                                                             Poisson component (1 - psi = extra zeros)
``threshold``       ``threshold_dim``                        ordinal families: the K-1 thresholds
                                                             (coords 0..K-2, as bambi names them)
==================  =======================================  ==========================================

``<g>`` is the grouping factor as lme4 prints it (``Subject``,
``class:school``). ``posterior_predictive`` and ``log_likelihood`` hold
``y`` with dim ``obs`` (the rows of the model frame; coords = their index
labels in the user's data), and ``observed_data`` holds ``y``.

Readable labels used by ``fit.summary()`` and by prior names:
``b[Days]``, ``sd[Subject:(Intercept)]``, ``corr[Subject:(Intercept),Days]``,
``r[Subject:308,(Intercept)]``, ``sigma``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hierbayes.design import ReBlock


BETA = "beta"
FIXEF_DIM = "fixef"
THRESHOLD = "threshold"
THRESHOLD_DIM = "threshold_dim"
OBS_DIM = "obs"
Y = "y"


def sd_var(group: str) -> str:
    return f"sd__{group}"


def corr_var(group: str) -> str:
    return f"corr__{group}"


def ranef_var(group: str) -> str:
    return f"r__{group}"


def level_dim(group: str) -> str:
    return f"{group}__level"


def term_dim(group: str) -> str:
    return f"{group}__term"


def term2_dim(group: str) -> str:
    return f"{group}__term2"


def has_corr(block: ReBlock) -> bool:
    """Whether a factor has at least one correlated bar (two or more terms)."""
    return any(len(cols) > 1 for cols in block.bars)


def sd_label(group: str, term: str) -> str:
    return f"sd[{group}:{term}]"


def corr_label(group: str, term1: str, term2: str) -> str:
    return f"corr[{group}:{term1},{term2}]"


def fixef_label(name: str) -> str:
    return f"b[{name}]"


def ranef_label(group: str, level: str, term: str) -> str:
    return f"r[{group}:{level},{term}]"


def threshold_label(j: int) -> str:
    return f"threshold[{j}]"


def eta_label(bar_name: str) -> str:
    return f"eta[{bar_name}]"


def dpar(par: str | None, name: str) -> str:
    """A variable or dim of the location (``beta``, ``sd__g``) as a modelled auxiliary parameter's (``sigma__beta``).

    Labels get the parameter and one underscore (``sigma_b[x]``); see :mod:`hierbayes.bayesian.distributional`.
    """
    return name if not par else f"{par}__{name}"


def coords(design) -> dict[str, list[str]]:
    """PyMC/ArviZ coords of every dim of the posterior."""
    out: dict[str, list[str]] = {FIXEF_DIM: list(design.x_names)}
    for b in design.blocks:
        out[level_dim(b.group)] = list(b.levels)
        out[term_dim(b.group)] = list(b.terms)
        if has_corr(b):
            out[term2_dim(b.group)] = list(b.terms)
    return out
