"""The `bench` command: run the conformance suite, validate it against the mutants,
serve an emulated meter.

Exit codes: 0 nothing failed or errored; 1 a FAIL or ERROR verdict (or, for
validate, a test that kills no mutant); 2 bad configuration or usage; 5 no test
selected.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.catalogue import aspect_title
from bench.config import BenchConfig, ConfigError, load_bench
from bench.record import RunRecord, Verdict, new_run_id
from bench.station import Station, bench_link_kinds, known_mutants

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = REPO_ROOT / "tests" / "conformance"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_TESTS = 0, 1, 2, 5

VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.ERROR: "bold magenta",
    Verdict.SKIP: "yellow",
}

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)


def checked_bench(path: str) -> BenchConfig:
    """Load the bench and everything it names (profiles, secrets) or exit 2 with where and why."""
    try:
        config = load_bench(path)
        Station(config)  # loads each profile and resolves each secret, without starting anything
    except ConfigError as exc:
        error_console.print(f"[bold red]bench configuration error[/]\n{escape(str(exc))}")
        raise SystemExit(EXIT_USAGE) from None
    return config


# -- bench run ----------------------------------------------------------------
class LiveProgress:
    """A pytest plugin that shows each test's verdict as the run goes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("collecting", total=None)

    collected = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)
        self.progress.update(self.task, total=self.collected, description="running")

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        self.progress.update(self.task, description=escape(nodeid.split("::")[-1]))

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple) -> None:
        from bench.plugin import recorder_of

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
        error_console.print(f"[red]unknown mutant {escape(args.mutant)}; known: {', '.join(sorted(known_mutants()))}[/]")
        return EXIT_USAGE
    run_dir = Path(args.reports) / new_run_id()
    pytest_args = [
        args.suite, f"--rootdir={REPO_ROOT}", "-p", "no:terminal", "-p", "no:cacheprovider",
        "--bench", args.bench, "--run-dir", str(run_dir),
        f"--junitxml={run_dir / 'junit.xml'}", f"--alluredir={run_dir / 'allure-results'}",
    ]
    if args.k:
        pytest_args += ["-k", args.k]
    if args.mutant:
        pytest_args += ["--mutant", args.mutant]
    if not all(m.emulated for m in config.meter):
        # Real time on hardware: a 15-minute limiter scenario is legitimate; the drivers bound every wait.
        pytest_args += ["-o", "timeout=0"]
    console.print(f"[bold]smmc-bench[/] run on [cyan]{escape(args.bench)}[/] -> {escape(str(run_dir))}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        live = LiveProgress(progress)
        code = pytest.main(pytest_args, plugins=[live])
    record_path = run_dir / "record.json"
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or not record_path.exists():
        error_console.print("[yellow]no conformance test was selected[/]" if code in (0, 5) else
                            f"[red]the run stopped before any verdict (pytest exit {int(code)})[/]")
        return EXIT_NO_TESTS if code in (0, 5) else (EXIT_USAGE if code in (2, 4) else EXIT_FAILED)
    record = RunRecord.read(record_path)
    if code == pytest.ExitCode.INTERRUPTED:
        console.print(verdict_table(record))
        error_console.print(f"[yellow]interrupted: the verdicts above are those judged so far ({record_path})[/]")
        return 130
    console.print(verdict_table(record))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or len(record.tests) < live.collected:
        error_console.print(f"[bold red]run incomplete[/]: {len(record.tests)} of {live.collected} tests judged "
                            f"(pytest exit {int(code)}); see {run_dir}")
        return EXIT_FAILED
    aspects = sorted({t.aspect for t in record.tests if t.aspect})
    console.print("aspects: " + "; ".join(escape(aspect_title(a)) for a in aspects))
    for meter in record.meters:
        who = ", ".join(f"{k}={v}" for k, v in meter.identity.items()) or f"identity unread: {meter.identity_error}"
        console.print(f"meter [cyan]{escape(meter.id)}[/] ({escape(meter.profile)}): {escape(who)}")
    counts = record.counts()
    console.print(" ".join(f"[{VERDICT_STYLE[v]}]{counts[v.value]} {v.value}[/]" for v in Verdict))
    console.print(f"record: {record_path}  junit: {run_dir / 'junit.xml'}  allure: {run_dir / 'allure-results'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record_path, args.json)
    return EXIT_OK if record.ok else EXIT_FAILED


# -- bench validate -------------------------------------------------------------
VALIDATION_RUN_S = 1800  # one suite run against one mutant, on the emulated bench
def _run_against(args: argparse.Namespace, mutant: str | None, run_dir: Path) -> RunRecord | str:
    command = [sys.executable, "-m", "pytest", args.suite, f"--rootdir={REPO_ROOT}", "-q",
               "-p", "no:cacheprovider", "--bench", args.bench, "--run-dir", str(run_dir)]
    if args.k:
        command += ["-k", args.k]
    if mutant:
        command += ["--mutant", mutant]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=os.getcwd(), timeout=VALIDATION_RUN_S)
    except subprocess.TimeoutExpired:
        return f"no verdict within {VALIDATION_RUN_S} s"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "pytest.log").write_text(result.stdout + result.stderr)
    record_path = run_dir / "record.json"
    tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
    # 0: all passed, 1: some failed; anything else means the suite did not run to its end.
    if result.returncode not in (0, 1) or not record_path.exists():
        return f"run incomplete (pytest exit {result.returncode}): {tail}"
    return RunRecord.read(record_path)


