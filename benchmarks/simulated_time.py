"""Simulated meter time per wall-clock second for the supply scenarios on the emulated bench.

Runs the conformance modules of aspect 7 (outages, events, alarms), 14 (remote
power limit) and 15 (local power limit, over the optical port) under pytest on
a generated emulated bench (AC source, load, the supply features on), and
records for every test how far the bench clock (= the meter's clock) moved
and how much wall time the test body took. Target: >= 100x.

Run: python benchmarks/simulated_time.py
(Not a test: it prints figures and never fails CI. The same file is the
pytest plugin the child runs load with `-p simulated_time`.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 100.0
OUT_ENV = "SIMULATED_TIME_OUT"
SUPPLY_FEATURES = ("limiter", "power_failure_log", "alarm_register", "alarm_push", "limiter_emergency_profile",
                   "local_limiter")
SCENARIOS = [
    ("aspect 7  events and alarms", "tests/conformance/test_aspect07_events_alarms.py", ["tcp"]),
    ("aspect 14 remote power limit", "tests/conformance/test_aspect14_remote_power_limit.py", ["tcp"]),
    ("aspect 15 local power limit", "tests/conformance/test_aspect15_local_power_limit.py", ["tcp", "optical"]),
]


# -- the pytest plugin side (in the child run) -----------------------------------------
try:
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        clock = getattr(item, "funcargs", {}).get("bench_clock")
        wall, simulated = time.perf_counter(), clock.monotonic() if clock is not None else None
        outcome = yield
        path = os.environ.get(OUT_ENV)
        if clock is None or not path:
            return
        record = {"test": item.nodeid.split("::")[-1], "wall_s": time.perf_counter() - wall,
                  "simulated_s": clock.monotonic() - simulated, "passed": outcome.excinfo is None}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
except ImportError:  # the parent only needs the standard library
    pass


# -- the parent ---------------------------------------------------------------------------
def supply_profile(folder: Path) -> Path:
    """The built-in emulated profile with the supply features turned on."""
    source = ROOT / "bench" / "profiles" / "emulated-idis.toml"
    features = {**tomllib.loads(source.read_text())["features"], **{name: True for name in SUPPLY_FEATURES}}
    lines, skipping = [], False
    for line in source.read_text().splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == "[features]"
            if skipping:
                lines.append("[features]")
                lines += [f"{name} = {'true' if on else 'false'}" for name, on in features.items()]
                continue
        if not skipping:
            lines.append(line)
    path = folder / "profile.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_file(folder: Path, profile: Path, links: list[str]) -> Path:
    link_tables = "".join(f'\n[[meter.links]]\nkind = "{kind}"\n' for kind in links)
    path = folder / f"bench-{'-'.join(links)}.toml"
    path.write_text(f"""
[bench]
station_id = "BENCHMARK"

[emulator]
enabled = true

[ac_source]
emulated = true
model = "chroma-61500"

[load]
kind = "scpi"
emulated = true

[[meter]]
id = "emu-1"
profile = "{profile}"
emulated = true
{link_tables}
[meter.security]
client_sap = 1
authentication = "low"
password_file = "{ROOT / 'fixtures' / 'secrets' / 'lls-password.txt'}"
""")
    return path


def run_scenario(module: str, bench: Path, folder: Path) -> tuple[list[dict], float, str]:
    out = folder / f"{Path(module).stem}.jsonl"
    out.unlink(missing_ok=True)
    env = {**os.environ, OUT_ENV: str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", module, "-q", "-p", "no:cacheprovider", "-p", "simulated_time",
               "--smmc-bench", str(bench), "--smmc-run-dir", str(folder / Path(module).stem)]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    tail = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return records, elapsed, tail


def main() -> None:
    print(f"simulated meter time per wall-clock second (target >= {TARGET:.0f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        profile = supply_profile(folder)
        for title, module, links in SCENARIOS:
            records, elapsed, tail = run_scenario(module, bench_file(folder, profile, links), folder)
            simulated = sum(r["simulated_s"] for r in records)
            wall = sum(r["wall_s"] for r in records)
            failed = [r["test"] for r in records if not r["passed"]]
            if not records:
                print(f"  {title}: no test ran ({tail})")
                continue
            ratio = simulated / wall if wall else float("inf")
            print(f"  {title}: {simulated:8.0f} s simulated in {wall:6.2f} s of test bodies -> {ratio:8.0f}x "
                  f"({'meets' if ratio >= TARGET else 'MISSES'} target); whole pytest run {elapsed:.1f} s "
                  f"-> {simulated / elapsed:.0f}x; {tail}")
            for record in records:
                per = record["simulated_s"] / record["wall_s"] if record["wall_s"] else float("inf")
                print(f"      {record['simulated_s']:7.0f} s / {record['wall_s']:6.3f} s = {per:8.0f}x  "
                      f"{'' if record['passed'] else 'FAILED '}{record['test']}")
            if failed:
                print(f"    (failed: {', '.join(failed)}: the figures still show the time taken)")


if __name__ == "__main__":
    main()
