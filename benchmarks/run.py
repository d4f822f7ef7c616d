"""All benchmarks in one command: `.venv/bin/python benchmarks/run.py` (a few minutes:
the HDLC figures pace a link at 9600 Bd in real time).

Prints each figure against its target as a ratio; not a test, it never fails CI.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_TARGET_S = 20.0  # `bench run` on the default bench, aspects 6 and 13 (issue #2)


def bench_run_wall_time() -> float:
    with tempfile.TemporaryDirectory() as reports:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--reports", reports],
                                cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:])
        raise SystemExit("bench run did not pass on the default bench")
    return elapsed


# Each prints its own figures against its target (issues #2, #4, #3, #10, #12, #9).
SCRIPTS = ("dlms_get_rate.py", "simulated_time.py", "hdlc_efficiency.py", "lp_over_hdlc.py", "firmware_image.py",
           "hls_get_rate.py", "parallel_positions.py")


def main() -> None:
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / script)], cwd=ROOT, check=True)
    elapsed = bench_run_wall_time()
    print(f"bench run (default bench): {elapsed:.1f} s wall, target < {RUN_TARGET_S:.0f} s "
          f"-> {RUN_TARGET_S / elapsed:.1f}x under target")


if __name__ == "__main__":
    main()
