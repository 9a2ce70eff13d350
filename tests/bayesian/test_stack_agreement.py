"""No result changes across the move to PyMC 6 / PyTensor 3 / ArviZ 1.x (issue 16).

``tests/reference/old_stack_quantiles.json`` holds the posterior quantiles (5, 25, 50, 75 and 95 %)
and their Monte Carlo standard errors of every parameter, random effects included, of three fits
made by hierbayes on the old stack (its ``meta`` gives the versions); ``benchmarks/stack_agreement.py``
made it and describes the cases. Here the same fits on the current stack must agree within Monte
Carlo error: ``|q_new - q_old| / sqrt(mcse_old^2 + mcse_new^2)`` at most ``Z_MAX`` for every
parameter and quantile (about 2,000 comparisons; |z| > 4.5 has probability 7e-6 each).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tests.refdata import ROOT

REFERENCE = ROOT / "tests" / "reference" / "old_stack_quantiles.json"


def _script():
    spec = importlib.util.spec_from_file_location("stack_agreement", ROOT / "benchmarks" / "stack_agreement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sleepstudy", "hsb", "cbpp"])
def test_posterior_quantiles_equal_the_old_stacks_within_monte_carlo_error(case):
    script = _script()
    ref = json.loads(REFERENCE.read_text())
    assert ref["meta"]["versions"]["pymc"].startswith("5.") and list(ref["meta"]["probs"]) == list(script.PROBS)
    assert ref["meta"]["settings"] == script.SETTINGS
    old = ref["cases"][case]["parameters"]
    names, draws = script.draws_of(script.fit_case(case))
    assert names == list(old)
    q_new, se_new = script.quantiles_and_mcse(draws)
    q_old = np.array([old[n]["quantiles"] for n in names])
    se_old = np.array([old[n]["mcse"] for n in names])
    z = np.abs(q_new - q_old) / np.sqrt(se_old**2 + se_new**2)
    worst = np.unravel_index(np.nanargmax(z), z.shape)
    assert np.nanmax(z) <= script.Z_MAX, (
        f"{names[worst[0]]} quantile {script.PROBS[worst[1]]}: old {q_old[worst]:.4g}, new {q_new[worst]:.4g}, "
        f"z = {z[worst]:.2f}"
    )
