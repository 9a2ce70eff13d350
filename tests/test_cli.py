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
