"""Execute every notebook in notebooks/ top to bottom in fast mode, so the notebooks never rot.

Each notebook runs in a fresh kernel of *this* interpreter (a kernel spec written for
``sys.executable``, so no other Jupyter installation on the machine is picked up), with
``HIERBAYES_FAST=1`` (few draws, few bootstrap replicates) and ``MPLBACKEND=Agg`` in the kernel's
environment. A failing cell fails the test with the notebook name, the cell's number and source,
and the error. The committed notebooks must carry no outputs, no magics (figures show without
``%matplotlib inline``: tests/plots/test_display.py) and no internal labels of the teaching materials
they retell; their claims are asserted in code cells, so a failing claim fails the run.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "hierbayes-notebook-tests"
#: seconds any one cell may take in fast mode (the slowest cells sample a few hundred draws)
CELL_TIMEOUT = 300
PROBE = "import os, sys\nprint(sys.executable)\nprint(os.environ.get('HIERBAYES_FAST'), os.environ.get('MPLBACKEND'))"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_the_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_sleepstudy_pooling.ipynb",
        "02_high_school_and_beyond.ipynb",
        "03_nested_and_crossed.ipynb",
        "04_counts_ppc_and_comparison.ipynb",
        "05_predictions_and_marginal_means.ipynb",
        "06_longitudinal_structures.ipynb",
        "07_families.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_has_fast_mode(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: cells {with_outputs} have outputs; clear them before committing"
    assert nb.cells[0].cell_type == "markdown", f"{path.name} should open with a markdown introduction"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert 'os.environ.get("HIERBAYES_FAST") == "1"' in first_code.source, f"{path.name}: no fast-mode switch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_magics_no_internal_labels_and_asserts_its_claims(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    magics = [line for src in code for line in src.splitlines() if line.lstrip().startswith(("%", "!"))]
    assert not magics, f"{path.name}: magics {magics}"
    text = "\n".join(c.source for c in nb.cells)
    labels = re.findall(r"(?i)\bseeds? ?0\d\d\b|seed[ -]doc" + "uments?", text)
    assert not labels, f"{path.name}: cite the book, course or data set, not {labels}"
    asserts = sum(line.lstrip().startswith("assert ") for src in code for line in src.splitlines())
    assert asserts >= 10, f"{path.name}: only {asserts} assertions back its prose"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernel spec that runs ipykernel with this interpreter, in fast mode, with a non-interactive backend."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(
        path=kernels / KERNEL,
        overrides={"display_name": "hierbayes notebook tests", "env": {"HIERBAYES_FAST": "1", "MPLBACKEND": "Agg"}},
    )
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.cpu_budget(240, reason="a whole analysis in a kernel; notebook 04 samples three count models in full")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_fast_mode(path: Path, kernel_specs: KernelSpecManager):
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    assert km.kernel_spec.argv[0] == sys.executable
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        failure = _failure(path, nb, exc)
    if failure:  # outside the except block, so the report is not chained to nbclient's ANSI-coloured one
        pytest.fail(failure, pytrace=False)
    probe = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream").split()
    assert os.path.realpath(probe[0]) == os.path.realpath(sys.executable), f"kernel ran {probe[0]}"
    assert probe[1:] == ["1", "Agg"], f"kernel environment: HIERBAYES_FAST, MPLBACKEND = {probe[1:]}"


def _failure(path: Path, nb, exc: Exception) -> str:
    """The failing cell (numbered as in the notebook file), its source and its error."""
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            err = errors[0]
            tb = ANSI.sub("", "\n".join(err.get("traceback", [])))
            return (
                f"{path.name}: cell {index - 1} (counting from 0, markdown cells included) raised "
                f"{err.ename}: {err.evalue}\n"
                f"--- cell source ---\n{cell.source}\n--- traceback ---\n{tb}"
            )
    return f"{path.name}: {type(exc).__name__}: {ANSI.sub('', str(exc))}"