def command_validate(args: argparse.Namespace) -> int:
    config = checked_bench(args.bench)
    if not all(m.emulated for m in config.meter):
        error_console.print("[red]bench validate needs a bench whose meters are all emulated[/]")
        return EXIT_USAGE
    kinds = bench_link_kinds(config)
    # A link mutant lives on some link kinds: on a bench without them it is the conforming meter.
    mutants = {name: info for name, info in known_mutants().items()
               if (not info.link_kinds or "*" in info.link_kinds or kinds & set(info.link_kinds))
               and (not args.mutants or any(fnmatch.fnmatchcase(name, pattern) for pattern in args.mutants))}
    names = [None, *sorted(mutants)]
    out = Path(args.reports) / f"validate-{new_run_id()}"
    console.print(f"[bold]method validation[/]: conforming meter + {len(mutants)} mutants -> {out}")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run_against, args, name, out / (name or "conforming")) for name in names}
        results = {name: future.result() for name, future in futures.items()}

    broken = {name: r for name, r in results.items() if isinstance(r, str)}
    for name, why in broken.items():
        error_console.print(f"[red]{name or 'conforming'}: {escape(why)}[/]")
    if broken:
        return EXIT_FAILED
    conforming: RunRecord = results[None]  # type: ignore[assignment]
    # A test the conforming meter skips (its instrument or feature is not on this bench) is not
    # applicable here: it is listed, not validated. CI checks the default bench skips nothing.
    not_applicable = {t.id: t.diagnosis for t in conforming.tests if t.verdict is Verdict.SKIP}
    tests = [t.id for t in conforming.tests if t.id not in not_applicable]
    verdicts = {name: {t.id: t.verdict for t in r.tests} for name, r in results.items()}  # type: ignore[union-attr]

    mutant_names = names[1:]
    table = Table(title="Method validation: tests (rows) x mutants (columns)", box=box.SIMPLE_HEAD,
                  caption="X = killed (FAIL or ERROR), . = survived, s = skipped, ? = not judged")
    table.add_column("Test", no_wrap=True)
    table.add_column("Conf.", no_wrap=True)
    for index, _ in enumerate(mutant_names, 1):
        table.add_column(f"{index}", justify="center", no_wrap=True)
    problems: list[str] = []
    for number, test_id in enumerate(tests, 1):
        own = verdicts[None][test_id]
        row = [f"T{number}", f"[{VERDICT_STYLE[own]}]{own.value}[/]"]
        if own is not Verdict.PASS:
            problems.append(f"{test_id}: {own.value} against the conforming meter")
        kills = 0
        for name in mutant_names:
            verdict = verdicts[name].get(test_id)
            if verdict is None:  # the mutant's run never judged this test: no evidence either way
                problems.append(f"{test_id}: no verdict in the run against {name}")
                row.append("[red]?[/]")
                continue
            killed = verdict in (Verdict.FAIL, Verdict.ERROR)
            kills += killed
            row.append("[bold green]X[/]" if killed else ("[yellow]s[/]" if verdict is Verdict.SKIP else "[dim].[/]"))
        if kills == 0:
            problems.append(f"{test_id}: kills no mutant (a check that cannot fail)")
        table.add_row(*row)
    console.print(table)
    for number, test_id in enumerate(tests, 1):
        console.print(f"  T{number} = {escape(test_id.split('::')[-1])}", no_wrap=True, overflow="ellipsis")
    for index, name in enumerate(mutant_names, 1):
        console.print(f"  M{index} = [cyan]{name}[/]: {escape(mutants[name].description)}", no_wrap=True,
                      overflow="ellipsis")
    if not_applicable:
        reasons = sorted(set(not_applicable.values()))
        console.print(f"[yellow]{len(not_applicable)} tests not applicable on this bench (skipped by the conforming "
                      f"meter), not validated here:[/] {escape('; '.join(reasons))}")
    unkilled = [name for name in mutant_names if not any(v in (Verdict.FAIL, Verdict.ERROR) for v in verdicts[name].values())]
    for name in unkilled:
        console.print(f"[yellow]mutant {name} is killed by no test[/] (a gap in the suite, not a validation failure)")
    summary = {
        "conforming": {t: v.value for t, v in verdicts[None].items()},
        "not_applicable": not_applicable,
        "mutants": {name: {t: v.value for t, v in verdicts[name].items()} for name in mutant_names},
        "problems": problems,
    }
    (out / "validation.json").write_text(json.dumps(summary, indent=2))
    if problems:
        for problem in problems:
            console.print(f"[bold red]{escape(problem)}[/]")
        return EXIT_FAILED
    console.print(f"[bold green]validated[/]: {len(tests)} tests pass on the conforming meter and each kills a mutant")
    return EXIT_OK


