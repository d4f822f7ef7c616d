"""`bench run`: the conformance suite with live verdicts, then the verdict table."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from smmc_bench.catalogue import aspect_title
from smmc_bench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_TESTS,
    EXIT_OK,
    EXIT_USAGE,
    SUITE_ROOT,
    suite_folder,
    VERDICT_STYLE,
    checked_bench,
    console,
    error_console,
    usage_error,
)
from smmc_bench.plugin.recorder import interruption_summary, recorder_of
from smmc_bench.report.allure_results import ALLURE_REPORT
from smmc_bench.report.record import RunRecord, Verdict, new_run_id
from smmc_bench.safety.interrupt import RUN_INTERRUPT
from smmc_bench.station import known_mutants


class LiveProgress:
    """A pytest plugin that shows each test's verdict as the run goes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("collecting", total=None)

    collected = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)
        self.progress.update(self.task, total=self.collected, description="running")

    @pytest.hookimpl(optionalhook=True, trylast=True)  # after the recorder counted this worker's tests
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        # A parallel run's controller collects nothing itself: the total is the workers' union so far.
        self.collected = recorder_of(self.config).collected or len(ids)
        self.progress.update(self.task, total=self.collected, description="running")

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        self.progress.update(self.task, description=escape(nodeid.split("::")[-1]))

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple) -> None:
        record = recorder_of(self.config).tests.get(nodeid)
        if record is not None:
            style = VERDICT_STYLE[record.verdict]
            aspect = f"aspect {record.aspect}" if record.aspect else "-"
            console.print(
                f"[{style}]{record.verdict.value:5}[/] {escape(nodeid.split('[')[-1].rstrip(']'))} {aspect:9} "
                f"{escape(record.name)}",
                no_wrap=True, overflow="ellipsis",
            )
        self.progress.advance(self.task)


def verdict_table(record: RunRecord) -> Table:
    table = Table(title=f"Run {record.run_id} - station {record.station.get('station_id', '?')}")
    table.add_column("Aspect", no_wrap=True)
    table.add_column("Art.", no_wrap=True)
    table.add_column("Meter", no_wrap=True)
    table.add_column("Test", overflow="fold", ratio=2)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Diagnosis", overflow="fold", ratio=3)
    links = {}
    for test in record.tests:
        links.setdefault(test.meter, set()).add(test.link)
    for test in sorted(record.tests, key=lambda t: (t.aspect or 0, t.meter or "", t.id)):
        # A meter reached over several links shows which one each verdict is for.
        where = f"{test.meter}/{test.link}" if len(links[test.meter]) > 1 else (test.meter or "-")
        table.add_row(
            str(test.aspect or "-"), test.article or "-", escape(where), escape(test.name.removeprefix("test_")),
            f"[{VERDICT_STYLE[test.verdict]}]{test.verdict.value}[/]", escape(test.diagnosis),
        )
    return table


