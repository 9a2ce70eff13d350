"""The command line: listing specs, running one, quick fits, exit codes and messages."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import warnings
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
    _one_line(proc.returncode, proc.stderr, *fragments)


def _one_line(status: int, stderr: str, *fragments: str) -> None:
    assert status == EXIT_BAD_INPUT, stderr
    # `hierbayes run` reports its steps on stderr ("hierbayes run NAME: [1/7] loading data"); the error is one line
    steps = re.compile(r"^hierbayes run \S+: \[\d+/\d+\] ")
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not steps.match(ln)]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _one_line_error_in_process(capsys: pytest.CaptureFixture[str], args: list[str], *fragments: str) -> None:
    """As :func:`_one_line_error`, for ``main(args)`` in this process; any warning it issues fails too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = main(args)
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code
    assert not caught, [str(w.message) for w in caught]
    _one_line(status, capsys.readouterr().err, *fragments)


SPEC = '[data]\ndataset = "sleepstudy"\n{data}[model]\nformula = "{formula}"\n[fit]\nengines = ["reml"]\n{extra}'


def _spec(tmp_path: Path, name: str, formula: str = "Reaction ~ Days + (1 | Subject)", data: str = "",
          extra: str = "") -> str:  # fmt: skip
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(formula=formula, data=data, extra=extra))
    return str(path)


def test_bad_specs_exit_2_with_one_line(tmp_path: Path) -> None:
    """Through the command itself (a new process each): exit status 2 and one line on stderr, nothing else."""
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\n")
    _one_line_error(_run_cli("run", str(broken)), "broken.toml: not valid TOML")
    _one_line_error(
        _run_cli("run", _spec(tmp_path, "column", formula="Reaction ~ Dayz + (1 | Subject)"), "--out", str(tmp_path)),
        "column.toml: unknown column 'Dayz' in the fixed effects; did you mean 'Days'?",
        "the data has: Reaction, Days, Subject",
    )
    _one_line_error(_run_cli("frobnicate"), "invalid choice: 'frobnicate'")


