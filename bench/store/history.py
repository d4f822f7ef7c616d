"""Queries over the store: the runs of a meter or model, what changed between firmware versions, and
the meter data (load profile, events) the tests read."""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from smmc_bench.store.models import MeterDataRow, Run, RunMeter, TestResult

BAD = ("FAIL", "ERROR")


@dataclass(frozen=True)
class RunRow:
    """One meter in one run."""
    run_id: str
    started: str
    meter_id: str
    model: str
    firmware: str
    serial_number: str
    outcome: str
    passed: int
    failed: int
    errors: int
    skipped: int
    mutant: str | None


@dataclass(frozen=True)
class Change:
    """A test whose verdict differs between the last runs of two firmware versions of one meter model."""
    model: str
    test: str
    old_firmware: str
    old_verdict: str
    old_run: str
    new_firmware: str
    new_verdict: str
    new_run: str

    @property
    def regression(self) -> bool:
        return self.old_verdict == "PASS" and self.new_verdict in BAD


def runs(engine: Engine, meter: str | None = None, model: str | None = None, limit: int | None = None) -> list[RunRow]:
    """Newest first. Runs against a mutant are method validation, not a meter's history: left out."""
    query = (select(Run, RunMeter).join(RunMeter, RunMeter.run_id == Run.run_id)
             .where(Run.mutant.is_(None)).order_by(Run.started.desc(), RunMeter.meter_id))
    if meter:
        query = query.where(RunMeter.meter_id == meter)
    if model:
        query = query.where(RunMeter.model == model)
    if limit:
        query = query.limit(limit)
    with Session(engine) as session:
        return [RunRow(run.run_id, run.started, m.meter_id, m.model, m.firmware or "?", m.serial_number or "?",
                       run.outcome, run.passed, run.failed, run.errors, run.skipped, run.mutant)
                for run, m in session.execute(query)]


def _verdicts(session: Session, run_id: str, meter_id: str) -> dict[str, str]:
    rows = session.execute(select(TestResult.name, TestResult.link, TestResult.verdict)
                           .where(TestResult.run_id == run_id, TestResult.meter_id == meter_id))
    return {f"{name} [{link}]" if link else name: verdict for name, link, verdict in rows}


def firmware_changes(engine: Engine, meter: str | None = None, model: str | None = None) -> list[Change]:
    """Per meter model: the latest run of the newest firmware against the latest run of the firmware
    before it (in the order the firmware versions first appear); every test whose verdict changed."""
    ordered = list(reversed(runs(engine, meter=meter, model=model)))  # oldest first
    changes: list[Change] = []
    for name in sorted({row.model for row in ordered}):
        latest: dict[str, RunRow] = {}
        for row in (r for r in ordered if r.model == name and r.firmware != "?"):
            latest.pop(row.firmware, None)  # keeps the firmware order by latest run
            latest[row.firmware] = row
        if len(latest) < 2:
            continue
        old, new = list(latest.values())[-2:]
        with Session(engine) as session:
            before, after = _verdicts(session, old.run_id, old.meter_id), _verdicts(session, new.run_id, new.meter_id)
        for test in sorted(set(before) | set(after)):
            was, now = before.get(test, "absent"), after.get(test, "absent")
            if was != now:
                changes.append(Change(name, test, old.firmware, was, old.run_id, new.firmware, now, new.run_id))
    return changes


@dataclass(frozen=True)
class DataRow:
    """A row of meter data a test of a run read (see models.MeterDataRow)."""
    run_id: str
    test: str
    meter_id: str | None
    obis: str
    kind: str
    stamp: str | None
    values: dict


def meter_data(engine: Engine, run: str | None = None, meter: str | None = None, kind: str | None = None,
               obis: str | None = None) -> list[DataRow]:
    """The load-profile, event, power-failure and billing rows the tests read, oldest stamp first."""
    query = (select(MeterDataRow, TestResult.name).join(TestResult, TestResult.id == MeterDataRow.test_result_id)
             .order_by(MeterDataRow.run_id, MeterDataRow.stamp, MeterDataRow.id))
    for column, wanted in ((MeterDataRow.run_id, run), (MeterDataRow.meter_id, meter), (MeterDataRow.kind, kind),
                           (MeterDataRow.obis, obis)):
        if wanted is not None:
            query = query.where(column == wanted)
    with Session(engine) as session:
        return [DataRow(row.run_id, name, row.meter_id, row.obis, row.kind, row.stamp, json.loads(row.values))
                for row, name in session.execute(query)]
