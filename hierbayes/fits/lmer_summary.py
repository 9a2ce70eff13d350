"""The printed summary of an LMM fit, in lme4's layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierbayes._warnings import warn
from hierbayes.errors import ConvergenceWarning
from hierbayes.fits.rformat import abbreviate, coefmat, format_column, text_table
from hierbayes.inference.coef_table import ddf_method

if TYPE_CHECKING:
    from hierbayes._types import LmerFit  # a Protocol: lmer.py imports this module


@dataclass(frozen=True)
class LmerSummary:
    """What ``summary()`` of an lmer fit shows; ``str()`` renders it like lme4.

    Attributes
    ----------
    coefficients
        The fixed-effects table (Estimate, Std. Error, [df,] t value[, Pr(>|t|)]).
    varcorr
        Variance components (as ``fit.varcorr``).
    residual_quantiles
        Min, 1Q, Median, 3Q, Max of the scaled (Pearson) residuals.
    """

    title: str
    formula: str
    criterion: str
    residual_quantiles: pd.Series
    varcorr: pd.DataFrame
    groups_line: str
    coefficients: pd.DataFrame
    correlation: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    blocks: tuple = field(default=(), repr=False)
    structure_lines: tuple[str, ...] = ()

    family_line: str = ""

    @classmethod
    def from_fit(cls, fit: LmerFit, ddf: str = "satterthwaite") -> LmerSummary:
        coefficients, method = _coefficients(fit, ddf)
        if fit.reml:
            title = "Linear mixed model fit by REML"
            crit = f"REML criterion at convergence: {_round1(fit.reml_criterion)}"
        else:
            title = "Linear mixed model fit by maximum likelihood"
            crit = aic_table(fit)
        if method:
            title += f". t-tests use {method}"
        streamed = getattr(fit.design, "streamed", None) is not None  # rows read in pieces and not kept
        scaled = np.full(5, np.nan) if streamed else fit.resid("pearson", scaled=True)
        return cls.assemble(fit, title, crit, scaled, coefficients)

    @classmethod
    def assemble(cls, fit, title: str, criterion: str, scaled_residuals, coefficients, **extra) -> LmerSummary:
        """The parts every mixed-model summary shares, from a fit and its own header lines."""
        if np.all(np.isnan(scaled_residuals)):  # no rows kept (data read in pieces)
            q = np.full(5, np.nan)
        else:
            q = np.nanquantile(scaled_residuals, [0, 0.25, 0.5, 0.75, 1])  # NaN: rows excluded (na.exclude)
            mx = np.abs(q).max()
            q = np.round(q, max(0, 5 - int(np.ceil(np.log10(mx)))) if mx > 0 else 5)  # lme4: zapsmall(q, digits + 1)
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
            criterion=criterion,
            residual_quantiles=pd.Series(q, index=["Min", "1Q", "Median", "3Q", "Max"]),
            varcorr=fit.varcorr,
            groups_line=f"Number of obs: {fit.nobs}, groups:  {groups}",
            coefficients=coefficients,
            correlation=pd.DataFrame(corr, index=fit.fixef.index, columns=fit.fixef.index),
            notes=notes,
            blocks=fit.design.blocks,
            structure_lines=tuple(structure_lines(fit)),
            **extra,
        )

    def __str__(self) -> str:
        out = [self.title, *([self.family_line] if self.family_line else []), f"Formula: {self.formula}", ""]
        if self.residual_quantiles.isna().all():
            out += [self.criterion, "", "Scaled residuals: not kept (the rows were read in pieces)"]
        else:
            out += [self.criterion, "", "Scaled residuals: "]
            qs = format_column(self.residual_quantiles.to_numpy(), 4)
            w = max(len(s) for s in [*qs, "Median"])
            out.append(" ".join(h.rjust(w) for h in self.residual_quantiles.index))
            out.append(" ".join(s.rjust(w) for s in qs))
        out += ["", "Random effects:", self._random_table(), self.groups_line, *self.structure_lines]
        out += ["", "Fixed effects:"]
        out.append(coefmat(self.coefficients))
        if len(self.correlation) > 1:
            out += ["", "Correlation of Fixed Effects:", self._corr_table()]
        if self.notes:
            out += ["", *self.notes]
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

    def _random_table(self) -> str:
        vc = self.varcorr
        var_rows = vc[vc["var2"].isna()]
        variances = format_column(var_rows["vcov"].to_numpy(), 4)
        sds = format_column(var_rows["sdcor"].to_numpy(), 4)
        max_corr = max((len(cols) for b in self.blocks for cols in b.bars), default=1) - 1
        rows = []
        for i, (_, r) in enumerate(var_rows.iterrows()):
            grp = "" if i > 0 and var_rows["grp"].iloc[i - 1] == r["grp"] else r["grp"]
            corrs = self._corrs_for(r["grp"], r["var1"])
            cells = [grp, "" if pd.isna(r["var1"]) else str(r["var1"]), variances[i].strip(), sds[i].strip()]
            cells += corrs + [""] * (max_corr - len(corrs))
            rows.append(cells)
        vw = max(len(c[2]) for c in rows)
        sw = max(len(c[3]) for c in rows)
        for c in rows:
            c[2], c[3] = c[2].rjust(vw), c[3].rjust(sw)
        header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (max_corr - 1) if max_corr else [])
        return text_table(rows, header, left=range(len(header)))

    def _corrs_for(self, grp: str, var1: str | None) -> list[str]:
        vc = self.varcorr
        if grp == "Residual" or pd.isna(var1):
            return []
        cov = vc[(vc["grp"] == grp) & vc["var2"].notna()]
        terms = list(vc[(vc["grp"] == grp) & vc["var2"].isna()]["var1"])
        i = terms.index(var1)
        out = []
        for j in range(i):
            row = cov[(cov["var1"] == terms[j]) & (cov["var2"] == var1)]
            out.append(f"{float(row['sdcor'].iloc[0]):.2f}" if len(row) else "")
        return out

    def _corr_table(self) -> str:
        c = self.correlation
        names = list(c.index)
        heads = [abbreviate(n, 6) for n in names[:-1]]
        rows = []
        for i in range(1, len(names)):
            cells = [f"{round(float(c.iloc[i, j]), 3) + 0.0:.3f}" for j in range(i)] + [""] * (len(names) - 1 - i)
            rows.append([abbreviate(names[i], 11), *cells])
        return text_table(rows, ["", *heads], left=[0], indent="")


_CORR_LABELS = {"ar1": "AR(1)", "car1": "Continuous AR(1)", "cs": "Compound symmetry"}
_VAR_LABELS = {"ident": "Different standard deviations per stratum", "power": "Power of variance covariate",
               "exp": "Exponential of variance covariate", "comb": "Combination of variance functions"}  # fmt: skip


def _named_values(names, values) -> list[str]:
    cells = [f"{v:.7g}" for v in values]
    w = [max(len(n), len(c)) for n, c in zip(names, cells, strict=True)]
    return [" ".join(n.rjust(k) for n, k in zip(names, w, strict=True)) + " ",
            " ".join(c.rjust(k) for c, k in zip(cells, w, strict=True)) + " "]  # fmt: skip


def _form_text(form) -> str:
    cov = "1" if form.covariate is None else form.covariate
    return f"~{cov}" + (f" | {'/'.join(form.groups)}" if form.groups else "")


def structure_lines(fit) -> list[str]:
    """nlme's blocks for a residual structure ("Correlation Structure: ...", "Variance function: ...")."""
    st = getattr(fit, "structure", None)
    if st is None:
        return []
    params, out = fit.residual_params, [""]
    if st.correlation is not None:
        c = st.correlation
        label = c.spec.label if c.kind == "arma" else "ARMA(1,0)" if c.names == ("Phi1",) else _CORR_LABELS[c.kind]
        form = c.spec.form
        ftext = (
            _form_text(form)
            if form.groups
            else f"~{'1' if form.covariate is None else form.covariate} | {c.group_name}"
        )
        out += [f"Correlation Structure: {label}", f" Formula: {ftext} ", " Parameter estimate(s):"]
        out += _named_values(list(c.names), [params[n] for n in c.names])
    if st.variance is not None:
        v = st.variance
        out += ["Variance function:", f" Structure: {_VAR_LABELS[v.kind]}"]
        if v.kind == "comb":
            out += [f"  {chr(65 + i)}: {_VAR_LABELS[p.kind]}, formula {_form_text(p.spec.form)}"
                    for i, p in enumerate(v.parts)]  # fmt: skip
        else:
            out.append(f" Formula: {_form_text(v.spec.form)} ")
        out.append(" Parameter estimates:")
        names, values = list(v.names), [params[n] for n in v.names]
        if v.kind == "ident":
            names, values = [v.label, *names], [1.0, *values]
        out += _named_values(names, values)
    return out


