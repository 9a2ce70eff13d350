"""The import graph of the hierbayes package, read from the source (an AST walk, nothing imported).

Every ``import`` counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``
(they never run). An import of ``a.b.c`` is an edge to ``a.b.c`` and to the packages ``a.b`` and ``a``
that Python runs first, except the importing module's own parent packages (they are already running when
it is imported). ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``.

Run as a script to print the measures that tests/test_layers.py holds to their rules, for any tree::

    python tests/importgraph.py [path/to/hierbayes]

It prints the largest import cycle (strongly connected component), the same counting the imports under
``TYPE_CHECKING`` too, and the imports inside functions: of hierbayes' own modules, and of other packages.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hierbayes"


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it stands and what it says."""

    source: str  # the importing module
    target: str  # the imported module (hierbayes' own resolved to a module of the tree), or a package name
    line: int
    deferred: bool  # inside a function
    type_checking: bool  # under ``if TYPE_CHECKING:``
    comment: str  # the line's comment (the reason a deferred import gives)
    module: str = ""  # the module as written (``tqdm.notebook`` where ``target`` is the package ``tqdm``)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (packages by their ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The longest module of the tree that ``name`` names (a name imported from a module is not one)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, deferred: bool, tc: bool) -> Iterator[tuple[ast.stmt, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, deferred, tc
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), deferred, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), deferred, tc)
        else:
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _walk(child, inner, tc)


def imports(root: Path = PACKAGE) -> list[Import]:
    """Every import statement of the package, one entry per imported name's module."""
    known = modules(root)
    top = root.name
    out = []
    for name, path in known.items():
        text = path.read_text()
        lines = text.splitlines()
        is_pkg = path.name == "__init__.py"
        for node, deferred, tc in _walk(ast.parse(text), False, False):
            comment = lines[node.lineno - 1].partition("#")[2].strip()
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if mod.split(".")[0] == top else mod for a in node.names]
            seen = set()
            for t in targets:
                target = _resolve(t, known) if t.split(".")[0] == top else t.split(".")[0]
                if target not in seen:  # one entry per statement and module
                    seen.add(target)
                    out.append(Import(name, target, node.lineno, deferred, tc, comment, t))
    return out


def graph(found: list[Import], type_checking: bool = False, top: str = "hierbayes") -> dict[str, set[str]]:
    """Module -> the package's modules it runs on import or call (see the module docstring)."""
    edges: dict[str, set[str]] = {}
    for imp in found:
        edges.setdefault(imp.source, set())
        if imp.target.split(".")[0] != top or (imp.type_checking and not type_checking):
            continue
        parts = imp.target.split(".")
        own_parents = {".".join(imp.source.split(".")[:i]) for i in range(1, imp.source.count(".") + 1)}
        targets = {imp.target} | {".".join(parts[:i]) for i in range(1, len(parts))} - own_parents
        edges[imp.source] |= {t for t in targets if t != imp.source}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out, key=len, reverse=True)


def main(root: Path) -> None:
    found = imports(root)
    for label, tc in (("import cycle (modules)", False), ("counting TYPE_CHECKING imports", True)):
        comps = cycles(graph(found, tc, root.name))
        print(f"{label}: largest {len(comps[0]) if comps else 0}, components {[len(c) for c in comps]}")
        if comps:
            print("   ", ", ".join(comps[0]))
    deferred = [i for i in found if i.deferred and not i.type_checking]
    own = [i for i in deferred if i.target.split(".")[0] == root.name]
    other = [i for i in deferred if i.target.split(".")[0] != root.name]
    print(f"deferred imports (inside functions): {len(deferred)}; of hierbayes' own modules {len(own)}, "
          f"of other packages {len(other)} ({len({i.target for i in other})} packages: "
          f"{', '.join(sorted({i.target for i in other}))})")  # fmt: skip
    print(f"deferred imports without a reason comment: {sum(1 for i in deferred if not i.comment)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE)
