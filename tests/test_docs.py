"""The documentation site builds with warnings as errors, and what its pages show runs (issue 17).

* ``mkdocs build --strict`` of mkdocs.yml into a temporary folder: Markdown pages, the rendered
  notebooks and the API reference from the numpy docstrings; any warning fails the build;
* every row of the lme4-to-hierbayes dictionary (docs/lme4-dictionary.md): its hierbayes form is run
  after the page's setup block;
* every Python block of the priors and glmer pages runs, with its assertions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.cpu_budget(120, reason="mkdocs renders every page, the six notebooks and the API reference")
def test_site_builds_strict(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1", "HIERBAYES_DOCS_EXECUTE": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d",
         str(tmp_path / "site")],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    site = tmp_path / "site"
    for page in ("getting-started", "lme4-dictionary", "priors", "glmer-precision", "errors", "api"):
        assert (site / page / "index.html").is_file(), page
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name
    api = (site / "api" / "index.html").read_text()
    for name in ("hierbayes.model.lmer", "hierbayes.fits.lmer.LmerFit", "hierbayes.plots.caterpillar.caterpillar"):
        assert f'id="{name}"' in api, name


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row; pipes inside backticks are not separators."""
    cells, current, code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(current.strip())
            current = ""
        else:
            current += ch
    return [*cells, current.strip()]


def dictionary_rows() -> list[tuple[str, str]]:
    """(R call, hierbayes form) of every table row of the dictionary page."""
    rows = []
    for line in (DOCS / "lme4-dictionary.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        code = re.fullmatch(r"`([^`]+)`", cells[1])
        assert code, f"the hierbayes column of this row is not one code span: {line}"
        rows.append((cells[0], code.group(1)))
    return rows


@pytest.fixture(scope="module")
def dictionary_namespace() -> dict:
    setup = PYTHON_BLOCK.findall((DOCS / "lme4-dictionary.md").read_text())[0]
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(setup, namespace)
    return namespace


ROWS = dictionary_rows()


def test_the_dictionary_covers_the_calls_users_know() -> None:
    text = " ".join(r for r, _ in ROWS)
    for call in ("lmer(", "glmer(", "fixef(", "ranef(", "coef(", "VarCorr(", "sigma(", "predict(", "simulate(",
                 "confint(", "anova(", "ranova(", "profile(", "bootMer(", "getME(", "lmerControl", "glmerControl",
                 "bmb.Model", "model.fit(", "bmb.Prior", "az.summary", "az.loo", "az.plot_trace"):  # fmt: skip
        assert call in text, call
    assert len(ROWS) >= 60


@pytest.mark.parametrize("r_call, form", ROWS, ids=[r for r, _ in ROWS])
def test_each_dictionary_row_runs(r_call: str, form: str, dictionary_namespace: dict) -> None:
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(form, dict(dictionary_namespace))
    plt.close("all")


@pytest.mark.parametrize("page", ["priors.md", "glmer-precision.md"])
def test_python_blocks_of_a_page_run(page: str) -> None:
    blocks = PYTHON_BLOCK.findall((DOCS / page).read_text())
    assert blocks
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(block, namespace)


def test_no_internal_labels_of_the_teaching_materials_anywhere() -> None:
    """Text refers to the books, courses and data sets by name, never by the project's internal labels."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    label = re.compile(r"(?i)\bseeds? ?0\d\d\b|\bseed[- ]documents?\b|\bseed_?0\d\d\b")
    found = []
    for name in files:
        path = ROOT / name
        if path.suffix in (".csv", ".json", ".png", ".nc", ".parquet") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{name}: {m.group(0)}" for m in label.finditer(text)]
    assert not found, found


FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def test_readme_sample_outputs_are_what_the_code_prints() -> None:
    """Each ```text block of the README is the output of the ```python block just before it.

    The Python blocks run in order in one namespace, up to the last one whose output is shown.
    """
    import contextlib
    import io

    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer((ROOT / "README.md").read_text())]
    pairs = [i for i, (kind, _) in enumerate(blocks) if kind == "text" and i > 0 and blocks[i - 1][0] == "python"]
    assert len(pairs) >= 2, "the README shows sample outputs"
    namespace: dict = {}
    for i, (kind, source) in enumerate(blocks[: pairs[-1]]):
        if kind != "python":
            continue
        out = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore")
            exec(source, namespace)
        if i + 1 in pairs:
            shown = blocks[i + 1][1]
            printed = out.getvalue()
            norm = lambda t: [ln.rstrip() for ln in t.rstrip("\n").splitlines()]  # noqa: E731
            assert norm(printed) == norm(shown), f"README block after:\n{source}\nprints:\n{printed}"
