"""The `smmc-bench` command (alias `bench`): run the conformance suite, validate it against the mutants,
probe the bench, serve an emulated meter. One module per command.

Exit codes: 0 nothing failed or errored; 1 a FAIL or ERROR verdict (or, for
validate, a failed validation); 2 bad configuration or usage; 5 no test selected;
130 interrupted (SIGINT or SIGTERM), after the bench was put back in its safe state.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from importlib import metadata

from smmc_bench.cli.common import CONFORMANCE, EXIT_INTERRUPTED, default_bench, error_console
from smmc_bench.safety.interrupt import RUN_INTERRUPT


BENCH_HELP = "bench file (default: ./bench.toml, else the packaged emulated bench)"


def version() -> str:
    try:
        return metadata.version("smmc-bench")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    # `python -m smmc_bench.cli` would call itself __main__.py: the command's own name instead.
    prog = None if Path(sys.argv[0]).name in ("smmc-bench", "bench") else "smmc-bench"
    parser = argparse.ArgumentParser(prog=prog, description="SMMC smart-meter homologation bench")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the conformance suite and print the verdicts")
    run.add_argument("--bench", default=None, help=BENCH_HELP)
    run.add_argument("-k", default=None, metavar="EXPR", help="only tests matching this pytest -k expression")
    run.add_argument("--json", default=None, metavar="PATH", help="also write the run record here")
    run.add_argument("--mutant", default=None, help="serve the emulated meters as this mutant")
    run.add_argument("--reports", default="reports", help="where run folders go (default: ./reports)")
    run.add_argument("--allure-history", default=None, metavar="DIR",
                     help="the previous allure report (`allure generate ... -o DIR`): its history/ goes into this "
                          "run's allure results so the report shows trends (default: REPORTS/allure-report if there)")
    run.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                     help="worker processes; each meter position's tests stay on one worker (default: 1)")
    run.add_argument("--suite", default=str(CONFORMANCE), help=argparse.SUPPRESS)
    run.add_argument("--progress-every", type=float, default=None, help=argparse.SUPPRESS)
    run.set_defaults(handler="run")

    validate = commands.add_parser("validate", help="prove each conformance test fails against a mutant meter")
    validate.add_argument("--bench", default=None, help=BENCH_HELP)
    validate.add_argument("--reports", default="reports")
    validate.add_argument("--suite", default=str(CONFORMANCE), help="conformance test folder (default: the bench's)")
    validate.add_argument("-k", default=None, metavar="EXPR", help="validate only the tests matching this -k expression")
    validate.add_argument("--mutants", action="append", metavar="GLOB",
                          help="only the mutants whose name matches (repeatable), e.g. 'hdlc-*'")
    validate.add_argument("--list", action="store_true", help="list every mutant with its aspect and defect")
    validate.add_argument("--workers", type=int, default=None, metavar="N",
                          help="worker processes judging mutants side by side (default: two per CPU)")
    validate.set_defaults(handler="validate")

    doctor = commands.add_parser("doctor", help="probe every link of the bench and say what answered")
    doctor.add_argument("--bench", default=None, help=BENCH_HELP)
    doctor.add_argument("--instruments", action="store_true", help="first-day instrument acceptance (scope)")
    doctor.add_argument("--scope-readings", choices=("prompt", "auto"), default="prompt",
                        help="auto: take the source's own measurement, no prompt (CI)")
    doctor.add_argument("--station-record", default="station-record.json")
    doctor.set_defaults(handler="doctor")

    store_help = "results store: a database URL or a SQLite file (default: the bench's [store], else " \
                 "REPORTS/results.sqlite)"
    history = commands.add_parser("history", help="runs in the results store; verdicts changed between firmware")
    history.add_argument("--bench", default=None, help=BENCH_HELP)
    history.add_argument("--store", default=None, metavar="URL", help=store_help)
    history.add_argument("--reports", default="reports")
    history.add_argument("--meter", default=None, help="only this meter id")
    history.add_argument("--model", default=None, help="only this meter model (profile name)")
    history.add_argument("--limit", type=int, default=50, help="at most this many runs (default: 50)")
    history.set_defaults(handler="history")

    export = commands.add_parser("export", help="write the results store's tables as CSV or Parquet")
    export.add_argument("--bench", default=None, help=BENCH_HELP)
    export.add_argument("--store", default=None, metavar="URL", help=store_help)
    export.add_argument("--reports", default="reports")
    export.add_argument("--out", required=True, help="folder for one file per table")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.set_defaults(handler="export")

    documents = commands.add_parser("profile", help="the 15 aspects' interoperability-profile documents")
    documents.add_argument("--bench", default=None, help=BENCH_HELP + "; its first meter's profile is stated")
    documents.add_argument("--lang", choices=("es", "en"), action="append", help="repeatable (default: es and en)")
    documents.add_argument("--out", default="profile-documents", help="folder (default: ./profile-documents)")
    documents.add_argument("--run", default=None, help="run folder whose verdicts annotate the steps "
                           "(default: the newest in --reports)")
    documents.add_argument("--reports", default="reports")
    documents.set_defaults(handler="profile")

    report = commands.add_parser("report", help="a run's report as self-contained HTML and PDF")
    report.add_argument("run", help="the run folder (reports/<run-id>)")
    report.add_argument("--lang", choices=("es", "en"), action="append",
                        help="report language, repeatable (default: es and en)")
    report.add_argument("--no-pdf", action="store_true", help="HTML only")
    report.set_defaults(handler="report")

    emulate = commands.add_parser("emulate", help="serve an emulated meter until interrupted")
    emulate.add_argument("--bench", default=None, help="bench file whose emulated meter gives the security "
                         "(default: as for run)")
    emulate.add_argument("--mutant", default=None)
    emulate.add_argument("--dialect", default=None, help="encodings the emulator uses (default: [emulator] dialect)")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=4059)
    emulate.set_defaults(handler="emulate")
    return parser


# command -> its module under smmc_bench.cli, imported when the command runs: each pulls in its own
# heavy libraries (pytest, SQLAlchemy, matplotlib), which `--help` or another command need not wait for.
HANDLERS = {"run": "run", "validate": "validate", "doctor": "doctor", "history": "history", "export": "history",
            "profile": "profile", "report": "report", "emulate": "emulate"}


def handler(name: str):
    import importlib

    return getattr(importlib.import_module(f"smmc_bench.cli.{HANDLERS[name]}"), f"command_{name}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "bench", "unset") is None:
        args.bench = default_bench()
    # SIGTERM as well as Ctrl-C ends a command through its cleanup (a run through its teardown).
    owned = RUN_INTERRUPT.install()
    try:
        return handler(args.handler)(args)
    except KeyboardInterrupt as exc:
        RUN_INTERRUPT.note(exc)
        error_console.print(f"[yellow]{RUN_INTERRUPT.describe()}[/]")
        return EXIT_INTERRUPTED
    finally:
        if owned:
            RUN_INTERRUPT.uninstall()


