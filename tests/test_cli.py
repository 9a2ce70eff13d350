"""The command line: listing specs, running one, quick fits, exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hierbayes.cli import EXIT_BAD_INPUT, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[1]


def test_models_lists_every_bundled_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == EXIT_OK
    out = capsys.readouterr().out
    for spec in (ROOT / "models").glob("*.toml"):
        assert spec.stem in out


def test_run_writes_tables_plots_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "sleep.toml"
    spec.write_text(
        (ROOT / "models" / "sleepstudy.toml")
        .read_text()
        .replace('engines = ["reml", "bayes"]', 'engines = ["reml", "ml"]')
        .replace(
            'tables = ["summary", "compare", "coef_table", "pooling"]', 'tables = ["summary", "compare", "confint"]'
        )
        .replace(
            'plots = ["shrinkage", "caterpillar", "pooling", "ppc", "forest", "diagnostics"]', 'plots = ["forest"]'
        )
    )
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == EXIT_OK
    out_dir = tmp_path / "out" / "sleepstudy"
    report = (out_dir / "report.md").read_text()
    assert "REML criterion at convergence: 1743.6" in report
    assert "![forest](plots/forest.png)" in report
    assert (out_dir / "plots" / "forest.png").stat().st_size > 10_000
    assert (out_dir / "tables" / "compare.csv").is_file()
    printed = capsys.readouterr().out
    assert f"Outputs in {out_dir}" in printed and "report.md" in printed


def test_bad_spec_and_bad_formula_exit_with_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing.toml")]) == EXIT_BAD_INPUT
    assert "no spec file" in capsys.readouterr().err
    csv = tmp_path / "d.csv"
    csv.write_text("y,x,g\n1,1,a\n2,2,a\n3,3,b\n4,5,b\n")
    assert main(["fit", "y ~ x + (1 | gg)", "--data", str(csv)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown column 'gg'" in err and "did you mean 'g'" in err


def test_fit_prints_the_summary_from_a_console_script(tmp_path: Path) -> None:
    data = ROOT / "hierbayes" / "datasets" / "data" / "sleepstudy.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "hierbayes.cli", "fit", "Reaction ~ Days + (1 | Subject)", "--data", str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "REML criterion at convergence: 1786.5" in proc.stdout


# --- bad input: exit status 2 and one line, no traceback (issue 15) ---------------------------------
def _run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hierbayes.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)},
    )


def _one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


SPEC = '[data]\ndataset = "sleepstudy"\n{data}[model]\nformula = "{formula}"\n[fit]\nengines = ["reml"]\n{extra}'


def _spec(tmp_path: Path, name: str, formula: str = "Reaction ~ Days + (1 | Subject)", data: str = "",
          extra: str = "") -> str:  # fmt: skip
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(formula=formula, data=data, extra=extra))
    return str(path)


def test_bad_specs_exit_2_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\n")
    _one_line_error(_run_cli("run", str(broken)), "broken.toml: not valid TOML")
    _one_line_error(_run_cli("run", _spec(tmp_path, "unknown_key", extra="[fit2]\nx = 1\n")), "unknown key 'fit2'")
    _one_line_error(
        _run_cli("run", _spec(tmp_path, "column", formula="Reaction ~ Dayz + (1 | Subject)"), "--out", str(tmp_path)),
        "column.toml: unknown column 'Dayz' in the fixed effects; did you mean 'Days'?",
        "the data has: Reaction, Days, Subject",
    )
    _one_line_error(
        _run_cli("run", _spec(tmp_path, "query", data='query = "Days >"\n'), "--out", str(tmp_path)),
        "query.toml: [data] the query 'Days >' could not be evaluated",
    )
    _one_line_error(
        _run_cli("run", _spec(tmp_path, "query_col", data='query = "Dayz > 2"\n'), "--out", str(tmp_path)),
        "unknown column 'Dayz' in the query",
    )
    _one_line_error(_run_cli("run", _spec(tmp_path, "draws", extra="[bayes]\ndraws = 0\n")),
                    "draws.toml: [bayes] draws must be a whole number >= 1, not 0")  # fmt: skip
    _one_line_error(_run_cli("run", _spec(tmp_path, "accept", extra="[bayes]\ntarget_accept = 1.5\n")),
                    "target_accept must be a number strictly between 0 and 1")  # fmt: skip
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_error(_run_cli("run", "sleepstudy", "--out", str(afile)), "is a file, not a folder")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _one_line_error(_run_cli("fit", "y ~ x + (1 | g)", "--data", str(empty)), "could not be read as CSV")
    _one_line_error(_run_cli("fit", "y ~ x", "--data", str(afile), "--draws", "0"), "--draws: must be a whole number")
    _one_line_error(_run_cli("frobnicate"), "invalid choice: 'frobnicate'")


def test_a_valid_query_in_a_spec_uses_R_syntax(tmp_path: Path) -> None:
    from hierbayes.spec import load_spec

    spec = load_spec(_spec(tmp_path, "q", data="query = \"Days >= 2 && !(Subject %in% c('308', '309'))\"\n"))
    df, _ = spec.load_data()
    assert len(df) == 16 * 8 and set(df["Days"]) == set(range(2, 10))


def test_models_into_a_closed_pipe_is_quiet() -> None:
    """`hierbayes models | head -1`: exit status 0 and no BrokenPipeError, through a real pipe."""
    cmd = f"set -o pipefail; {sys.executable} -m hierbayes.cli models | head -1"
    proc = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert "BrokenPipeError" not in proc.stderr and proc.stderr == ""
    # a big listing into an early-closing reader: the writer's own exit status is 0 too
    writer = subprocess.Popen(
        [sys.executable, "-c", "from hierbayes.cli import main; import sys\nfor _ in range(200): main(['models'])"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    reader = subprocess.run(["head", "-c", "10"], stdin=writer.stdout, capture_output=True)
    writer.stdout.close()
    err = writer.stderr.read().decode()
    assert writer.wait() == 0, err
    assert reader.returncode == 0 and "BrokenPipeError" not in err
