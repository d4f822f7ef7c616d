"""`bench history`: the runs in the results store and what changed between firmware versions;
`bench export`: the store's tables as CSV or Parquet."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from smmc_bench.cli.common import EXIT_OK, EXIT_USAGE, checked_bench, console, error_console
from smmc_bench.store.database import StoreError
from smmc_bench.store.export import ExportError, export
from smmc_bench.store.history import firmware_changes, runs
from smmc_bench.store.settings import open_bench_store


def _engine(args: argparse.Namespace):
    config = None if args.store else checked_bench(args.bench)
    return open_bench_store(config, Path(args.reports), args.store)


def command_history(args: argparse.Namespace) -> int:
    try:
        engine = _engine(args)
        rows = runs(engine, meter=args.meter, model=args.model, limit=args.limit)
        changes = firmware_changes(engine, meter=args.meter, model=args.model)
    except StoreError as exc:
        error_console.print(f"[bold red]{escape(str(exc))}[/]", soft_wrap=True)
        return EXIT_USAGE
    # 80 columns: the run id holds the start time; counts as PASS/FAIL/ERROR/SKIP.
    table = Table(title="Runs (newest first)")
    for column in ("run", "meter", "model", "firmware", "outcome", "P/F/E/S"):
        table.add_column(column, no_wrap=column in ("run", "firmware", "P/F/E/S"))
    for row in rows:
        table.add_row(row.run_id, row.meter_id, row.model, row.firmware, row.outcome,
                      f"{row.passed}/{row.failed}/{row.errors}/{row.skipped}")
    console.print(table)
    if not rows:
        console.print("no runs in the store for this selection")
    if changes:
        changed = Table(title="Verdicts changed between the last two firmware versions")
        for column in ("model", "test", "old firmware", "old", "new firmware", "new", ""):
            changed.add_column(column)
        for change in changes:
            changed.add_row(change.model, change.test, change.old_firmware, change.old_verdict,
                            change.new_firmware, change.new_verdict,
                            "[bold red]REGRESSION[/]" if change.regression else "")
        console.print(changed)
    regressions = sum(change.regression for change in changes)
    console.print(f"{len(rows)} runs; {regressions} regressions between firmware versions")
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    try:
        written = export(_engine(args), Path(args.out), args.format)
    except (StoreError, ExportError) as exc:
        error_console.print(f"[bold red]{escape(str(exc))}[/]", soft_wrap=True)
        return EXIT_USAGE
    for path in written:
        console.print(str(path))
    return EXIT_OK
