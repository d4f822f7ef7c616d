"""Meter positions in parallel (issue #9): `.venv/bin/python benchmarks/parallel_positions.py`.

1. Virtual time: the 8-position emulated rack (examples/rack8.toml), `-j 2` against `-j 1`, in
   verdicts per second (target >= 1.7x on 2 cores); the merged record must hold every verdict once.
2. Links paced at 9600 Bd in real time, as on hardware: 32 emulated positions (one worker each)
   against one position, in wall time (target < 2x), on a subset of the suite (aspects 1 and 13).

Prints each figure against its target as a ratio; not a test, it never fails CI.

The runs write bytecode caches as an installed bench has them (pip compiles a wheel at install):
with PYTHONDONTWRITEBYTECODE set, as on some CI machines, every worker would compile and
assertion-rewrite the whole suite again, about half of its start-up CPU. A warm-up run fills the caches.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACED_SUBSET = "aspect13 or aspect01_arch"


INSTALLED_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
CPU_SECONDS: dict[str, float] = {}  # bench run arguments -> CPU seconds of the run and its workers


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(bench: Path, reports: Path, *extra: str) -> tuple[float, dict]:
    start, cpu = time.perf_counter(), children_cpu()
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench),
                             "--reports", str(reports), *extra], cwd=ROOT, capture_output=True, text=True,
                            env=INSTALLED_ENV)
    elapsed = time.perf_counter() - start
    CPU_SECONDS[f"{bench.name} {' '.join(extra)}"] = children_cpu() - cpu
    records = sorted(reports.glob("*/record.json"))
    if not records:
        print(result.stdout[-3000:], result.stderr[-2000:])
        raise SystemExit(f"bench run {' '.join(extra)} on {bench} gave no record")
    record = json.loads(records[-1].read_text())
    if result.returncode != 0:  # a figure is still a figure: say what went wrong beside it
        print(f"  (not all PASS: {record.get('summary')}; first problem: "
              f"{next((t['diagnosis'] for t in record['tests'] if t['verdict'] != 'PASS'), '?')})")
    return elapsed, record


def paced_bench(folder: Path, positions: int) -> Path:
    meters = "".join(f'''
[[meter]]
id = "pos-{n}"
profile = "emulated-idis"
emulated = true
[meter.link]
kind = "hdlc-tcp"
[meter.security]
client_sap = 1
authentication = "low"
''' for n in range(1, positions + 1))
    path = folder / f"paced-{positions}.toml"
    path.write_text(f'[bench]\nstation_id = "PACED-{positions}"\n[emulator]\nenabled = true\npace_baud = 9600\n{meters}')
    return path


def machine_note() -> None:
    """Wall-time ratios only mean something on an otherwise idle machine: say how busy it is."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = " (busy: other processes compete for the cores, the wall-time ratios understate)" if load > cores else ""
    print(f"machine: {cores} cores, load average {load:.1f}{busy}")


def main() -> None:
    machine_note()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rack = ROOT / "examples" / "rack8.toml"
        run(rack, tmp / "warm-up", "-k", PACED_SUBSET)  # bytecode caches, as an installed bench has them
        one, record_one = run(rack, tmp / "j1")
        two, record_two = run(rack, tmp / "j2", "-j", "2")
        ids = [t["id"] for t in record_two["tests"]]
        assert len(ids) == len(set(ids)) == len(record_one["tests"]), "the merged record lost or doubled verdicts"
        rate_one, rate_two = len(record_one["tests"]) / one, len(ids) / two
        print(f"virtual time, 8 positions: -j 1 {rate_one:.1f} verdicts/s ({one:.1f} s), -j 2 {rate_two:.1f} "
              f"verdicts/s ({two:.1f} s): {rate_two / rate_one:.2f}x (target >= 1.7x); merged record: "
              f"{len(ids)} verdicts, each once")
        cpu_one, cpu_two = CPU_SECONDS["rack8.toml "], CPU_SECONDS["rack8.toml -j 2"]
        cores = min(2, os.cpu_count() or 1)
        print(f"  CPU seconds (run and workers): -j 1 {cpu_one:.1f}, -j 2 {cpu_two:.1f}; on {cores} idle cores "
              f"-j 2 could reach at most {cpu_one / (cpu_two / cores):.2f}x")

        single, _ = run(paced_bench(tmp, 1), tmp / "p1", "-k", PACED_SUBSET)
        for positions in (8, 32):
            many, record_many = run(paced_bench(tmp, positions), tmp / f"p{positions}", "-k", PACED_SUBSET,
                                    "-j", str(positions))
            print(f"paced at 9600 Bd, aspects 1 and 13: 1 position {single:.1f} s, {positions} positions on "
                  f"{positions} workers {many:.1f} s: {many / single:.2f}x the wall time (target < 2x); "
                  f"{record_many.get('summary')}")
            cpu = CPU_SECONDS[f"paced-{positions}.toml -k {PACED_SUBSET} -j {positions}"]
            print(f"  CPU seconds: 1 position {CPU_SECONDS[f'paced-1.toml -k {PACED_SUBSET}']:.1f}, "
                  f"{positions} positions {cpu:.1f} (at least {cpu / (os.cpu_count() or 1):.1f} s of wall time "
                  f"on {os.cpu_count()} cores)")
        machine_note()


if __name__ == "__main__":
    main()