# -- bench doctor ---------------------------------------------------------------
def command_doctor(args: argparse.Namespace) -> int:
    """Probe every meter link of the bench and say what answered, or why not."""
    import time

    from bench.instruments import probe_instruments
    from bench.links import link_label, probe_link
    from bench.station import read_identity
    from drivers.dlms import FrameTrace
    from drivers.dlms.errors import DlmsError

    config = checked_bench(args.bench)
    if args.instruments:
        from bench.instrument_acceptance import command_doctor_instruments
        return command_doctor_instruments(args, config, console)
    table = Table(title=f"bench doctor - {escape(args.bench)}")
    for column in ("Device", "Link", "Answer", "Details"):
        table.add_column(column, overflow="fold")
    failures = 0
    with Station(config) as station:
        for test_id, (meter, index) in station.targets().items():
            link = meter.links[index]
            started = time.monotonic()
            probe = probe_link(link, meter.profile.links)
            if not probe.ok:
                failures += 1
                table.add_row(escape(test_id), escape(f"{link_label(link)}: {link.describe()}"), "[red]NO[/]",
                              escape(f"{probe.diagnosis} ({probe.seconds:.2f} s)"))
                continue
            link_details = "; ".join(d for d in (probe.identification, probe.negotiated_hdlc) if d)
            try:
                with station.session(meter, FrameTrace(), index) as session:
                    identity = read_identity(session, meter.profile)
                details = ", ".join(f"{k}={v}" for k, v in identity.items())
                details += f"; max PDU {session.negotiated_max_pdu}"
                answer = "[green]OK[/]"
            except DlmsError as exc:
                failures += 1
                answer, details = "[red]NO[/]", f"link up, DLMS association failed: {exc.diagnosis}"
            if link_details:
                details = f"{link_details}; {details}"
            elapsed = time.monotonic() - started
            table.add_row(escape(test_id), escape(f"{link_label(link)}: {link.describe()}"), answer,
                          escape(f"{details} ({elapsed:.2f} s)"))
        instruments = station.instruments
        for probe in probe_instruments(instruments.ac_source, instruments.load, station.clock):
            failures += not probe.ok
            table.add_row(escape(probe.name), "instrument", "[green]OK[/]" if probe.ok else "[red]NO[/]",
                          escape(probe.identification if probe.ok else probe.diagnosis))
    console.print(table)
    return EXIT_OK if failures == 0 else EXIT_FAILED


