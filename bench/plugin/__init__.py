"""The pytest plugin (entry point `smmc_bench`). Inert until a session asks for the bench:

- `--smmc-bench FILE` on the command line,
- `smmc_bench = FILE` in the project's pytest ini options, or
- the environment variable `SMMC_BENCH=FILE`.

Until then it only adds its options: no fixture, marker or hook of another project's session
changes. Once asked, it registers the bench's session (recorder, fixtures, markers), and a bad
bench file or unknown mutant is one usage error before anything runs.
"""
from __future__ import annotations

import os

import pytest

ENVIRONMENT = "SMMC_BENCH"
INI = "smmc_bench"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smmc-bench", "smmc-bench (smart meter conformance bench)")
    group.addoption("--smmc-bench", dest="smmc_bench", default=None, metavar="FILE",
                    help=f"judge the bench in FILE (turns the plugin on; also ini '{INI}' or ${ENVIRONMENT})")
    group.addoption("--smmc-mutant", dest="smmc_mutant", default=None, metavar="NAME",
                    help="serve the emulated meters as this mutant (method validation)")
    group.addoption("--smmc-run-dir", dest="smmc_run_dir", default=None, metavar="DIR",
                    help="where the run record and traces go (default: reports/<run-id>)")
    group.addoption("--smmc-allure-history", dest="smmc_allure_history", default=None, metavar="DIR",
                    help="a previous generated allure report: its history/ is copied into the new results")
    group.addoption("--smmc-progress-every", dest="smmc_progress_every", type=float, default=10.0,
                    metavar="SECONDS", help="on hardware, say what a long wait waits for at least this often")
    parser.addini(INI, "bench file: turns the smmc-bench plugin on for this project", default=None)


def bench_file(config: pytest.Config) -> str | None:
    """The bench this session asked for, or None: the plugin stays out of the way."""
    return config.getoption("smmc_bench") or config.getini(INI) or os.environ.get(ENVIRONMENT) or None


def pytest_configure(config: pytest.Config) -> None:
    if bench_file(config) is None:
        if config.getoption("smmc_mutant"):
            raise pytest.UsageError("--smmc-mutant needs a bench: --smmc-bench FILE")
        return
    from smmc_bench.plugin import session

    if not config.pluginmanager.is_registered(session):
        config.pluginmanager.register(session, "smmc_bench.session")
