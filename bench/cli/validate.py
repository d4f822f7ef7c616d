"""`bench validate`: each conformance test against the conforming meter and every mutant
(smmc_bench.validation says what counts); `bench validate --list`: the mutants.

The runs go to a few worker processes (smmc_bench.cli.validate_worker), each judging mutant after
mutant in a fresh pytest session: a mutant costs its suite run, not an interpreter start.
The console gets a summary that fits an 80-column CI log; validation.json holds the full
test x mutant matrix.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from smmc_bench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SUITE_ROOT,
    VERDICT_STYLE,
    checked_bench,
    console,
    error_console,
    usage_error,
)
from smmc_bench.cli.validate_worker import CONFORMING, run_folder
from smmc_bench.report.record import RunRecord, new_run_id
from smmc_bench.safety.interrupt import RUN_INTERRUPT
from smmc_bench.station import MutantInfo, bench_link_kinds, bench_management_security, known_mutants
from smmc_bench.validation import (
    INCOMPLETE,
    KILLED,
    KILLED_OUTSIDE,
    NOT_EXERCISED,
    SURVIVED,
    Validation,
    validate,
)

VALIDATION_RUN_S = 1800  # one suite run against one mutant, on the emulated bench

STATUS_STYLE = {KILLED: "green", KILLED_OUTSIDE: "yellow", SURVIVED: "bold red", NOT_EXERCISED: "dim",
                INCOMPLETE: "bold red"}


# -- bench validate --list ---------------------------------------------------------------------
def command_list(args: argparse.Namespace) -> int:
    mutants = sorted(known_mutants().values(), key=lambda m: (m.aspect, bool(m.link_kinds), m.name))
    table = Table(title=f"{len(mutants)} mutants (meter and link)", box=box.SIMPLE_HEAD, pad_edge=False,
                  title_justify="left")
    table.add_column("Asp", justify="right", no_wrap=True, min_width=3)
    table.add_column("Mutant (where it lives): defect", overflow="fold")
    for mutant in mutants:
        where = ", ".join(mutant.link_kinds).replace("*", "any link") if mutant.link_kinds else "meter"
        table.add_row(str(mutant.aspect), f"[bold]{escape(mutant.name)}[/] [dim]({escape(where)})[/]\n"
                                          f"{escape(mutant.description)}")
    console.print(table)
    return EXIT_OK


# -- running the suite against the mutants -------------------------------------------------------
class _Worker:
    """One validate_worker process and the run it is on."""

    def __init__(self, args: argparse.Namespace, out: Path, number: int) -> None:
        command = [sys.executable, "-m", "smmc_bench.cli.validate_worker", "--bench", args.bench, "--suite", args.suite,
                   "--rootdir", str(SUITE_ROOT), "--out", str(out)]
        if args.k:
            command += ["-k", args.k]
        self.log = open(out / f"worker-{number}.log", "ab")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        cwd=os.getcwd(), text=True, bufsize=1,
                                        # Ctrl-C at the terminal reaches us; we stop the workers ourselves.
                                        start_new_session=True)
        self.stopped = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def judge(self, name: str, timeout: float) -> tuple[int | None, str]:
        """pytest's exit code for the run against `name`, or None and why there is none."""
        try:
            self.process.stdin.write(name + "\n")
            self.process.stdin.flush()
        except OSError:
            return None, f"the worker had exited (code {self.process.poll()})"
        if not self.selector.select(timeout):
            return None, f"no verdict within {timeout:.0f} s"
        answer = self.process.stdout.readline()
        if not answer:
            return None, f"the worker exited during the run (code {self.process.wait()})"
        return json.loads(answer)["exit"], ""

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            self.process.send_signal(signum)  # a run in progress tears down (exit 130)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.selector.close()
        self.log.close()


def _evidence(out: Path, name: str, code: int | None, why: str) -> RunRecord | str:
    """The run's record, or why it is no evidence."""
    run_dir = run_folder(out, name)
    log = run_dir / "pytest.log"
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
    if code is None:
        return f"run incomplete ({why}){': ' + tail if tail else ''}"
    record_path = run_dir / "record.json"
    # 0: all passed, 1: some failed; anything else means the suite did not run to its end.
    if code not in (0, 1) or not record_path.exists():
        return f"run incomplete (pytest exit {code}): {tail}"
    record = RunRecord.read(record_path)
    if record.collected is not None and len(record.tests) < record.collected:
        return f"run incomplete: {len(record.tests)} of {record.collected} tests judged: {tail}"
    return record