# -- bench emulate --------------------------------------------------------------
def command_emulate(args: argparse.Namespace) -> int:
    from fixtures.clock import VirtualClock
    from fixtures.meter import MUTANTS, EmulatedMeter  # link mutants need a link: not served here

    if args.mutant and args.mutant not in MUTANTS:
        error_console.print(f"[red]unknown mutant {escape(args.mutant)}; known: {', '.join(sorted(MUTANTS))}[/]")
        return EXIT_USAGE
    config = checked_bench(args.bench)
    emulated = next((m for m in config.meter if m.emulated), None)
    if emulated is None:
        error_console.print(f"[red]{escape(args.bench)} declares no emulated meter to take the security from[/]")
        return EXIT_USAGE
    password = config.resolve_password(emulated)
    meter = EmulatedMeter(
        clock=VirtualClock(), mutant=args.mutant, lls_password=password.reveal() if password else b"",
        host=args.host, port=args.port, initial_clock_offset=config.emulator.initial_clock_offset,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with meter:
        host, port = meter.address
        security = emulated.security
        secret_from = (f"env {security.password_env}" if security.password_env
                       else f"file {security.password_file}" if security.password_file else "none")
        console.print(f"[bold]emulated meter[/] {'(mutant ' + args.mutant + ')' if args.mutant else '(conforming)'}"
                      f" listening on [cyan]{host}:{port}[/] (DLMS/COSEM, TCP wrapper, LN referencing)")
        console.print(f"  server wPort 1; management client SAP 1 with LLS (password: {escape(secret_from)});"
                      " public client SAP 16 without authentication")
        console.print(escape(f'  bench.toml:  [meter.link] kind = "tcp"  host = "{host}"  port = {port}'))
        console.print("  Ctrl-C to stop")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    console.print("emulated meter stopped")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="SMMC smart-meter homologation bench")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the conformance suite and print the verdicts")
    run.add_argument("--bench", default="bench.toml", help="bench file (default: ./bench.toml)")
    run.add_argument("-k", default=None, metavar="EXPR", help="only tests matching this pytest -k expression")
    run.add_argument("--json", default=None, metavar="PATH", help="also write the run record here")
    run.add_argument("--mutant", default=None, help="serve the emulated meters as this mutant")
    run.add_argument("--reports", default="reports", help="where run folders go (default: ./reports)")
    run.add_argument("--suite", default=str(CONFORMANCE), help=argparse.SUPPRESS)
    run.set_defaults(handler=command_run)

    validate = commands.add_parser("validate", help="prove each conformance test fails against a mutant meter")
    validate.add_argument("--bench", default="bench.toml")
    validate.add_argument("--reports", default="reports")
    validate.add_argument("--suite", default=str(CONFORMANCE), help="conformance test folder (default: the bench's)")
    validate.add_argument("-k", default=None, metavar="EXPR", help="validate only the tests matching this -k expression")
    validate.add_argument("--mutants", action="append", metavar="GLOB",
                          help="only the mutants whose name matches (repeatable), e.g. 'hdlc-*'")
    validate.set_defaults(handler=command_validate)

    doctor = commands.add_parser("doctor", help="probe every link of the bench and say what answered")
    doctor.add_argument("--bench", default="bench.toml")
    doctor.add_argument("--instruments", action="store_true", help="first-day instrument acceptance (scope)")
    doctor.add_argument("--scope-readings", choices=("prompt", "auto"), default="prompt",
                        help="auto: take the source's own measurement, no prompt (CI)")
    doctor.add_argument("--station-record", default="station-record.json")
    doctor.set_defaults(handler=command_doctor)

    emulate = commands.add_parser("emulate", help="serve an emulated meter until interrupted")
    emulate.add_argument("--bench", default="bench.toml", help="bench file whose emulated meter gives the security")
    emulate.add_argument("--mutant", default=None)
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=4059)
    emulate.set_defaults(handler=command_emulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        error_console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
