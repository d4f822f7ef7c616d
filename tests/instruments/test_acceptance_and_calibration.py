"""bench doctor --instruments end to end on the emulated bench; calibration summary; strict settings."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.instrument_acceptance import (
    run_acceptance,
    unconfirmed_entries,
    write_station_record,
)
from smmc_bench.instruments import AcSourceSettings, LoadSettings, calibration_summary

AC = AcSourceSettings(emulated=True, model="chroma-61500")
LOAD = LoadSettings(kind="scpi", emulated=True)


def test_acceptance_passes_on_the_emulated_bench_and_is_recorded(tmp_path):
    report = run_acceptance(AC, LOAD, VirtualClock(), today=dt.date(2026, 12, 5))
    verdicts = {step.name: step.verdict for step in report.steps}
    assert report.passed, report.steps
    phase = next(step for step in report.steps if step.name == "phase-synchronised start at 90 deg")
    assert (phase.verdict, phase.reading, phase.reading_source) == ("PASS", 90.0, "source read-back")
    assert "phase angle" in phase.scope
    assert any("LIST:DWEL" in entry for entry in report.unconfirmed)
    record = tmp_path / "station-record.json"
    record.write_text(json.dumps({"station_id": "EMU-01"}))
    write_station_record(record, report)
    saved = json.loads(record.read_text())
    assert saved["station_id"] == "EMU-01" and saved["instrument_acceptance"]["passed"] is True


def test_acceptance_fails_on_a_scope_reading_that_disagrees():
    readings = iter([0.010, 0.5, 90.0, 2.0])  # the scope saw a 10 ms dropout for 200 ms programmed
    report = run_acceptance(AC, LOAD, VirtualClock(), reading=lambda prompt, own: next(readings))
    dropout = report.steps[0]
    assert dropout.verdict == "FAIL" and dropout.reading_source == "scope" and not report.passed


def test_acceptance_on_a_source_without_sequencer():
    report = run_acceptance(AcSourceSettings(emulated=True, model="keysight-ac6800"), None, VirtualClock())
    assert report.passed and report.steps[0].measured is not None
    phase = next(step for step in report.steps if step.name.startswith("phase-synchronised"))
    assert phase.verdict == "NOT SUPPORTED" and "keysight-ac6800" in phase.diagnosis


def test_acceptance_phase_step_takes_the_scope_angle():
    prompts = []

    def scope(prompt, own):
        prompts.append(prompt)
        return {"phase": 0.0}.get("phase" if "phase angle" in prompt else "", own)  # the scope saw 0 deg

    report = run_acceptance(AcSourceSettings(emulated=True, model="ametek-ci"), LOAD, VirtualClock(), reading=scope)
    phase = next(step for step in report.steps if step.name == "phase-synchronised start at 90 deg")
    assert (phase.verdict, phase.reading_source, phase.measured) == ("FAIL", "scope", 90.0)
    assert "read 0 deg for 90 deg" in phase.diagnosis and not report.passed
    assert any("positive peak" in prompt for prompt in prompts)


def test_unconfirmed_entries_name_the_model():
    assert all(entry.startswith(("AC source ametek-ci", "load generic"))
               for entry in unconfirmed_entries(AcSourceSettings(emulated=True, model="ametek-ci"), LOAD))


def test_calibration_summary_flags_overdue():
    ac = AcSourceSettings.model_validate({"emulated": True, "model": "chroma-61500", "calibration": {
        "last": dt.date(2025, 1, 1), "due": dt.date(2026, 1, 1), "certificate": "CAL-1"}})
    summary = calibration_summary(ac, LOAD, dt.date(2026, 12, 5), {"AC source": "Chroma ATE,61604"})
    source, load = summary
    assert source.overdue and source.certificate == "CAL-1" and source.identification == "Chroma ATE,61604"
    assert not load.overdue and load.certificate is None
    assert source.as_record()["due"] == "2026-01-01"
    assert not calibration_summary(ac, None, dt.date(2025, 6, 1))[0].overdue


@pytest.mark.parametrize("section,bad,key", [
    (AcSourceSettings, {"emulated": True, "timeout": float("inf")}, "timeout"),
    (AcSourceSettings, {"emulated": True, "nominal_voltage": float("nan")}, "nominal_voltage"),
    (AcSourceSettings, {"emulated": True, "timeout": "2"}, "timeout"),
    (AcSourceSettings, {"emulated": True, "timeout": 1e9}, "timeout"),
    (AcSourceSettings, {"emulated": True, "calibration": {"last": dt.date(2026, 1, 1), "due": dt.date(2025, 1, 1),
                                                          "certificate": "x"}}, "calibration"),
    (LoadSettings, {"kind": "scpi", "emulated": True, "mode": "CV"}, "mode"),
    (LoadSettings, {"kind": "scpi", "emulated": True, "commands": {"fire": "X"}}, "commands"),
    (LoadSettings, {"kind": "modbus", "emulated": True, "registers": "input"}, "registers"),
])
def test_malformed_sections_name_the_key(section, bad, key):
    with pytest.raises(ValidationError) as caught:
        section.model_validate(bad)
    assert key in str(caught.value)
