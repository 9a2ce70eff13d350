"""The package's layers, checked on its source (an AST walk, tests/importgraph.py), so they cannot erode.

The table is README.md's "Design" table: each layer may import the layers below it and itself, never
above; the groups of a layer marked independent never import each other (the three engines, the three
parts of the numerical core, inference and tables). Every import counts, the ones inside functions too,
and the ones under ``if TYPE_CHECKING:``: they never run, but a type checker follows them, so they form no
cycle and go no higher than the run-time imports (an annotation naming a class of a higher layer uses the
Protocol of ``hierbayes._types``). Only the third-party rules look at run-time imports alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.importgraph import PACKAGE, Import, cycles, graph, imports

#: (layer, its groups (packages or modules), whether its groups are independent of each other), bottom first
LAYERS: list[tuple[str, tuple[str, ...], bool]] = [
    ("base", ("hierbayes.errors", "hierbayes._warnings", "hierbayes._version", "hierbayes._args",
              "hierbayes._threads", "hierbayes._progress", "hierbayes._figure", "hierbayes._types", "hierbayes.query",
              "hierbayes.datasets"), False),
    ("formula", ("hierbayes.formula",), False),
    ("design", ("hierbayes.design", "hierbayes.structures"), False),
    ("numerical core", ("hierbayes.linalg", "hierbayes.optim", "hierbayes.families"), True),
    ("engines", ("hierbayes.reml", "hierbayes.glmm", "hierbayes.bayesian", "hierbayes.sources"), True),
    ("inference and tables", ("hierbayes.inference", "hierbayes.tables"), True),
    ("fits", ("hierbayes.fits", "hierbayes._serialize"), False),
    ("model", ("hierbayes.model",), False),
    ("outputs", ("hierbayes.io", "hierbayes.plots", "hierbayes.interpret", "hierbayes.simulate", "hierbayes.spec",
                 "hierbayes.report"), False),
    ("running", ("hierbayes.runner", "hierbayes.cli", "hierbayes"), False),
]  # fmt: skip

#: third-party packages each group's modules import at module level (the standard library is always allowed)
THIRD_PARTY: dict[str, set[str]] = {
    "hierbayes.formula": set(),
    "hierbayes.linalg": {"numpy", "scipy", "numba"},  # numba: only linalg._levels_numba/_weighted_numba, deferred
    "hierbayes.optim": {"numpy", "scipy", "nlopt"},
    "hierbayes.families": {"numpy", "scipy"},
    "hierbayes.reml": {"numpy", "scipy"},
    "hierbayes.glmm": {"numpy", "scipy", "numba"},  # numba: only glmm._canonical_numba, deferred
    "hierbayes.design": {"numpy", "scipy", "pandas", "formulaic"},
}

#: what imports inside functions are for: keeping ``import hierbayes`` light of these
#: (nutpie: the sampler of the compiled Bayesian backend; it imports ArviZ)
HEAVY = {"pymc", "pytensor", "matplotlib", "arviz", "arviz_base", "arviz_stats", "arviz_plots", "xarray", "dask",
         "polars", "numba", "nutpie"}  # fmt: skip
#: ... and these modules of lighter packages: tqdm's Jupyter bar imports IPython and ipywidgets
HEAVY_MODULES = {"tqdm.notebook"}

#: engines whose whole import closure (their own and what they import of hierbayes) is NumPy/SciPy; numba is the
#: compiled per-level Schur update of linalg, loaded only for couplings too big for the stored NumPy pattern
NUMPY_SCIPY = {"hierbayes.linalg": {"numba"}, "hierbayes.reml": {"nlopt", "threadpoolctl", "numba"},
               "hierbayes.glmm": {"nlopt", "threadpoolctl", "numba"}}  # fmt: skip


def group_of(module: str) -> tuple[int, str]:
    """The layer's index and the group a module belongs to (the longest group name that contains it)."""
    best = None
    for i, (_, groups, _) in enumerate(LAYERS):
        for g in groups:
            if (module == g or module.startswith(g + ".")) and (best is None or len(g) > len(best[1])):
                best = (i, g)
    if best is None:
        raise LookupError(module)
    return best


FOUND = imports(PACKAGE)
RUNTIME = [i for i in FOUND if not i.type_checking]


def _where(i: Import) -> str:
    return f"{i.source} line {i.line} imports {i.target}"


def test_every_module_has_a_layer() -> None:
    missing = []
    for name in {i.source for i in FOUND}:
        try:
            group_of(name)
        except LookupError:
            missing.append(name)
    assert not missing, f"modules without a layer in LAYERS (and README.md's table): {sorted(missing)}"


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    found = cycles(graph(FOUND))
    assert not found, f"import cycles: {found}"