def run_all(args: argparse.Namespace, names: list[str], out: Path, workers: int) -> dict[str, RunRecord | str]:
    """Each name's run (CONFORMING: the conforming meter), `workers` at a time."""
    queue = deque(names)
    results: dict[str, RunRecord | str] = {}
    lock = threading.Lock()
    live: list[_Worker] = []
    stopping = threading.Event()

    def serve(number: int, advance) -> None:
        worker = None
        try:
            while not stopping.is_set():
                with lock:
                    if not queue:
                        return
                    name = queue.popleft()
                if worker is None:
                    worker = _Worker(args, out, number)
                    with lock:
                        live.append(worker)
                code, why = worker.judge(name, VALIDATION_RUN_S)
                if stopping.is_set():
                    return
                if code is None:  # dead or hung: a fresh worker for the next run
                    worker.stop(signal.SIGKILL)
                    worker = None
                results[name] = _evidence(out, name, code, why)
                advance()
        finally:
            if worker is not None:
                worker.stop()

    with Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("runs", total=len(names))
        threads = [threading.Thread(target=serve, args=(n, lambda: progress.advance(task)), daemon=True)
                   for n in range(1, workers + 1)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)  # a short wait, so a signal reaches this (main) thread
        except KeyboardInterrupt:
            stopping.set()
            with lock:
                for worker in live:
                    worker.stop()  # each run in progress is interrupted and tears down
            raise
    return results


def selected_mutants(args: argparse.Namespace, config) -> dict[str, MutantInfo]:
    kinds = bench_link_kinds(config)
    securities = bench_management_security(config)
    # A link mutant lives on some link kinds, a security mutant in HLS-GMAC: on a bench without
    # them it is the conforming meter.
    applicable = {name: info for name, info in known_mutants().items()
                  if (not info.link_kinds or "*" in info.link_kinds or kinds & set(info.link_kinds))
                  and (info.management_security is None or info.management_security in securities)}
    if not args.mutants:
        return applicable
    chosen = {name: info for name, info in applicable.items()
              if any(fnmatch.fnmatchcase(name, pattern) for pattern in args.mutants)}
    if not chosen:
        usage_error(f"--mutants {' '.join(args.mutants)}: no mutant applicable on {args.bench} matches "
                    "(`bench validate --list` lists them)")
    return chosen


def command_validate(args: argparse.Namespace) -> int:
    if args.list:
        return command_list(args)
    config = checked_bench(args.bench)
    if not all(m.emulated for m in config.meter):
        usage_error("bench validate needs a bench whose meters are all emulated")
    mutants = selected_mutants(args, config)
    out = Path(args.reports) / f"validate-{new_run_id()}"
    out.mkdir(parents=True, exist_ok=True)
    names = [CONFORMING, *sorted(mutants)]
    # Two per CPU: a run spends much of its time waiting on sockets between bench and emulator.
    workers = max(1, min(args.workers or 2 * (os.cpu_count() or 2), len(names)))
    console.print(f"[bold]method validation[/] of {escape(args.suite)} on {escape(args.bench)}: conforming "
                  f"meter + {len(mutants)} mutants, {workers} workers -> {escape(str(out))}", soft_wrap=True)
    started = time.monotonic()
    try:
        results = run_all(args, names, out, workers)
    except KeyboardInterrupt as exc:
        RUN_INTERRUPT.note(exc)
        error_console.print(f"[yellow]{RUN_INTERRUPT.describe()}: validation stopped, the runs in progress were "
                            f"interrupted and torn down; nothing is validated ({out})[/]", soft_wrap=True)
        return EXIT_INTERRUPTED
    seconds = time.monotonic() - started
    validation = validate(results[CONFORMING], {name: results[name] for name in mutants}, mutants)
    summary = validation.to_jsonable() | {"bench": args.bench, "suite": args.suite, "k": args.k,
                                          "mutant_globs": args.mutants, "seconds": round(seconds, 1)}
    (out / "validation.json").write_text(json.dumps(summary, indent=2))
    render(validation)
    console.print(f"{len(names)} runs in {seconds:.0f} s; matrix and details: {out / 'validation.json'}",
                  soft_wrap=True)
    return EXIT_OK if validation.ok else EXIT_FAILED


