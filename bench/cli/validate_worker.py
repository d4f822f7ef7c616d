"""One `bench validate` worker: judges the suite against several mutants in turn, in one
process (`python -m smmc_bench.cli.validate_worker`), so the interpreter, pytest and the bench are
loaded once per worker instead of once per mutant.

Each mutant is still a run of its own: a fresh pytest session (`pytest.main`) whose station
serves freshly started emulated meters, links and instruments as that mutant, with its own
run folder, record and `pytest.log`. A worker that dies or hangs loses only the run it was on:
the parent names that run incomplete and starts another worker for the rest.

Protocol: the parent writes one name per line on stdin ("-" for the conforming meter); the
worker answers each with one JSON line on its stdout, {"name": ..., "exit": pytest's code},
once that run's record is written. Everything a run prints goes to its own `pytest.log`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CONFORMING = "-"


def run_folder(out: Path, name: str) -> Path:
    return out / ("conforming" if name == CONFORMING else name)


def pytest_args(args: argparse.Namespace, name: str, run_dir: Path) -> list[str]:
    from smmc_bench.cli.common import suite_folder

    command = [args.suite, f"--rootdir={args.rootdir}", f"--confcutdir={suite_folder(args.suite)}", "-q",
               "-p", "no:cacheprovider",
               "--smmc-bench", args.bench, "--smmc-run-dir", str(run_dir)]
    if args.k:
        command += ["-k", args.k]
    if name != CONFORMING:
        command += ["--smmc-mutant", name]
    return command


def judge(args: argparse.Namespace, name: str) -> int:
    import pytest

    run_dir = run_folder(Path(args.out), name)
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(run_dir / "pytest.log", "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            return int(pytest.main(pytest_args(args, name, run_dir)))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m smmc_bench.cli.validate_worker")
    parser.add_argument("--bench", required=True)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--rootdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("-k", default=None)
    args = parser.parse_args()
    # The answers go to the parent on a descriptor of their own: fd 1 is each run's log.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    try:
        for line in sys.stdin:
            name = line.strip()
            if name:
                code = judge(args, name)
                answers.write(json.dumps({"name": name, "exit": code}) + "\n")
    except KeyboardInterrupt:  # stopped between runs (a run in progress handles its own)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
