"""Opening the store and appending a run to it."""
from __future__ import annotations

import json
import math
from pathlib import Path

from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session

from smmc_bench.report.record import RunRecord
from smmc_bench.store.models import Base, MeasurementRow, MeterDataRow, Run, RunMeter, TestResult

DEFAULT_FILE = "results.sqlite"


class StoreError(Exception):
    """The store cannot be opened or written; the message says which and why (never a password)."""


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite", database=str(path))


def open_store(url: URL | str, password: str | None = None) -> Engine:
    """An engine on the store, its tables created if missing (so an older store gains the tables added
    since it was made, e.g. meter_data_rows; its rows stay as they were). The password, when the URL needs one,
    comes from the bench's environment variable, never from the URL text in bench.toml."""
    url = make_url(url) if isinstance(url, str) else url
    if password is not None:
        url = url.set(password=password)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, future=True)
        Base.metadata.create_all(engine)
    except Exception as exc:  # any driver error: say where, never the password
        raise StoreError(f"cannot open the results store {url.render_as_string(hide_password=True)}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return engine


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def append_run(engine: Engine, record: RunRecord) -> None:
    """Add one run (replacing an earlier copy of the same run id, e.g. a run stored twice)."""
    counts = record.counts()
    run = Run(run_id=record.run_id, started=record.started, finished=record.finished,
              station_id=record.station.get("station_id", ""), lab=record.station.get("lab", ""),
              operator=record.station.get("operator", ""), bench_file=record.bench_file,
              bench_sha256=record.bench_sha256, mutant=record.mutant, outcome=record.outcome.value,
              interrupted=record.interrupted, software=json.dumps(record.software, sort_keys=True),
              passed=counts["PASS"], failed=counts["FAIL"], errors=counts["ERROR"], skipped=counts["SKIP"])
    for meter in record.meters:
        run.meters.append(RunMeter(
            meter_id=meter.id, model=meter.profile, profile_sha256=meter.profile_sha256, emulated=meter.emulated,
            serial_number=meter.identity.get("serial_number"), firmware=meter.identity.get("firmware_id"),
            logical_device_name=meter.identity.get("logical_device_name")))
    rows = []
    for test in record.tests:
        row = TestResult(test_id=test.id, name=test.name, aspect=test.aspect, article=test.article,
                         meter_id=test.meter, link=test.link, verdict=test.verdict.value,
                         duration=test.duration, diagnosis=test.diagnosis)
        run.tests.append(row)
        rows.append((row, test))
    try:
        with Session(engine) as session, session.begin():
            old = session.scalar(select(Run).where(Run.run_id == record.run_id))
            if old is not None:
                session.delete(old)
                session.flush()
            session.add(run)
            session.flush()  # the test rows' ids, which their measurements and meter data point at
            # Measurements and meter data as bulk inserts: a rack's run holds tens of thousands of
            # load-profile rows, and one ORM object each took seconds at the end of every run.
            measurements = [_measurement(row.id, m) for row, test in rows for m in test.measurements]
            data = [{"test_result_id": row.id, "run_id": record.run_id, "meter_id": test.meter,
                     "obis": str(d.get("obis", "")), "kind": str(d.get("kind", "")), "stamp": d.get("stamp"),
                     "values": json.dumps(d.get("values", {}), sort_keys=True, default=str)}
                    for row, test in rows for d in test.meter_data]
            if measurements:
                session.execute(insert(MeasurementRow), measurements)
            if data:
                session.execute(insert(MeterDataRow), data)
    except Exception as exc:
        raise StoreError(f"cannot store run {record.run_id} in {engine.url.render_as_string(hide_password=True)}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _measurement(test_result_id: int, m: dict) -> dict:
    numeric = _number(m.get("value"))
    return {"test_result_id": test_result_id, "name": str(m.get("name", "")), "value": numeric,
            "value_text": None if numeric is not None else json.dumps(m.get("value"), default=str),
            "unit": m.get("unit") or "", "article": m.get("article") or "", "passed": bool(m.get("passed")),
            "low": _number(m.get("low")), "high": _number(m.get("high")),
            "expected": None if m.get("expected") is None else json.dumps(m.get("expected"), default=str),
            "provisional": bool(m.get("provisional"))}
