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

ROOT_CAUSES: dict[str, str] = {}  # none left: every case fits and matches

XFAIL: dict[str, tuple[str, ...]] = {}

TOLERANCES: dict[str, tuple[dict[str, float], str]] = {
    "lme4_culcita": (
        {"se_glmer": 3e-4},
        "SEs from finite differences with steps of 1e-4 (lme4's deriv12, as lme4 and hierbayes take them) are "
        "noise-limited here: the deviance's rounding noise (~1e-12) over steps of 1e-4 squared, against "
        "curvatures of ~0.3, moves them by ~1e-4 between points 1e-5 SE apart; make_external.R could not "
        "extrapolate se_smooth for this case, and lme4's own SE is 7e-5 below hierbayes' Hessian at lme4's "
        "own optimum (1.812924 against 1.813059; 1.813048 with steps of 3e-4 to 3e-3)",
    ),
    "mmjl_verbagg": (
        {"se_glmer": 3e-4},
        "SEs from finite differences of the Laplace deviance (steps of 1e-4, lme4's deriv12) are noise-limited: "
        "the compiled one-pass weighted system (hierbayes/linalg/_weighted_numba.py) sums the cross-products in "
        "another order than NumPy's bincounts, which moves the deviance by ~1e-11 (8151.39971974201 against "
        "8151.3997197420285 at the optimum) and SE[(Intercept)] by 1.3e-4 (0.40658442 against 0.40653181; "
        "lme4's tight fit: 0.40653359)",
    ),
    "lme4_mastitis": (
        {"fixef": math.inf, "fitted": 1e-3},
        "quasi-complete separation: birth 1989 has 33 rows, all with NCM = 0, so the birth contrasts "
        "diverge and lme4's values along them (and their SEs) depend on where its optimizer stops; the "
        "criterion, theta, VarCorr and the sire/herd modes are still defined. The fitted means of the other "
        "rows are too, but lme4's tight fit has them 2e-5 (relative) from the limit, which is the fit without "
        "the 33 rows: hierbayes matches that limit to 1e-7 (criterion 4e-10, theta 6e-7)",
    ),
}
for _tol, _why in TOLERANCES.values():
    if "fixef" in _tol and math.isinf(_tol["fixef"]):
        _tol.setdefault("se_glmer", math.inf)


def options(case_id: str) -> CaseOptions:
    tol, why = TOLERANCES.get(case_id, ({}, None))
    return CaseOptions(python_args=PYTHON_ARGS.get(case_id), tolerances=dict(tol), reason=why)