_METHODS = {"satterthwaite": "Satterthwaite's method", "kenward-roger": "Kenward-Roger's method",
            "residual": "residual degrees of freedom (n - p)", "containment": "containment (nlme's) df"}  # fmt: skip


def _coefficients(fit: LmerFit, ddf: str) -> tuple[pd.DataFrame, str]:
    """The fixed-effects table and the title's method (lme4's plain table if the df cannot be computed)."""

    method = ddf_method(ddf)
    try:
        table = fit.coef_table(method)
    except (np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
        warn(
            f"could not compute {_METHODS.get(method, method)} for the summary ({exc}); showing t values without df",
            ConvergenceWarning,
        )
        table = fit.coef_table("wald").rename(columns={"z value": "t value"})[["Estimate", "Std. Error", "t value"]]
        return table, ""
    if method == "wald":
        return table, ""
    return table, _METHODS[method]


def aic_table(fit) -> str:
    """lme4's ``AIC BIC logLik deviance df.resid`` lines (a named vector printed with one width)."""
    cells = [f"{round(float(v), 1):.1f}" for v in (fit.aic, fit.bic, fit.loglik, fit.deviance)]
    cells.append(str(fit.df_resid))
    head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    w = max(len(c) for c in [*head, *cells])
    return " ".join(h.rjust(w) for h in head) + " \n" + " ".join(c.rjust(w) for c in cells) + " "


def _round1(x: float) -> str:
    v = round(float(x), 1)
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
