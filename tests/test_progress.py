"""Bootstrap and profile follow hb.bayes' progress convention (issue 17): a bar in Jupyter, nothing in a script.

``progressbar=None`` (default): an ipywidgets bar in a Jupyter kernel, nothing in a plain script;
``progressbar=True``: a bar anywhere; ``progressbar=False`` (or the older ``progress=False``): none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from hierbayes._progress import resolve, show_progress
from hierbayes.errors import ArgumentError
from tests.refdata import ROOT

SETUP = (
    "import os\nos.environ.pop('PYTEST_CURRENT_TEST', None)\nimport hierbayes as hb\n"
    "fit = hb.lmer('Reaction ~ Days + (1 | Subject)', hb.datasets.load('sleepstudy'))\n"
)
CALLS = {
    "bootstrap": "fit.bootstrap(nsim=40, seed=1, n_jobs=1{});",
    "profile": "fit.profile(which='.sigma'{});",
    "confint boot": "fit.confint(method='boot', nsim=40, seed=1, n_jobs=1{});",
    "confint profile": "fit.confint(parm='.sigma'{});",
}


def test_a_plain_script_prints_nothing_unless_asked(tmp_path) -> None:
    script = SETUP + "\n".join(c.format("") for c in CALLS.values())
    script += "\nimport sys\nprint('=== asked', file=sys.stderr, flush=True)\n"
    script += "\n".join(c.format(", progressbar=True") for c in CALLS.values())
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    quiet, _, asked = proc.stderr.partition("=== asked\n")
    assert proc.stdout == "" and quiet == "", f"a default call printed:\n{proc.stdout}\n{quiet}"
    # one bar per asked call (tqdm may draw the last state twice on a busy machine)
    assert len(re.findall(r"(?:^|\r)bootstrap: +0%\|", asked, re.M)) == 2, asked
    assert len(re.findall(r"(?:^|\r)profile: +0%\|", asked, re.M)) == 2, asked
    assert "bootstrap: 100%" in asked and "profile: 100%" in asked, asked


def test_jupyter_shows_bars_and_progressbar_false_or_progress_false_turns_them_off(tmp_path) -> None:
    pytest.importorskip("ipywidgets")
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    write_kernel_spec(path=tmp_path / "k", overrides={"env": {"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}})
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path)])
    cells = [SETUP]
    for call in CALLS.values():
        old = ", progress=False" if "profile(" not in call else ", progressbar=False"  # profile had no progress=
        cells += [call.format(""), call.format(", progressbar=False"), call.format(old)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, km=KernelManager(kernel_name="k", kernel_spec_manager=specs), timeout=300).execute()
    for i, name in enumerate(CALLS):
        default, off, old = (nb.cells[1 + 3 * i + j].outputs for j in range(3))
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in default), (name, default)
        assert off == [] and old == [], (name, off, old)


def test_resolve_takes_either_spelling_but_not_two_different_answers() -> None:
    assert show_progress(None) is False  # pytest is not an interactive session
    assert resolve(None, True) is True and resolve(False, None) is False
    with pytest.raises(ArgumentError, match="not both"):
        resolve(True, False, "bootstrap")
    with pytest.raises(ArgumentError, match="progressbar must be"):
        show_progress("yes")
