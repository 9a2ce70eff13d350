"""A default Bayesian fit is quiet in a script (no output, only hierbayes' warnings) and shows progress in Jupyter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.refdata import ROOT

SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import hierbayes as hb

    sleep = hb.datasets.load("sleepstudy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning raised, including those Python hides by default
        fit = hb.bayes("Reaction ~ Days + (1 | Subject)", sleep, draws=150, tune=150, chains=2, random_seed=1)
    for stream in (sys.stdout, sys.stderr):
        print("=== progressbar=True", file=stream, flush=True)
    hb.bayes("Reaction ~ Days + (1 | Subject)", sleep, draws=50, tune=50, chains=2, random_seed=1, warn=False,
             progressbar=True)
    with open(sys.argv[1], "w") as f:
        json.dump([[w.category.__module__, w.category.__name__, str(w.message)] for w in caught], f)
    """
)


def test_a_default_fit_in_a_script_prints_nothing_and_warns_only_hierbayes_warnings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"  # rich truncates the bar's columns ("draw…") in a narrow terminal
    out = tmp_path / "warnings.json"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    quiet_out, _, bar_out = proc.stdout.partition("=== progressbar=True\n")
    quiet_err, _, bar_err = proc.stderr.partition("=== progressbar=True\n")
    assert quiet_out == quiet_err == "", f"a default fit printed:\n{quiet_out[-2000:]}\n{quiet_err[-2000:]}"
    # the bar's speed column ("draws/s", cut to "draws…" when the numbers are wide on a slow machine)
    assert re.search(r"draws(/s|…)", bar_out + bar_err), "progressbar=True showed no progress"
    caught = json.loads(out.read_text())
    foreign = [w for w in caught if not w[0].startswith("hierbayes")]
    assert foreign == [], f"warnings that are not hierbayes': {foreign}"


def test_jupyter_shows_a_progress_bar_and_progressbar_false_turns_it_off(tmp_path):
    pytest.importorskip("ipywidgets")
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    write_kernel_spec(path=tmp_path / "k", overrides={"env": {"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}})
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path)])
    setup = "import os\nos.environ.pop('PYTEST_CURRENT_TEST', None)\nimport hierbayes as hb\n"
    call = 'hb.bayes("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"), draws=50, tune=50, chains=2, ' \
           'random_seed=1, warn=False{})'  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(call.format("") + ";"),
                nbformat.v4.new_code_cell(call.format(", progressbar=False") + ";")]  # fmt: skip
    NotebookClient(nb, km=KernelManager(kernel_name="k", kernel_spec_manager=specs), timeout=300).execute()
    default, off = nb.cells[1].outputs, nb.cells[2].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in default), default
    assert off == [], off