def test_no_import_cycles_counting_type_checking_imports() -> None:
    found = cycles(graph(FOUND, type_checking=True))
    assert not found, f"import cycles through imports under TYPE_CHECKING: {found}"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    bad = []
    for i in FOUND:  # TYPE_CHECKING imports included
        if not i.target.startswith("hierbayes"):
            continue
        (src_layer, src_group), (dst_layer, dst_group) = group_of(i.source), group_of(i.target)
        if dst_layer > src_layer:
            bad.append(f"{_where(i)} (layer '{LAYERS[dst_layer][0]}' is above '{LAYERS[src_layer][0]}')")
        elif dst_layer == src_layer and LAYERS[src_layer][2] and src_group != dst_group:
            bad.append(f"{_where(i)} ({src_group} and {dst_group} are independent)")
    assert not bad, "\n".join(bad)


def test_third_party_imports_of_the_lower_layers() -> None:
    stdlib = sys.stdlib_module_names
    bad = []
    for i in RUNTIME:
        if i.deferred or i.target.startswith("hierbayes") or i.target in stdlib:
            continue
        allowed = THIRD_PARTY.get(group_of(i.source)[1])
        if allowed is not None and i.target not in allowed:
            bad.append(_where(i))
    assert not bad, "\n".join(bad)


def test_the_engines_import_closure_is_numpy_scipy() -> None:
    """The numerical core and the REML/GLMM engines reach no pandas, formulaic or PyMC, even through others."""
    edges = graph(FOUND)
    direct: dict[str, set[str]] = {}
    for i in RUNTIME:
        if not i.target.startswith("hierbayes") and not i.deferred and i.target not in sys.stdlib_module_names:
            direct.setdefault(i.source, set()).add(i.target)
    for group, extra in NUMPY_SCIPY.items():
        seen, todo = set(), [m for m in edges if m == group or m.startswith(group + ".")]
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += edges.get(m, ())
        reached = set().union(*(direct.get(m, set()) for m in seen))
        assert reached <= {"numpy", "scipy"} | extra, f"{group} reaches {sorted(reached - {'numpy', 'scipy'})}"


def test_imports_inside_functions_only_keep_import_hierbayes_light() -> None:
    """A deferred import loads PyMC, PyTensor, matplotlib, ArviZ (xarray), Dask or tqdm's Jupyter bar, and says
    why on its line."""
    edges = graph(FOUND)
    top_level: dict[str, set[str]] = {}
    for i in RUNTIME:
        if not i.deferred:
            top_level.setdefault(i.source, set()).add(i.target.split(".")[0])

    def heavy(module: str, seen: set[str]) -> bool:
        if module.split(".")[0] in HEAVY:
            return True
        if module in seen or not module.startswith("hierbayes"):
            return False
        seen.add(module)
        return bool(top_level.get(module, set()) & HEAVY) or any(heavy(m, seen) for m in edges.get(module, ()))

    def heavy_import(i: Import) -> bool:
        return heavy(i.target, set()) or i.module in HEAVY_MODULES

    bad = [f"{_where(i)}: {'no reason given' if heavy_import(i) else 'not a heavy package'}"
           for i in RUNTIME if i.deferred and (not heavy_import(i) or not i.comment)]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_import_hierbayes_is_light() -> None:
    code = "import sys, hierbayes; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in %r)))"
    out = subprocess.run([sys.executable, "-c", code % (HEAVY,)], capture_output=True, text=True, check=True,
                         cwd=Path(PACKAGE).parent, env={"PYTHONPATH": str(Path(PACKAGE).parent)})  # fmt: skip
    assert out.stdout.split() == [], f"import hierbayes loads {out.stdout.split()[:10]}"


def test_the_readme_table_is_this_table() -> None:
    """README.md's design table names each layer's groups in this order."""
    text = (Path(PACKAGE).parent / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`hierbayes" in line]
    for layer, groups, _ in LAYERS:
        row = next((r for r in rows if r.split("|")[1].strip().removesuffix(" (independent)") == layer), None)
        assert row is not None, f"README.md's design table has no row '{layer}'"
        cell = row.split("|")[2]
        for g in groups:
            assert f"`{g}`" in cell, f"README.md's row '{layer}' does not name {g}"


@pytest.mark.parametrize("source", ["hierbayes/reml/objective.py", "hierbayes/linalg/cholesky.py"])
def test_the_walk_sees_the_imports(source: str) -> None:
    """The AST walk finds these modules' imports (a walk that sees nothing would pass every rule)."""
    name = source.removesuffix(".py").replace("/", ".")
    assert any(i.source == name and i.target.startswith(("hierbayes", "numpy")) for i in FOUND)
