"""The printed summary of a GLMM fit, in lme4's ``glmerMod`` layout (Wald z tests)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes.fits.lmer_summary import LmerSummary
from hierbayes.fits.rformat import coefmat, format_column

if TYPE_CHECKING:
    from hierbayes.fits.glmer import GlmerFit


@dataclass(frozen=True)
class GlmerSummary(LmerSummary):
    """What ``summary()`` of a glmer fit shows; ``str()`` renders it like lme4.

    Attributes (beyond :class:`LmerSummary`'s)
    ------------------------------------------
    family_line
        `` Family: binomial  ( logit )``.
    """

    family_line: str = ""

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
        cells = [f"{round(float(v), 1):.1f}" for v in (fit.aic, fit.bic, fit.loglik, fit.deviance)]
        cells.append(str(fit.df_resid))
        head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        w = max(len(c) for c in [*head, *cells])  # R prints a named vector with one common width
        crit = " ".join(h.rjust(w) for h in head) + " \n" + " ".join(c.rjust(w) for c in cells) + " "
        q = np.quantile(fit.resid("pearson"), [0, 0.25, 0.5, 0.75, 1])
        mx = np.abs(q).max()
        q = np.round(q, max(0, 5 - int(np.ceil(np.log10(mx)))) if mx > 0 else 5)
        groups = "; ".join(f"{g}, {n}" for g, n in fit.ngroups.items())
        vcov = fit.vcov.to_numpy()
        sd = np.sqrt(np.diag(vcov))
        corr = vcov / np.outer(sd, sd) if len(sd) else vcov
        notes = []
        if fit.is_singular:
            notes.append("optimizer (BOBYQA) convergence code: 0 (OK)\nboundary (singular) fit: see help('isSingular')")
        if fit.convergence is not None:
            notes += fit.convergence.messages
        if fit.design.aliased:
            notes.append(f"fixed-effect model matrix is rank deficient; dropped: {', '.join(fit.design.aliased)}")
        return cls(
            title=title,
            formula=fit.formula,
            criterion=crit,
            residual_quantiles=pd.Series(q, index=["Min", "1Q", "Median", "3Q", "Max"]),
            varcorr=fit.varcorr,
            groups_line=f"Number of obs: {fit.nobs}, groups:  {groups}",
            coefficients=fit.coef_table(),
            correlation=pd.DataFrame(corr, index=fit.fixef.index, columns=fit.fixef.index),
            notes=notes,
            blocks=fit.design.blocks,
            family_line=f" Family: {_family_name(fit)}  ( {fit.family.link.name} )",
        )

    def __str__(self) -> str:
        out = [self.title, self.family_line, f"Formula: {self.formula}", "", self.criterion, "", "Scaled residuals: "]
        qs = format_column(self.residual_quantiles.to_numpy(), 4)
        w = max(len(s) for s in [*qs, "Median"])
        out.append(" ".join(h.rjust(w) for h in self.residual_quantiles.index))
        out.append(" ".join(s.rjust(w) for s in qs))
        out += ["", "Random effects:", self._random_table(), self.groups_line, "", "Fixed effects:"]
        out.append(coefmat(self.coefficients))
        if len(self.correlation) > 1:
            out += ["", "Correlation of Fixed Effects:", self._corr_table()]
        if self.notes:
            out += ["", *self.notes]
        return "\n".join(out)


def _family_name(fit: GlmerFit) -> str:
    return "binomial" if fit.family.name == "bernoulli" else fit.family.name  # lme4 knows only binomial
