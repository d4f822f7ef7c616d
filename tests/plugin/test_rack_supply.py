"""One supply cut for every position on the AC source: each meter judged on its own (issue #9)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_CUT_TESTS = "outage_logs_power_down or long_outage"


def rack(folder: Path, positions: int, mutants: dict[int, str]) -> Path:
    meters = "".join(f'''
[[meter]]
id = "pos-{n}"
profile = "emulated-idis"
emulated = true
{f'mutant = "{mutants[n]}"' if n in mutants else ''}
[meter.security]
client_sap = 1
authentication = "low"
''' for n in range(1, positions + 1))
    path = folder / "rack.toml"
    path.write_text(f'[bench]\nstation_id = "RACK"\n[emulator]\nenabled = true\n[ac_source]\nemulated = true\n'
                    f'model = "chroma-61500"\n{meters}')
    return path


def run(bench: Path, reports: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench), "--reports",
                             str(reports), "-k", SHARED_CUT_TESTS, *extra],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    records = sorted(reports.glob("*/record.json"))
    assert records, result.stdout[-2000:] + result.stderr[-2000:]
    return result, json.loads(records[-1].read_text())


def cut_steps(test: dict) -> str:
    return " ".join(step["information"] for step in test["steps"] if step["id"] == "1")


def test_one_cut_for_the_rack_and_the_bad_position_fails_alone(tmp_path):
    result, record = run(rack(tmp_path, 3, {2: "power-events-missing"}), tmp_path / "reports")
    verdicts = {(t["id"].split("::")[-1].split("[")[0], t["meter"]): t["verdict"] for t in record["tests"]}
    assert verdicts == {
        ("test_outage_logs_power_down_and_up_events", "pos-1"): "PASS",
        ("test_outage_logs_power_down_and_up_events", "pos-2"): "FAIL",  # its meter logged no power events
        ("test_outage_logs_power_down_and_up_events", "pos-3"): "PASS",
        ("test_long_outage_gives_a_power_failure_entry_with_its_duration", "pos-1"): "PASS",
        ("test_long_outage_gives_a_power_failure_entry_with_its_duration", "pos-2"): "PASS",
        ("test_long_outage_gives_a_power_failure_entry_with_its_duration", "pos-3"): "PASS",
    }, result.stdout[-3000:]
    # The record, and the console, say which position was the mutant.
    assert {m["id"]: m["mutant"] for m in record["meters"]} == {"pos-1": None, "pos-2": "power-events-missing",
                                                                 "pos-3": None}
    assert "mutant power-events-missing" in " ".join(result.stdout.split())
    by_meter = {(t["id"].split("[")[0], t["meter"]): t for t in record["tests"]}
    for name in {key[0] for key in by_meter}:
        first, *others = (by_meter[(name, f"pos-{n}")] for n in (1, 2, 3))
        assert "one cut for this position and pos-2, pos-3 on the same source" in cut_steps(first)
        for other in others:
            assert "one cut shared with" in cut_steps(other) and "the same source" not in cut_steps(other)
            # The readings made before the cut, in the other test, are that position's evidence.
            assert any("before the shared cut" in step["information"] for step in other["steps"])


def test_each_worker_shares_its_cut_among_its_own_positions(tmp_path):
    result, record = run(rack(tmp_path, 4, {}), tmp_path / "reports", "-j", "2")
    assert record["outcome"] == "PASS" and len(record["tests"]) == 8, result.stdout[-3000:]
    makers = [t for t in record["tests"] if "on the same source" in cut_steps(t)]
    # Two workers, two positions each: per test, each worker cuts once for both of its positions.
    assert len(makers) == 4 and all(cut_steps(t).count("pos-") == 1 for t in makers)


def test_a_mutant_position_needs_an_emulated_meter_and_a_meter_mutant(tmp_path):
    bench = rack(tmp_path, 1, {1: "no-such-defect"})
    result, _ = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench), "--reports",
                                str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO, timeout=120), None
    assert result.returncode == 2 and "meter[0].mutant" in result.stdout + result.stderr
    bench.write_text(bench.read_text().replace('emulated = true\nmutant', 'emulated = false\nmutant'))
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench), "--reports",
                             str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and "mutant" in result.stdout + result.stderr
