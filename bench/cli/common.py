"""What every `bench` command shares: exit codes, consoles, verdict colours and the
configuration check that turns a broken bench file into exit code 2."""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from smmc_bench import conformance
from smmc_bench.config import BenchConfig, ConfigError, load_bench
from smmc_bench.report.record import Verdict
from smmc_bench.station import Station

# The conformance suite ships in the package (tests/conformance/ in the repository). Its test ids
# are relative to two folders up: tests/conformance/... in a clone, smmc_bench/conformance/...
# once installed.
CONFORMANCE = Path(conformance.__file__).resolve().parent
SUITE_ROOT = CONFORMANCE.parents[1]
PACKAGED_BENCH = Path(__file__).resolve().parents[1] / "benches" / "emulated.toml"


def default_bench() -> str:
    """./bench.toml where there is one, else the packaged emulated bench (a fresh install runs)."""
    return "bench.toml" if Path("bench.toml").exists() else str(PACKAGED_BENCH)


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_TESTS = 0, 1, 2, 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a run stopped by Ctrl-C

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
        usage_error(f"bench configuration error\n{exc}")
    return config


def usage_error(message: str) -> NoReturn:
    """Print a usage or configuration error and exit 2. Never wrapped: a CI log grep for the file
    or key finds it whole."""
    first, _, rest = message.partition("\n")
    error_console.print(f"[bold red]{escape(first)}[/]" + (f"\n{escape(rest)}" if rest else ""), soft_wrap=True)
    raise SystemExit(EXIT_USAGE)


def suite_folder(suite: str) -> Path:
    """The folder of a suite given as a folder or a test file: pytest loads no conftest above it."""
    path = Path(suite).resolve()
    return path if path.is_dir() else path.parent
