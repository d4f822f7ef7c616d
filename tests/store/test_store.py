"""The results store (aspect 11): runs appended, history across firmware versions with regressions,
export, and the same on a real PostgreSQL server."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from smmc_bench.report.record import MeterRecord, RunRecord, TestRecord, Verdict
from smmc_bench.store.database import append_run, open_store, sqlite_url
from smmc_bench.store.export import export
from smmc_bench.store.history import firmware_changes, meter_data, runs
from smmc_bench.store.models import Base

from .conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]


def record(run_id: str, started: str, firmware: str, verdicts: dict[str, Verdict], mutant: str | None = None,
           model: str = "emulated-idis") -> RunRecord:
    return RunRecord(
        run_id=run_id, started=started, finished=started, station={"station_id": "LAB-1", "lab": "L", "operator": "o"},
        bench_file="bench.toml", mutant=mutant,
        meters=[MeterRecord(id="m-1", profile=model, emulated=False,
                            identity={"serial_number": "SN1", "firmware_id": firmware})],
        tests=[TestRecord(id=f"t::{name}", name=name, aspect=13, article="3-11", meter="m-1", verdict=verdict,
                          measurements=[{"name": "drift", "value": 0.4, "unit": "s", "article": "3-11",
                                         "passed": verdict is Verdict.PASS, "low": None, "high": 2.0,
                                         "expected": None, "provisional": False}],
                          meter_data=[{"kind": "load_profile", "obis": "1.0.99.1.0.255",
                                       "stamp": f"{started[:10]}T00:15:00+00:00", "values": {"status": 0, "energy": 12.5}},
                                      {"kind": "event", "obis": "0.0.99.98.0.255",
                                       "stamp": f"{started[:10]}T00:20:00+00:00", "values": {"code": 4}}])
               for name, verdict in verdicts.items()])


def fill(engine) -> None:
    append_run(engine, record("r1", "2026-12-01T10:00:00", "FW-1.0", {"test_sync": Verdict.PASS, "test_shift": Verdict.PASS}))
    append_run(engine, record("r2", "2026-12-02T10:00:00", "FW-1.1", {"test_sync": Verdict.FAIL, "test_shift": Verdict.PASS}))
    append_run(engine, record("r3", "2026-12-03T10:00:00", "FW-1.1", {"test_sync": Verdict.FAIL}, mutant="clock-ignores-set"))
    append_run(engine, record("r2", "2026-12-02T10:00:00", "FW-1.1", {"test_sync": Verdict.FAIL, "test_shift": Verdict.PASS}))


def check_history(engine) -> None:
    rows = runs(engine)
    assert [(r.run_id, r.firmware, r.outcome) for r in rows] == [("r2", "FW-1.1", "FAIL"), ("r1", "FW-1.0", "PASS")]
    changes = firmware_changes(engine, model="emulated-idis")
    assert [(c.test, c.old_firmware, c.old_verdict, c.new_firmware, c.new_verdict, c.regression) for c in changes] == \
        [("test_sync", "FW-1.0", "PASS", "FW-1.1", "FAIL", True)]
    assert runs(engine, meter="other") == [] and firmware_changes(engine, model="other") == []
    # The meter data the tests read: r2 stored twice keeps one copy; each row names its run, test and meter.
    intervals = meter_data(engine, run="r2", kind="load_profile")
    assert sorted((r.test, r.meter_id, r.obis, r.stamp, r.values["energy"]) for r in intervals) == [
        (name, "m-1", "1.0.99.1.0.255", "2026-12-02T00:15:00+00:00", 12.5) for name in ("test_shift", "test_sync")]
    events = meter_data(engine, meter="m-1", kind="event")
    assert sorted((r.run_id, r.values["code"]) for r in events) == \
        [("r1", 4), ("r1", 4), ("r2", 4), ("r2", 4), ("r3", 4)]
    assert meter_data(engine, meter="other") == []


def test_sqlite_history_lists_runs_and_flags_the_firmware_regression(tmp_path):
    engine = open_store(sqlite_url(tmp_path / "results.sqlite"))
    fill(engine)
    check_history(engine)


def test_postgresql_history_lists_runs_and_flags_the_firmware_regression(postgres_url):
    engine = open_store(postgres_url, password=PASSWORD)
    fill(engine)
    check_history(engine)


def bench(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smmc_bench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env=dict(os.environ, COLUMNS="160", **(env or {})))


def test_history_and_export_commands(tmp_path):
    fill(open_store(sqlite_url(tmp_path / "results.sqlite")))
    shown = bench("history", "--store", str(tmp_path / "results.sqlite"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "REGRESSION" in shown.stdout and "2 runs; 1 regressions" in shown.stdout, shown.stdout
    exported = bench("export", "--store", str(tmp_path / "results.sqlite"), "--out", str(tmp_path / "csv"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "csv" / "measurements.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 5 and rows[0]["high"] == "2.0"
    with (tmp_path / "csv" / "meter_data_rows.csv").open() as table:
        data = list(csv.DictReader(table))
    assert len(data) == 10 and {row["kind"] for row in data} == {"load_profile", "event"}
    assert {json.loads(row["values"])["energy"] for row in data if row["kind"] == "load_profile"} == {12.5}


def test_parquet_export_has_the_meter_data(tmp_path):
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet", reason="Parquet export needs pyarrow")
    engine = open_store(sqlite_url(tmp_path / "results.sqlite"))
    fill(engine)
    export(engine, tmp_path / "parquet", "parquet")
    table = pyarrow_parquet.read_table(tmp_path / "parquet" / "meter_data_rows.parquet").to_pylist()
    assert len(table) == 10 and {row["obis"] for row in table} == {"1.0.99.1.0.255", "0.0.99.98.0.255"}


def test_an_older_sqlite_store_opens_and_gains_the_meter_data_table(tmp_path):
    """A store written before meter_data_rows existed: opened, its runs kept, new runs with meter data added."""
    path = tmp_path / "old.sqlite"
    old = create_engine(sqlite_url(path))
    Base.metadata.create_all(old, tables=[t for t in Base.metadata.sorted_tables if t.name != "meter_data_rows"])
    with old.begin() as connection:
        connection.execute(text("INSERT INTO runs (run_id, started, finished, station_id, lab, operator, bench_file, "
                                "outcome, interrupted, software, passed, failed, errors, skipped) VALUES ('r0', "
                                "'2026-11-30T10:00:00', NULL, 'LAB-1', 'L', 'o', 'bench.toml', 'PASS', 0, '{}', 1, 0, 0, 0)"))
        connection.execute(text("INSERT INTO run_meters (run_id, meter_id, model, emulated, firmware) "
                                "VALUES ('r0', 'm-1', 'emulated-idis', 0, 'FW-0.9')"))
    old.dispose()
    assert "meter_data_rows" not in inspect(create_engine(sqlite_url(path))).get_table_names()
    engine = open_store(sqlite_url(path))
    assert "meter_data_rows" in inspect(engine).get_table_names()
    fill(engine)
    assert [r.run_id for r in runs(engine)] == ["r2", "r1", "r0"]
    assert len(meter_data(engine, kind="load_profile")) == 5


def test_history_reads_the_bench_store_on_postgresql_with_the_password_from_the_environment(postgres_url, tmp_path):
    engine = open_store(postgres_url, password=PASSWORD)
    fill(engine)
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text((REPO / "bench.toml").read_text().replace(
        'password_file = "fixtures/secrets/lls-password.txt"', f'password_file = "{REPO}/fixtures/secrets/lls-password.txt"')
        + f'\n[store]\nurl = "{postgres_url}"\npassword_env = "SMMC_STORE_PASSWORD"\n')
    shown = bench("history", "--bench", str(bench_file), cwd=tmp_path, env={"SMMC_STORE_PASSWORD": PASSWORD})
    assert shown.returncode == 0 and "REGRESSION" in shown.stdout, shown.stdout + shown.stderr
    assert PASSWORD not in shown.stdout + shown.stderr
    missing = bench("history", "--bench", str(bench_file), cwd=tmp_path)
    assert missing.returncode == 2 and "SMMC_STORE_PASSWORD" in missing.stderr


def test_a_password_in_the_store_url_is_refused_naming_the_key(tmp_path):
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text((REPO / "bench.toml").read_text().replace(
        'password_file = "fixtures/secrets/lls-password.txt"', f'password_file = "{REPO}/fixtures/secrets/lls-password.txt"')
        + '\n[store]\nurl = "postgresql+psycopg://bench:hunter2@db.lab/smmc"\n')
    result = bench("history", "--bench", str(bench_file), cwd=tmp_path)
    assert result.returncode == 2 and "store.url" in result.stderr and "hunter2" not in result.stderr, result.stderr
