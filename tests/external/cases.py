"""Python-side details of the external cases: argument translations, known failures, tolerances.

Everything about a case that R cannot store lives here, in one table per kind:

* ``PYTHON_ARGS``: R arguments that are expressions (``subset = Days>=2``,
  ``offset = log(expected)``) and the Python a user would write for them.
  A weights column name needs no entry: it is passed as it is.
* ``XFAIL``: cases that fail today, keyed by case id, each with its root
  cause(s) (keys of ``ROOT_CAUSES``; the first is the one that stops it
  today, the others were found by working around the first). The tests
  mark them ``xfail(strict=True)``: when every cause is fixed the test
  passes, the strict xfail fails, and the entry must go.
* ``ROOT_CAUSES``: one line per cause (where in hierbayes, what goes wrong).
  ``tests/reference/external/FAILURES.md`` has the details and a minimal
  reproduction of each.
* ``TOLERANCES``: the few cases compared more loosely than ``loader.py``'s
  defaults, each with its reason.
"""

from __future__ import annotations

import math

import numpy as np

from tests.external.loader import CaseOptions

PYTHON_ARGS = {
    # lme4: lmer(..., subset = Days>=2): a boolean mask over the rows
    "lme4_sleep_subset": lambda d: {"subset": d["Days"] >= 2},
    # mlmRev: glmer(..., offset = log(expected))
    "mlmRev_mmmec": lambda d: {"offset": np.log(d["expected"])},
}

ROOT_CAUSES: dict[str, str] = {
    "bare-bar": (
        "formula/parser.py _reject_bar: 'Yield ~ 1|Batch' is rejected; R's '|' binds loosest, "
        "so lme4 reads it as Yield ~ (1|Batch)"
    ),
    "offset-arg": "model.py glmer: offset= is not an argument (raw TypeError from glmm.fit_glmm)",
    "factor-response": (
        "design/design.py _response -> design/encode.py evaluate_vector: a factor (Categorical) response "
        "is rejected; lme4's binomial takes it as 'not the first level' = success"
    ),
    "ordered-contrasts": (
        "design/encode.py evaluate_matrix: ordered factors get treatment contrasts; R uses contr.poly "
        "(.L .Q .C ^4): other names, another REML criterion (it depends on X's parametrization), "
        "another dropped column"
    ),
    "reml-stops-short": (
        "optim/minimize.py (nloptwrap settings) stops at ftol_abs = xtol_abs = 1e-8 (lme4's default): 1e-9..4e-7 above "
        "the optimum, theta off by 1e-5..1e-3 on flat surfaces; optimizer='lbfgsb' matches lme4's tight fit"
    ),
    "doublebar-term-order": (
        "design/random.py sorts blocks stably by decreasing levels; lme4 1.1-31's mkReTrms uses "
        "rev(order(nl)), which reverses terms with tied level counts whenever it reorders; lme4 names the "
        "`||` groups of Wafer:Site 'Wafer.Site', 'Wafer.Site.1' in VarCorr"
    ),
    "glmm-stops-short": (
        "glmm/fit.py: the second stage stops short of lme4's polished optimum: on a badly scaled GLMM "
        "(cond(H) ~ 4e7) 1.1e-6 above it, fixef off by 7e-4 SE; elsewhere fixef off by ~1.5e-6 SE"
    ),
    "pirls-warm-start": (
        "glmm/pirls.py Pirls.run: warm start from the last spherical modes u; after a small theta u is "
        "large, at the next theta exp(eta) overflows, the first iteration's system is NaN and "
        "FloatingPointError is raised (no step-halving on iteration 1)"
    ),
    "logical-expression-names": (
        "design/names.py r_column_names appends R's 'TRUE' only to logical data columns: the column of "
        "I(week > 2) is 'I(week > 2)', lme4's is 'I(week > 2)TRUE'"
    ),
    "pirls-divergent-fixef": (
        "glmm/pirls.py Pirls.run: with a fixed effect diverging (quasi-separation: a level with all-zero "
        "counts) the max|d eta| stopping rule never passes: 'PIRLS did not converge'; lme4 stops on the "
        "relative change of the penalized deviance"
    ),
}

XFAIL: dict[str, tuple[str, ...]] = {
    "lme4_dyestuff": ("bare-bar",),
    "lme4_dyestuff2": ("bare-bar",),
    "mlmRev_mmmec": ("offset-arg",),
    "lme4_verbagg_2way": ("factor-response",),
    "lme4_bacteria_wk2": ("factor-response",),
    "lme4_trees513": ("factor-response",),
    "mlmRev_contra_fm1": ("factor-response",),
    "mlmRev_contra_fm2": ("factor-response",),
    "mmjl_contra1": ("factor-response",),
    "mmjl_contra2": ("factor-response",),
    "mmjl_verbagg": ("factor-response",),
    "mass_bacteria": ("factor-response", "logical-expression-names"),
    "lme4_orthodont_nsex": ("reml-stops-short",),
    "mmjl_oxide2": ("reml-stops-short",),
    "nlme_wafer": ("doublebar-term-order", "reml-stops-short"),
    "lme4_grouse_full": ("glmm-stops-short",),
    "lme4_offset_glmer": ("pirls-warm-start", "glmm-stops-short"),
    "lme4_mastitis": ("pirls-divergent-fixef", "ordered-contrasts"),
}

TOLERANCES: dict[str, tuple[dict[str, float], str]] = {
    "lme4_mastitis": (
        {"fixef": math.inf, "fitted": 1e-3},
        "quasi-complete separation: birth 1989 has 33 rows, all with NCM = 0, so the birth contrasts "
        "diverge and lme4's values along them (and their SEs) depend on where its optimizer stops; the "
        "criterion, theta, VarCorr and the sire/herd modes are still defined",
    ),
}
for _tol, _why in TOLERANCES.values():
    if "fixef" in _tol and math.isinf(_tol["fixef"]):
        _tol.setdefault("se_glmer", math.inf)


def options(case_id: str) -> CaseOptions:
    tol, why = TOLERANCES.get(case_id, ({}, None))
    return CaseOptions(python_args=PYTHON_ARGS.get(case_id), tolerances=dict(tol), reason=why)