def test_more_bad_specs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The other bad inputs, through ``main`` in this process (what a new process adds is checked above)."""
    check = functools.partial(_one_line_error_in_process, capsys)
    check(["run", _spec(tmp_path, "unknown_key", extra="[fit2]\nx = 1\n")], "unknown key 'fit2'")
    check(
        ["run", _spec(tmp_path, "query", data='query = "Days >"\n'), "--out", str(tmp_path)],
        "query.toml: [data] the query 'Days >' could not be evaluated",
    )
    check(
        ["run", _spec(tmp_path, "query_col", data='query = "Dayz > 2"\n'), "--out", str(tmp_path)],
        "unknown column 'Dayz' in the query",
    )
    check(["run", _spec(tmp_path, "draws", extra="[bayes]\ndraws = 0\n")],
          "draws.toml: [bayes] draws must be a whole number >= 1, not 0")  # fmt: skip
    check(["run", _spec(tmp_path, "accept", extra="[bayes]\ntarget_accept = 1.5\n")],
          "target_accept must be a number strictly between 0 and 1")  # fmt: skip
    afile = tmp_path / "afile"
    afile.write_text("x")
    check(["run", "sleepstudy", "--out", str(afile)], "is a file, not a folder")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    check(["fit", "y ~ x + (1 | g)", "--data", str(empty)], "could not be read as CSV")
    check(["fit", "y ~ x", "--data", str(afile), "--draws", "0"], "--draws: must be a whole number")


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


# --- the report is fit for a methods section (issue 17) -----------------------------------------------
def test_report_has_what_a_methods_section_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import arviz
    import numpy
    import pymc

    import hierbayes

    assert main(["run", "sleepstudy", "--out", str(tmp_path), "--fast", "--no-progress"]) == EXIT_OK
    out_dir = tmp_path / "sleepstudy"
    report = (out_dir / "report.md").read_text()
    err = capsys.readouterr().err
    # progress per step on stderr, numbered, ending with the time taken
    steps = [ln for ln in err.splitlines() if ln.startswith("hierbayes run sleepstudy: [")]
    assert steps[0].endswith("[1/15] loading data") and steps[-1].endswith("[15/15] writing posterior and report")
    assert "fitting (bayes)" in err and re.search(r"finished in \d+\.\d s", err)
    methods = report.split("## Methods", 1)[1].split("## Tables", 1)[0]
    wanted = [
        "`Reaction ~ Days + (Days \\| Subject)`",  # formula
        "gaussian, identity link",  # family
        "restricted maximum likelihood (REML), as lme4's lmer",  # estimation method
        "BOBYQA (NLopt), 44 evaluations, converged",  # optimizer and convergence
        "max \\|gradient\\|",
        "95% profile confidence intervals",
        "NUTS (nutpie) on hierbayes' compiled marginal log-density, nutpie",  # sampler
        "2 chains x 200 draws after 200 tuning steps",  # chains, draws, tune (--fast)
        "| Bayes: target_accept, seed | 0.8, 2025 |",
        "divergent transitions; max R-hat 1.",
        "min bulk ESS ",
        "| sd[Subject:Days] | HalfNormal(sigma=19.56) | default |",  # priors as describe_priors() prints them
        "| eta[Subject] | LKJ(eta=2) | default |",
        f"hierbayes {hierbayes.__version__}, Python {sys.version.split()[0]}, NumPy {numpy.__version__}",
        f"PyMC {pymc.__version__}",
        f"ArviZ {arviz.__version__}",
        "Time taken: ",
        "fitting (bayes) ",
    ]
    missing = [w for w in wanted if w not in methods]
    assert not missing, f"not in the report's methods section: {missing}\n{methods}"
    for plot in ("shrinkage", "caterpillar", "pooling", "ppc", "forest", "diagnostics"):  # figures embedded
        assert f"![{plot}](plots/{plot}.png)" in report and (out_dir / "plots" / f"{plot}.png").stat().st_size > 5000
    # the report's tables use profile intervals for the SDs, as hb.compare does by default: no "—" cells
    compare_block = report.split("## Tables", 1)[1]
    assert "SDs, correlations and sigma profile" in compare_block
    # CSVs with six significant digits, not seventeen
    for csv in (out_dir / "tables").glob("*.csv"):
        numbers = re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", csv.read_text())
        digits = [len(re.sub(r"e.*|[-.]", "", n).lstrip("0")) for n in numbers]
        assert numbers and max(digits) <= 6, f"{csv.name}: {max(digits)} significant digits"
    # no internal labels of the example documents
    assert "seed 0" not in report.lower()


def test_run_quiet_prints_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, "quiet", extra='[output]\ntables = ["compare"]\nplots = []\n')
    assert main(["run", spec, "--out", str(tmp_path / "out"), "--quiet"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "done. Outputs in" in captured.out
    report = (tmp_path / "out" / "quiet" / "report.md").read_text()
    assert "| REML: intervals | 95% profile confidence intervals |" in report


def test_run_does_not_report_pytensors_blas_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip-installed PyTensor warns that it found no BLAS when it first compiles; the run records every warning
    for the report, and this one asks nothing of the user (issue 17: no noise), so it is not among them."""
    import hierbayes.model

    fit = hierbayes.model.Model.fit

    def fit_as_on_a_pip_install(self, *args, **kwargs):
        warnings.warn("PyTensor could not link to a BLAS installation. ...", UserWarning, stacklevel=2)
        warnings.warn("an actionable warning", UserWarning, stacklevel=2)  # the run still records the others
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(hierbayes.model.Model, "fit", fit_as_on_a_pip_install)
    spec = _spec(tmp_path, "blas", extra='[output]\ntables = ["compare"]\nplots = []\n')
    assert main(["run", spec, "--out", str(tmp_path / "out"), "--quiet"]) == EXIT_OK
    printed = capsys.readouterr()
    report = (tmp_path / "out" / "blas" / "report.md").read_text()
    assert "an actionable warning" in report and "an actionable warning" in printed.out
    assert "BLAS" not in report and "BLAS" not in printed.out + printed.err
