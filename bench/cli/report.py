"""`bench report RUN`: the run's report, HTML and PDF, in Spanish and English."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from smmc_bench.cli.common import EXIT_OK, EXIT_USAGE, console, error_console
from smmc_bench.report.html import ReportError, write_report


def command_report(args: argparse.Namespace) -> int:
    try:
        for lang in args.lang or ("es", "en"):
            for path in write_report(Path(args.run), lang, pdf=not args.no_pdf):
                console.print(str(path))
    except ReportError as exc:
        error_console.print(f"[bold red]{escape(str(exc))}[/]", soft_wrap=True)
        return EXIT_USAGE
    return EXIT_OK
