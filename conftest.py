"""Suite-wide pytest hooks (tests/ and the doctests of hierbayes/): parallel runs and the cost guard (issue 17).

**Parallel.** ``addopts`` (pyproject.toml) asks pytest-xdist for ``-n auto``. A run of the whole suite
(``python -m pytest``, no paths named) uses one worker per CPU; a run that names paths
(``python -m pytest tests/design``) stays in one process unless ``-n`` is given, so targeted runs do not pay
for starting workers. The scheduler here hands out units of work: a test module (so module fixtures and
per-process caches are built once per module, as in a serial run); all the modules that share an expensive
fit (a session fixture or a cache module, :data:`SHARED_FITS`, found in their source) as one unit, so the
fit is made once; each notebook as a unit of its own. (xdist's ``--dist loadgroup`` cannot be used: it
renames node ids, which pytest 9 no longer allows.) Workers collect the most expensive tests first
(:data:`HEAVY_FIRST`), so no long unit starts last.

**Cost guard.** Every test's wall time and CPU time (this process with its threads, plus the child
processes it waited for: PyMC's chains, notebook kernels, the CLI's subprocesses) are recorded; the
summary lists the 10 most expensive tests and every default test whose CPU time is over its budget
(``--cpu-budget``, default :data:`CPU_BUDGET_S` seconds, setup of the fixtures it builds included; a test
that needs more says so with ``@pytest.mark.cpu_budget(seconds, reason=...)``). CPU seconds, unlike wall
seconds, hardly change with the load of a shared machine, so the guard does not flake; it warns, and
``--cpu-budget-strict`` makes an over-budget test fail the run. A cold PyTensor/Numba cache (a fresh
machine) charges the compilation to the first Bayesian tests: the guard says so rather than failing.
"""

from __future__ import annotations

import os
import re
import resource
import time
from pathlib import Path

import pytest

#: pytester for tests/test_suite_guard.py, which runs this file on a small suite
pytest_plugins = ["pytester"]

#: CPU seconds one default test may use (call, plus the setup of the fixtures it is the first to use)
CPU_BUDGET_S = 30.0

#: expensive fits shared by several test modules, each made once per process: the folder whose modules can use
#: it and a pattern of the source that uses it (a session fixture as an argument, or an import of a cache module)
SHARED_FITS = {
    "sleep_fit": ("tests/bayesian/", r"def \w+\([^)]*\bsleep_fit\b"),  # tests/bayesian/conftest.py
    "posterior": ("tests/interpret/", r"def \w+\([^)]*\b(posterior|bambi_model)\b"),  # tests/interpret/conftest.py
    "tables.fits": ("tests/", r"from tests\.tables import fits|tests\.tables\.fits"),  # REML, GLMM, Bayes fits
}

#: tests that start first under xdist, most expensive first (CPU seconds measured 2026-12-08); the rest keep
#: their order. A long group that starts last would leave the other workers idle at the end.
HEAVY_FIRST = (
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom_in_fast_mode",
    "tests/bayesian/test_sbc_fast.py",
    "tests/test_docs.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hierbayes suite")
    group.addoption(
        "--cpu-budget",
        type=float,
        default=CPU_BUDGET_S,
        metavar="SECONDS",
        help=f"CPU seconds a default test may use before it is reported (default {CPU_BUDGET_S:g})",
    )
    group.addoption("--cpu-budget-strict", action="store_true", help="fail the run if a test is over its CPU budget")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cpu_budget(seconds, reason): this test may use up to `seconds` CPU seconds")
    if not hasattr(config, "workerinput"):  # the costs are summed where the reports arrive: the controller
        config.pluginmanager.register(Costs(config), "hierbayes-costs")


# --- parallel runs --------------------------------------------------------------------------------------------
@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown without pytest-xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per CPU for the whole suite, none when the command line names what to run."""
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return 0
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own schedulers
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Modules as units of work (as ``--dist loadfile``), modules sharing a fit together, each notebook alone."""
    from xdist.scheduler import LoadScopeScheduling

    groups = _Groups(config.rootpath)

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return groups.of(nodeid)

    return Scheduling(config, log)


class _Groups:
    """The unit of work of a test, from its node id (the controller collects no tests: it reads the sources)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, str] = {}

    def of(self, nodeid: str) -> str:
        path = nodeid.split("::")[0]
        if path == "tests/test_notebooks.py" and "top_to_bottom_in_fast_mode[" in nodeid:
            return nodeid  # the notebooks are independent and long: one unit each
        if path not in self.cache:
            self.cache[path] = self._shared(path) or path
        return self.cache[path]

    def _shared(self, path: str) -> str | None:
        if not path.endswith(".py"):
            return None
        try:
            source = (self.root / path).read_text()
        except OSError:
            return None
        for name, (folder, pattern) in SHARED_FITS.items():
            if path.startswith(folder) and re.search(pattern, source):
                return f"shared fit {name}"
        return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the order in which the controller hands out the units

        def rank(item: pytest.Item) -> int:
            return next((i for i, p in enumerate(HEAVY_FIRST) if item.nodeid.startswith(p)), len(HEAVY_FIRST))

        items.sort(key=rank)  # stable: the other tests keep their order


# --- the cost guard ---------------------------------------------------------------------------------------------
_STARTED = pytest.StashKey[float]()


def _cpu() -> float:
    """CPU seconds of this process (all its threads) and of the child processes it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = _cpu()
    marker = item.get_closest_marker("cpu_budget")
    if marker is not None:
        item.user_properties.append(("cpu_budget", float(marker.args[0])))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    now = _cpu()
    if _STARTED in item.stash:
        report.user_properties.append(("cpu_seconds", now - item.stash[_STARTED]))
    item.stash[_STARTED] = now  # the next phase (call after setup, teardown after call) starts here
    return report


class Costs:
    """The wall and CPU seconds of every test (summed over setup, call and teardown), from its reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tests: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cost = self.tests.setdefault(report.nodeid, {"wall": 0.0, "cpu": 0.0, "budget": None})
        cost["wall"] += report.duration
        for key, value in report.user_properties:
            if key == "cpu_seconds":
                cost["cpu"] += value
            elif key == "cpu_budget":
                cost["budget"] = value

    def over_budget(self) -> list[tuple[str, float, float]]:
        default = self.config.getoption("cpu_budget")
        rows = [(nodeid, c["cpu"], c["budget"] or default) for nodeid, c in self.tests.items()]
        return [row for row in rows if row[1] > row[2]]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.tests:
            return
        tr = terminalreporter
        tr.section("test costs (conftest.py)")
        total = sum(c["cpu"] for c in self.tests.values())
        tr.write_line(f"{len(self.tests)} tests, {total:.0f} CPU seconds; the 10 most expensive (CPU s, wall s):")
        for nodeid, c in sorted(self.tests.items(), key=lambda kv: -kv[1]["cpu"])[:10]:
            tr.write_line(f"  {c['cpu']:7.1f} {c['wall']:7.1f}  {nodeid}")
        over = self.over_budget()
        if over:
            tr.write_line(
                f"{len(over)} test(s) over their CPU budget (--cpu-budget; a test that needs more says so with "
                "@pytest.mark.cpu_budget(seconds, reason=...); with a cold PyTensor/Numba cache the first "
                "Bayesian tests also pay for compiling):",
                yellow=True,
            )
            for nodeid, cpu, budget in over:
                tr.write_line(f"  {cpu:7.1f} > {budget:g}  {nodeid}", yellow=True)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.getoption("cpu_budget_strict") and self.over_budget() and exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
