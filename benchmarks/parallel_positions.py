"""Meter positions in parallel (issue #9): `.venv/bin/python benchmarks/parallel_positions.py`.

1. Virtual time: the 8-position emulated rack (examples/rack8.toml), `-j 2` against `-j 1`, in
   verdicts per second (target >= 1.7x on 2 cores); the merged record must hold every verdict once.
2. Links paced at 9600 Bd in real time, as on hardware: 32 emulated positions (one worker each)
   against one position, in wall time (target < 2x), on a subset of the suite (aspects 1 and 13).

Prints each figure against its target as a ratio; not a test, it never fails CI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACED_SUBSET = "aspect13 or aspect01_arch"


def run(bench: Path, reports: Path, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench),
                             "--reports", str(reports), *extra], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rack = ROOT / "examples" / "rack8.toml"
        one, record_one = run(rack, tmp / "j1")
        two, record_two = run(rack, tmp / "j2", "-j", "2")
        ids = [t["id"] for t in record_two["tests"]]
        assert len(ids) == len(set(ids)) == len(record_one["tests"]), "the merged record lost or doubled verdicts"
        rate_one, rate_two = len(record_one["tests"]) / one, len(ids) / two
        print(f"virtual time, 8 positions: -j 1 {rate_one:.1f} verdicts/s ({one:.1f} s), -j 2 {rate_two:.1f} "
              f"verdicts/s ({two:.1f} s): {rate_two / rate_one:.2f}x (target >= 1.7x); merged record: "
              f"{len(ids)} verdicts, each once")

        single, _ = run(paced_bench(tmp, 1), tmp / "p1", "-k", PACED_SUBSET)
        for positions in (8, 32):
            many, record_many = run(paced_bench(tmp, positions), tmp / f"p{positions}", "-k", PACED_SUBSET,
                                    "-j", str(positions))
            print(f"paced at 9600 Bd, aspects 1 and 13: 1 position {single:.1f} s, {positions} positions on "
                  f"{positions} workers {many:.1f} s: {many / single:.2f}x the wall time (target < 2x); "
                  f"{record_many.get('summary')}")


if __name__ == "__main__":
    main()