# -- the summary -----------------------------------------------------------------------------
def render(validation: Validation, out: Console = console) -> None:
    """The summary, fitted to `out`'s width (80 columns in a CI log)."""
    tests, mutants = validation.tests, validation.mutants
    if mutants:
        table = Table(title="Mutants", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                      caption="Kills: FAILs of tests of the mutant's aspect / of other aspects. "
                              "ERR: tests that could not judge it (no kill).", caption_justify="left")
        table.add_column("Mutant", no_wrap=True, overflow="ellipsis", max_width=_name_width(out, [3, len(KILLED_OUTSIDE), 5, 3]))
        table.add_column("Asp", justify="right", no_wrap=True, min_width=3)
        table.add_column("Result", no_wrap=True, min_width=len(KILLED_OUTSIDE))
        table.add_column("Kills", justify="right", no_wrap=True, min_width=5)
        table.add_column("ERR", justify="right", no_wrap=True, min_width=3)
        for m in mutants:
            kills = "-" if m.status == INCOMPLETE else f"{len(m.kills_in_aspect)}/{len(m.kills_outside_aspect)}"
            errors = "-" if m.status == INCOMPLETE else str(len(m.errors))
            table.add_row(escape(m.name), str(m.aspect), f"[{STATUS_STYLE[m.status]}]{m.status}[/]", kills, errors)
        out.print(table)
    if tests:
        table = Table(title="Tests", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                      caption="Conf.: verdict on the conforming meter. Kills: mutants it FAILs. "
                              "ERR: mutants it could not judge.", caption_justify="left")
        width = _name_width(out, [3, 5, 5, 3])
        table.add_column("Test", no_wrap=True, overflow="ellipsis", max_width=width)
        table.add_column("Asp", justify="right", no_wrap=True, min_width=3)
        table.add_column("Conf.", no_wrap=True, min_width=5)
        table.add_column("Kills", justify="right", no_wrap=True, min_width=5)
        table.add_column("ERR", justify="right", no_wrap=True, min_width=3)
        for t in tests:
            style = VERDICT_STYLE[t.conforming]
            kills = f"[bold red]{len(t.kills)}[/]" if t.validated and not t.kills and mutants else str(len(t.kills))
            table.add_row(escape(_fit(_short(t.id), width)), str(t.aspect or "-"), f"[{style}]{t.conforming.value}[/]", kills,
                          str(len(t.errors)))
        out.print(table)
    outside = [m for m in mutants if m.kills_outside_aspect]
    if outside:
        out.print("[yellow]kills outside the mutant's aspect[/] (a test of another aspect saw the defect):")
        for m in outside:
            only = "only " if m.status == KILLED_OUTSIDE else "also "
            by = ", ".join(f"{_short(t)} (aspect {_aspect_of(validation, t)})" for t in m.kills_outside_aspect)
            out.print(f"  {escape(m.name)} (aspect {m.aspect}): {only}by {escape(by)}")
    idle = [m for m in mutants if m.status == NOT_EXERCISED]
    if idle:
        out.print(f"[dim]not exercised here (no test of their aspect on this bench or selection): "
                      f"{escape(', '.join(m.name for m in idle))}[/]")
    if validation.not_applicable:
        reasons = sorted(set(validation.not_applicable.values()))
        out.print(f"[yellow]{len(validation.not_applicable)} tests not applicable on this bench (skipped by the "
                      f"conforming meter), not validated here:[/] {escape('; '.join(reasons))}")
    counts = ", ".join(f"{validation.count(s)} {s.replace('its aspect', 'their aspect')}"
                       for s in (KILLED, KILLED_OUTSIDE, SURVIVED, NOT_EXERCISED, INCOMPLETE) if validation.count(s))
    validated = sum(t.validated for t in tests)
    out.print(f"{validated} of {len(tests)} tests pass on the conforming meter; mutants: {counts or 'none'}")
    if validation.problems:
        out.print(f"[bold red]NOT VALIDATED[/]: {len(validation.problems)} problems")
        for problem in validation.problems:
            for test in tests:  # the full ids are in validation.json; here, what fits a line
                problem = problem.replace(test.id, _short(test.id))
            out.print(f"  [red]{escape(problem)}[/]")
    else:
        out.print("[bold green]validated[/]: every test passes on the conforming meter and FAILs at least one "
                      "mutant; every mutant its aspect's tests reach is killed")


def _name_width(out: Console, others: list[int]) -> int:
    """Room for the first column beside the others (their widths): three columns between two
    (a space of padding on either side of the rule) and one at either edge."""
    return max(20, out.width - sum(others) - 3 * len(others) - 2)


def _fit(name: str, width: int) -> str:
    """`name` in `width` columns, cut in the middle: its parameters ([opt-1], [FCS]) tell rows apart."""
    if len(name) <= width:
        return name
    tail = name[name.index("["):] if "[" in name else ""
    if len(tail) > width // 2:
        tail = ""
    return name[:width - len(tail) - 1] + "…" + tail


def _short(test_id: str) -> str:
    return test_id.split("::")[-1]


def _aspect_of(validation: Validation, test_id: str) -> str:
    return next((str(t.aspect) for t in validation.tests if t.id == test_id), "?")
