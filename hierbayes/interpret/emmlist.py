"""emmeans' calls as R users write them: two-sided specs, ``pairs``, ``lsmeans`` and ``lmer.df``.

``emmeans(fit, pairwise ~ period)`` returns R's ``emm_list``: the means and their
contrasts (:class:`EmmList`, a dict with ``"emmeans"`` and ``"contrasts"``).
:func:`emmeans` and :func:`emtrends` here are the public ones; they build on
:mod:`hierbayes.interpret.emmeans` (one-sided specs) and
:mod:`hierbayes.interpret.contrast`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from hierbayes._args import check_unknown
from hierbayes.errors import ArgumentError
from hierbayes.interpret import emmeans as marginal
from hierbayes.interpret.contrast import contrast
from hierbayes.interpret.emmeans import EmmeansTable

#: R's spellings of ``df`` (emmeans' ``lmer.df``).
_DF_NAMES = ("lmer_df", "lmer.df")


class EmmList(dict):
    """R's ``emm_list``: ``{"emmeans": means, "contrasts": contrasts}``, printed as R prints it."""

    @property
    def emmeans(self) -> EmmeansTable:
        return self["emmeans"]

    @property
    def contrasts(self) -> EmmeansTable:
        return self["contrasts"]

    def __repr__(self) -> str:
        return "\n\n".join(f"${name}\n{table!r}" for name, table in self.items())

    def _repr_html_(self) -> str:
        return "".join(f"<h4>${name}</h4>{table._repr_html_()}" for name, table in self.items())


def _df_of(df: str | None, r_args: dict, where: str, valid: list[str]) -> str | None:
    check_unknown({k: v for k, v in r_args.items() if k not in _DF_NAMES}, where, valid + list(_DF_NAMES))
    given = [r_args[k] for k in _DF_NAMES if k in r_args]
    if len(given) > 1 or (given and df is not None):
        raise ArgumentError(f"{where}: give the degrees-of-freedom method once (df=, lmer_df= or lmer.df=)")
    return given[0] if given else df


def _sides(specs: Any) -> tuple[str | None, Any]:
    """``"pairwise ~ period"`` -> ("pairwise", "period"); a one-sided spec -> (None, spec)."""
    if not isinstance(specs, str) or "~" not in specs:
        return None, specs
    left, _, right = specs.partition("~")
    left = left.strip()
    if not left:
        return None, specs
    if not right.strip():
        raise ArgumentError(f"specs {specs!r} names no variable after '~'")
    return left, right.strip()


def _with_contrasts(table: EmmeansTable, method: str | None, adjust: str | None, level: float) -> Any:
    if method is None:
        if adjust is None:
            return table
        return marginal.make_table(table.grid, marginal._summary_frame(table.grid, True, False, adjust=adjust))
    return EmmList(emmeans=table, contrasts=contrast(table, method=method, adjust=adjust, level=level))


