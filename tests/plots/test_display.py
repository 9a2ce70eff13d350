"""Figures show in Jupyter by themselves, exactly once, and never touch pyplot (issue 17).

A real kernel (ipykernel, through nbclient) of this interpreter runs cells with no magics and no
``MPLBACKEND`` of ours, as a fresh notebook would: a cell ending in ``hb.plots.caterpillar(fit)``
must give exactly one image/png output; so must ``fig`` in a later cell; and with ``%matplotlib
inline`` active (pyplot's inline backend and its display formatter), still exactly one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import hierbayes as hb
from hierbayes._figure import HierbayesFigure
from tests.tables import fits

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import hierbayes as hb\nfit = hb.lmer('Reaction ~ Days + (Days | Subject)', hb.datasets.load('sleepstudy'))"
CELLS = {
    "setup": SETUP,
    "bare": "hb.plots.caterpillar(fit)",
    "assign": "fig = hb.plots.shrinkage(fit)",
    "later": "fig",
    "inline": "%matplotlib inline\nhb.plots.caterpillar(fit)",
    "inline later": "fig2 = hb.plots.forest(fit)\nfig2",
    "pyplot": "import matplotlib.pyplot as plt\nlen(plt.get_fignums())",
}


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def test_figures_display_once_in_a_fresh_kernel(tmp_path: Path) -> None:
    write_kernel_spec(path=tmp_path / "hb-display", overrides={"display_name": "hierbayes display test"})
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path)])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS.values()])
    km = KernelManager(kernel_name="hb-display", kernel_spec_manager=specs)
    assert km.kernel_spec.argv[0] == sys.executable
    # the kernel's environment as a user's: no MPLBACKEND (ipykernel then picks the inline backend), hierbayes
    # importable from this checkout
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    client = NotebookClient(nb, km=km, timeout=180, allow_errors=False)
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    counts = {name: _images(cell) for name, cell in zip(CELLS, nb.cells, strict=True)}
    assert counts == {"setup": 0, "bare": 1, "assign": 0, "later": 1, "inline": 1, "inline later": 1, "pyplot": 0}
    fignums = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert fignums == "0", f"{fignums} figures left open in pyplot"


PLOTS = {
    "caterpillar": lambda r, p: hb.plots.caterpillar(r, p),
    "shrinkage": lambda r, p: hb.plots.shrinkage(r, p),
    "pooling": lambda r, p: hb.plots.pooling(r, p, levels=["308", "309"]),
    "ppc": lambda r, p: hb.plots.ppc(r, p, nsim=5),
    "diagnostics": lambda r, p: hb.plots.diagnostics(r),
    "trace": lambda r, p: hb.plots.diagnostics(p, kind="trace"),
    "rank": lambda r, p: hb.plots.diagnostics(p, kind="rank"),
    "forest": lambda r, p: hb.plots.forest(r, p, intervals="wald"),
    "profile": lambda r, p: r.profile(which=".sigma").plot(),
}


@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_returns_a_displayable_figure_and_leaks_nothing(name: str) -> None:
    import matplotlib.pyplot as plt

    reml, post = fits.reml(fits.SLEEP, "sleepstudy"), fits.bayes()
    before = plt.get_fignums()
    fig = PLOTS[name](reml, post)
    assert isinstance(fig, HierbayesFigure)
    assert fig._repr_png_()[:4] == b"\x89PNG"
    assert plt.get_fignums() == before, f"{name} left a pyplot figure open"
