"""The printed summary of a GLMM fit, in lme4's ``glmerMod`` layout (Wald z tests)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hierbayes.fits.lmer_summary import LmerSummary, aic_table

if TYPE_CHECKING:
    from hierbayes._types import GlmerFit  # a Protocol: glmer.py imports this module


@dataclass(frozen=True)
class GlmerSummary(LmerSummary):
    """What ``summary()`` of a glmer fit shows; ``str()`` renders it like lme4.

    Attributes (beyond :class:`LmerSummary`'s)
    ------------------------------------------
    family_line
        `` Family: binomial  ( logit )``.
    """

    @classmethod
    def from_fit(cls, fit: GlmerFit) -> GlmerSummary:
        approx = "Laplace Approximation" if fit.nAGQ <= 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nAGQ}"
        title = "\n".join(
            textwrap.wrap(
                f"Generalized linear mixed model fit by maximum likelihood ({approx}) [glmerMod]",
                width=72,
                subsequent_indent="  ",
            )
        )  # R wraps the title with strwrap at 0.9 * width
        return cls.assemble(
            fit, title, aic_table(fit), fit.resid("pearson"), fit.coef_table(),
            family_line=f" Family: {_family_name(fit)}  ( {fit.family.link.name} )",
        )  # fmt: skip


def _family_name(fit: GlmerFit) -> str:
    return fit.family.r_name  # lme4 knows only binomial