def emmeans(
    fit: Any,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    at: Mapping[Hashable, Any] | None = None,
    type: str = "link",
    df: str | None = None,
    level: float = 0.95,
    regrid: str | None = None,
    ci_kind: str = "hdi",
    adjust: str | None = None,
    **r_args: Any,
) -> EmmeansTable | EmmList:
    """Estimated marginal means over the reference grid, as R's ``emmeans(fit, specs, by, at, type, lmer.df)``.

    Parameters
    ----------
    fit
        An ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``.
    specs
        The variables whose means are wanted: a name (``"N"``), a list of
        names, or a formula (``"~ N | Variety"``, ``"N * Variety"``; ``"1"``
        for the overall mean). Each must be a variable of the fixed part. A
        two-sided formula (``"pairwise ~ N"``, ``"trt.vs.ctrl ~ N | Variety"``)
        also gives the contrasts of the means, as in emmeans (an :class:`EmmList`).
    by
        Variables to group by (also written after ``|`` in ``specs``).
    at
        Values of some variables in the reference grid (levels of a factor,
        numbers of a covariate; a covariate is otherwise at its mean).
    type
        ``"link"`` (the linear predictor) or ``"response"`` (back-transformed
        through the link, or through a transformation of the response such as
        ``log(y)``; the same as ``"link"`` when there is neither).
    df
        Degrees of freedom of lmer fits (emmeans' ``lmer.df``; ``lmer_df=`` is
        accepted too): None or ``"kenward-roger"`` (emmeans' default, with the
        adjusted covariance), ``"satterthwaite"`` or ``"asymptotic"``. GLMMs
        have asymptotic (z) inference only.
    level
        Confidence level of the intervals.
    regrid
        ``"response"``: back-transform the reference grid first (emmeans'
        ``regrid = "response"``), so means, their SEs and contrasts are on
        the response scale (probabilities, differences of probabilities).
    ci_kind
        For a posterior: ``"hdi"`` (highest density, emmeans' choice) or ``"eti"`` (equal-tailed).
    adjust
        Multiplicity adjustment: of the contrasts for a two-sided ``specs``
        (the method's default when None), else of the means' intervals.

    Returns
    -------
    EmmeansTable or EmmList
        A DataFrame: the ``specs`` and ``by`` variables, then ``emmean`` (or
        ``prob``, ``rate``, ``response`` on the response scale), ``SE``,
        ``df``, ``lower.CL``, ``upper.CL`` (``asymp.LCL``, ``asymp.UCL`` with
        infinite df); for a posterior the median and ``lower.HPD``,
        ``upper.HPD`` (``lower.ETI``, ``upper.ETI`` for equal-tailed intervals).
        emmeans' notes are in ``.messages``. With a two-sided ``specs``, the
        means and the contrasts (``result["emmeans"]``, ``result["contrasts"]``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> emm = hb.emmeans(fit, "period", type="response")
    >>> emm.columns.tolist()
    ['period', 'prob', 'SE', 'df', 'asymp.LCL', 'asymp.UCL']
    >>> emm["prob"].round(3).tolist()
    [0.198, 0.084, 0.074, 0.048]
    >>> both = hb.emmeans(fit, "pairwise ~ period")
    >>> both["contrasts"]["contrast"].head(2).tolist()
    ['period1 - period2', 'period1 - period3']
    """
    valid = ["fit", "specs", "by", "at", "type", "df", "level", "regrid", "ci_kind", "adjust"]
    df = _df_of(df, r_args, "emmeans", valid)
    method, specs = _sides(specs)
    table = marginal.emmeans(fit, specs, by=by, at=at, type=type, df=df, level=level, regrid=regrid,
                             ci_kind=ci_kind)  # fmt: skip
    return _with_contrasts(table, method, adjust, level)


def emtrends(
    fit: Any,
    specs: str | Sequence[str],
    var: str,
    by: str | Sequence[str] | None = None,
    at: Mapping[Hashable, Any] | None = None,
    df: str | None = None,
    level: float = 0.95,
    delta_var: float | None = None,
    ci_kind: str = "hdi",
    adjust: str | None = None,
    **r_args: Any,
) -> EmmeansTable | EmmList:
    """Estimated marginal trends: the slope of the linear predictor in ``var`` (R's ``emtrends``).

    The slope is emmeans' difference quotient over ``delta_var`` (0.001 times
    the range of ``var`` by default), averaged over the reference grid like
    :func:`emmeans`; ``var`` is at its mean unless ``at`` says otherwise. A
    two-sided ``specs`` (``"pairwise ~ Variety"``) also compares the trends;
    ``df``/``lmer.df`` and ``adjust`` as in :func:`emmeans`.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> hb.emtrends(fit, "1", var="Days")[["1", "Days.trend", "SE", "df"]].round(4).values.tolist()
    [['overall', 10.4673, 1.5458, 17.0]]
    """
    valid = ["fit", "specs", "var", "by", "at", "df", "level", "delta_var", "ci_kind", "adjust"]
    df = _df_of(df, r_args, "emtrends", valid)
    method, specs = _sides(specs)
    table = marginal.emtrends(fit, specs, var=var, by=by, at=at, df=df, level=level, delta_var=delta_var,
                              ci_kind=ci_kind)  # fmt: skip
    return _with_contrasts(table, method, adjust, level)


def pairs(emm: EmmeansTable, reverse: bool = False, adjust: str | None = None, **options: Any) -> EmmeansTable:
    """All pairwise comparisons of the means, R's ``pairs(emm)`` (``reverse=True``: ``revpairwise``).

    ``options`` are :func:`hierbayes.contrast`'s (``by``, ``type``, ``level``).

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", hb.datasets.load("cbpp"))
    >>> hb.pairs(hb.emmeans(fit, "period"))["contrast"].tolist()[:2]
    ['period1 - period2', 'period1 - period3']
    """
    if isinstance(emm, EmmList):
        emm = emm.emmeans
    return contrast(emm, method="revpairwise" if reverse else "pairwise", adjust=adjust, **options)


#: emmeans' older names (the lsmeans package), for course material that still uses them.
lsmeans = emmeans
lstrends = emtrends

__all__ = ["EmmList", "emmeans", "emtrends", "lsmeans", "lstrends", "pairs"]