def command_run(args: argparse.Namespace) -> int:
    config = checked_bench(args.bench)
    if args.mutant and args.mutant not in known_mutants():
        usage_error(f"unknown mutant {args.mutant!r}; `bench validate --list` lists them")
    run_dir = Path(args.reports) / new_run_id()
    pytest_args = [
        # No conftest above the suite: a clone judges exactly as an installed bench (whose suite has none).
        args.suite, f"--rootdir={SUITE_ROOT}", f"--confcutdir={suite_folder(args.suite)}",
        "-p", "no:terminal", "-p", "no:cacheprovider",
        "-p", "no:hypothesispytest",  # the suite has no property tests: 0.2 s less start-up for every worker
        "--smmc-bench", args.bench, "--smmc-run-dir", str(run_dir),
        f"--junitxml={run_dir / 'junit.xml'}", f"--alluredir={run_dir / 'allure-results'}",
    ]
    if args.jobs < 1:
        usage_error(f"-j {args.jobs}: at least one worker")
    if args.jobs > 1:
        pytest_args += ["-n", str(args.jobs)]  # the plugin's scheduler keeps a position on one worker
    if args.k:
        pytest_args += ["-k", args.k]
    if args.mutant:
        pytest_args += ["--smmc-mutant", args.mutant]
    if args.progress_every is not None:
        pytest_args += ["--smmc-progress-every", str(args.progress_every)]
    previous_report = Path(args.allure_history) if args.allure_history else Path(args.reports) / ALLURE_REPORT
    if args.allure_history and not (previous_report / "history").is_dir():
        usage_error(f"--allure-history {args.allure_history}: no history/ folder there (an `allure generate` output)")
    if (previous_report / "history").is_dir():
        pytest_args += ["--smmc-allure-history", str(previous_report)]
    if not all(m.emulated for m in config.meter):
        # Real time on hardware: a 15-minute limiter scenario is legitimate; the drivers bound every wait.
        pytest_args += ["-o", "timeout=0"]
    console.print(f"[bold]smmc-bench[/] run on [cyan]{escape(args.bench)}[/] -> {escape(str(run_dir))}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        live = LiveProgress(progress)
        code = pytest.main(pytest_args, plugins=[live])
    record_path = run_dir / "record.json"
    record = RunRecord.read(record_path) if record_path.exists() else None
    if code == EXIT_INTERRUPTED or RUN_INTERRUPT.interrupted:
        return _interrupted(args, record, record_path)
    if code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
        # Not a signal (those are 130 above): the plugin's usage error (it printed why) or pytest's own.
        error_console.print(f"[red]the run did not start (pytest exit {int(code)})[/]")
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or record is None:
        error_console.print("[yellow]no conformance test was selected[/]" if code in (0, 5) else
                            f"[red]the run stopped before any verdict (pytest exit {int(code)})[/]")
        return EXIT_NO_TESTS if code in (0, 5) else EXIT_FAILED
    console.print(verdict_table(record))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or len(record.tests) < live.collected:
        error_console.print(f"[bold red]run incomplete[/]: {len(record.tests)} of {live.collected} tests judged "
                            f"(pytest exit {int(code)}); see {run_dir}")
        return EXIT_FAILED
    aspects = sorted({t.aspect for t in record.tests if t.aspect})
    console.print("aspects: " + "; ".join(escape(aspect_title(a)) for a in aspects))
    for meter in record.meters:
        who = ", ".join(f"{k}={v}" for k, v in meter.identity.items()) or f"identity unread: {meter.identity_error}"
        mutant = f", mutant [bold]{escape(meter.mutant)}[/]" if meter.mutant else ""
        console.print(f"meter [cyan]{escape(meter.id)}[/] ({escape(meter.profile)}{mutant}): {escape(who)}")
    counts = record.counts()
    console.print(" ".join(f"[{VERDICT_STYLE[v]}]{counts[v.value]} {v.value}[/]" for v in Verdict))
    for instrument in record.instruments:
        if instrument["overdue"]:
            console.print(f"[bold yellow]{instrument['name']} past its calibration due date {instrument['due']} "
                          f"(certificate {instrument['certificate']}): recorded in the run record[/]")
    console.print(f"record: {record_path}  junit: {run_dir / 'junit.xml'}  allure: {run_dir / 'allure-results'}")
    _copy_record(args, record_path)
    return EXIT_OK if record.ok else EXIT_FAILED


def _copy_record(args: argparse.Namespace, record_path: Path) -> None:
    if args.json and record_path.exists():
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record_path, args.json)


def _interrupted(args: argparse.Namespace, record: RunRecord | None, record_path: Path) -> int:
    """The verdicts judged so far, then how far the run got and what the safe state did."""
    if record is None:
        error_console.print(f"[yellow]{escape(RUN_INTERRUPT.describe())} before the run started: no verdict, "
                            "no meter or instrument had been started[/]")
        return EXIT_INTERRUPTED
    if record.tests:
        console.print(verdict_table(record))
    for line in interruption_summary(record):
        error_console.print(f"[{'bold red' if 'NOT ' in line else 'yellow'}]{escape(line)}[/]", soft_wrap=True)
    error_console.print(f"record: {record_path} (interrupted: true)", soft_wrap=True)
    _copy_record(args, record_path)
    return EXIT_INTERRUPTED


