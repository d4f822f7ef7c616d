"""`bench profile`: the interoperability-profile documents of the 15 aspects, from the use-case
catalogue, with each step's verifying tests and their last verdict."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from smmc_bench.cli.common import CONFORMANCE, EXIT_FAILED, EXIT_OK, checked_bench, console, error_console
from smmc_bench.report.html import find_chromium
from smmc_bench.report.record import RunRecord
from smmc_bench.station import Station
from smmc_bench.usecases import LANGUAGES, load_actors, load_catalogue, problems, suite_tests
from smmc_bench.usecases.documents import find_mermaid_cli, write_documents


def _latest_record(args: argparse.Namespace) -> RunRecord | None:
    if args.run:
        return RunRecord.read(Path(args.run) / "record.json")
    records = sorted(Path(args.reports).glob("*/record.json"), key=lambda p: p.stat().st_mtime)
    return RunRecord.read(records[-1]) if records else None


def command_profile(args: argparse.Namespace) -> int:
    catalogue, actors = load_catalogue(), load_actors()
    found = problems(catalogue, suite_tests(CONFORMANCE), actors)
    profile = next(iter(Station(checked_bench(args.bench)).meters.values())).profile
    record = _latest_record(args)
    written = write_documents(catalogue, actors, profile, record, Path(args.out), args.lang or LANGUAGES,
                              chromium=find_chromium())
    console.print(f"{len(written)} files in {escape(args.out)} ({len(catalogue)} aspects; verdicts from "
                  f"{record.run_id if record else 'no run'}; diagrams "
                  f"{'rendered by mermaid-cli' if find_mermaid_cli() else 'as Mermaid source (no mmdc)'})")
    for problem in found:
        error_console.print(f"[yellow]catalogue: {escape(problem)}[/]")
    return EXIT_FAILED if found else EXIT_OK
