"""`bench doctor --instruments`: the first-day acceptance of the AC source and the load.

A lab runs it once with an oscilloscope on the source's output (and a current
probe on the load's line). It applies one dropout of known length, a sag, a
phase-synchronised start (where the model's table has one) and a load step;
for each it says what to read on the scope and takes the reading, either from
the operator (`prompt`) or from the source's own measurement (`auto`: CI, the
emulated bench, or a lab without a scope, recorded as such; for the phase
step, a dropout starting at 90 deg, that is the angle the source read back, which
shows it took the angle, not that it applies it). The result goes
into the station record (a JSON file) under "instrument_acceptance", so later
runs can cite the date and what was checked.

It also lists every command-table entry not confirmed in a manual: the first
things to check with the scope.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

from smmc_bench.drivers.instruments import InstrumentError, SafeStateGuard
from smmc_bench.drivers.instruments.load import LOAD_TABLES
from smmc_bench.instruments import (
    AcSourceSettings,
    LoadSettings,
    calibration_summary,
    open_ac_source,
    open_load,
    serve_emulated_instruments,
)

Reading = Callable[[str, float | None], float | None]  # (what to read, the source's own figure) -> value


@dataclass
class AcceptanceStep:
    name: str
    scope: str  # what the operator reads on the scope
    programmed: float | None  # s for timing steps, A for the load step
    measured: float | None  # the source's own measurement (applied_s, or the current it delivers)
    uncertainty: float | None
    reading: float | None  # the scope's (or, in auto, the source's own) figure
    reading_source: Literal["scope", "source measurement", "source read-back", "none"]
    tolerance: float
    verdict: Literal["PASS", "FAIL", "NOT SUPPORTED", "ERROR"]
    diagnosis: str = ""


@dataclass
class AcceptanceReport:
    when: str
    ac_source: str
    load: str
    steps: list[AcceptanceStep] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    calibration: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(step.verdict in ("PASS", "NOT SUPPORTED") for step in self.steps) and bool(self.steps)

    def as_record(self) -> dict:
        return {"when": self.when, "ac_source": self.ac_source, "load": self.load, "passed": self.passed,
                "steps": [asdict(step) for step in self.steps], "unconfirmed": self.unconfirmed,
                "calibration": self.calibration}


def unconfirmed_entries(ac: AcSourceSettings | None, load: LoadSettings | None) -> list[str]:
    """Every command-table entry of the configured models that no manual we read confirms."""
    from smmc_bench.drivers.instruments.ac_tables import table_for

    entries = []
    if ac is not None:
        entries += [f"AC source {ac.model}: {entry}" for entry in table_for(ac.model).unconfirmed]
    if load is not None and load.kind == "scpi":
        entries += [f"load {load.model}: {entry}" for entry in LOAD_TABLES[load.model].unconfirmed]
    return entries


def _timing_verdict(name: str, scope: str, programmed: float, applied: float | None,
                    uncertainty: float | None, reading: float | None, reading_source: str,
                    cycle_s: float) -> AcceptanceStep:
    # Half a cycle on top of the measurement's own uncertainty: a scope reads edges to that.
    tolerance = cycle_s / 2 + (uncertainty or 0.0)
    if reading is None:
        return AcceptanceStep(name, scope, programmed, applied, uncertainty, None, "none", tolerance, "ERROR",
                              "no reading (the event was not seen by the source's measurement, nor given)")
    ok = abs(reading - programmed) <= tolerance
    diagnosis = "" if ok else (f"read {reading * 1000:.1f} ms for {programmed * 1000:.1f} ms programmed "
                               f"(tolerance {tolerance * 1000:.1f} ms)")
    return AcceptanceStep(name, scope, programmed, applied, uncertainty, reading, reading_source, tolerance,
                          "PASS" if ok else "FAIL", diagnosis)


def run_acceptance(ac: AcSourceSettings, load: LoadSettings | None, clock, *,
                   reading: Reading | None = None, today: _dt.date | None = None) -> AcceptanceReport:
    """Run the procedure on the configured instruments (emulated ones are served on `clock`).

    `reading(prompt, own)` returns the scope figure for `prompt`; None (auto) takes the source's
    own measurement `own` instead and records it as such."""
    demand = {"amps": 0.0}
    served = serve_emulated_instruments(
        ac if ac.emulated and ac.resource is None else None,
        load if load is not None and load.emulated else None, clock,
        on_demand=lambda amps: demand.__setitem__("amps", amps),
        measured_current=lambda: demand["amps"])
    ac_settings = served.ac_source or ac
    load_settings = served.load if load is not None and load.emulated else load
    source_label = f"{ac.model}{' (emulated)' if ac.emulated else ''}"
    report = AcceptanceReport(when=(today or _dt.date.today()).isoformat(), ac_source=source_label,
                              load=(load.model if load and load.kind == "scpi" else (load.kind if load else "none")),
                              unconfirmed=unconfirmed_entries(ac, load))
    identities: dict[str, str] = {}

    def take(prompt: str, own: float | None) -> tuple[float | None, str]:
        if reading is None:
            return own, "source measurement" if own is not None else "none"
        return reading(prompt, own), "scope"

    try:
        source = open_ac_source(ac_settings)
        identities["AC source"] = source.identification or ""
        try:
            with SafeStateGuard(source):
                cycle = 1.0 / source.nominal_frequency
                source.safe_state()
                for name, run, scope in (
                    ("dropout 10 cycles", lambda: source.dropout(10 * cycle, clock),
                     "CH1 on the output, trigger on the falling edge: read the time at 0 V (s)"),
                    ("sag to 70 % for 25 cycles", lambda: source.sag(70, 25 * cycle, clock),
                     "CH1 on the output, trigger on the rms drop: read the time at 70 % (s)"),
                ):
                    try:
                        result = run()
                    except InstrumentError as exc:
                        report.steps.append(AcceptanceStep(name, scope, None, None, None, None, "none", 0.0,
                                                           "ERROR", exc.diagnosis))
                        continue
                    value, origin = take(f"{name}: {scope}", result.applied_s)
                    report.steps.append(_timing_verdict(name, scope, result.programmed_s, result.applied_s,
                                                        result.applied_uncertainty_s, value, origin, cycle))
                report.steps.append(_phase_step(source, clock, take))
                if load_settings is not None:
                    report.steps.append(_load_step(load_settings, source, take, identities))
        finally:
            source.close()
        report.steps.append(_safe_state_step(ac_settings))
    finally:
        served.stop()
    today = today or _dt.date.today()
    report.calibration = [entry.as_record() for entry in calibration_summary(ac, load, today, identities)]
    return report


PHASE_ANGLE_DEG = 90.0
PHASE_TOLERANCE_DEG = 10.0  # a scope cursor on a 50 Hz sine: about half a millisecond


def _phase_step(source, clock, take) -> AcceptanceStep:
    """A dropout that starts at 90 deg (the positive peak): the scope shows where the sine stops.
    Auto mode has no scope: it takes the angle the source read back (confirms the source took the
    angle, not that it applies it; recorded as 'source read-back')."""
    angle = PHASE_ANGLE_DEG
    name = f"phase-synchronised start at {angle:g} deg"
    scope = ("CH1 on the output, trigger on the dropout (falling rms or a missing half-cycle): read the "
             "phase angle of the sine where the output drops to 0 V, counted from the last rising zero "
             "crossing (deg; 90 = the positive peak)")
    if not source.table.phase_sync:
        return AcceptanceStep(name, scope, angle, None, None, None, "none", 0.0, "NOT SUPPORTED",
                              f"no phase-synchronised start in the {source.model} table")
    try:
        result = source.dropout(10.0 / source.nominal_frequency, clock, start_angle_deg=angle)
    except InstrumentError as exc:
        return AcceptanceStep(name, scope, angle, None, None, None, "none", 0.0, "ERROR", exc.diagnosis)
    value, origin = take(f"{name}: {scope}", result.start_angle_deg)
    if origin == "source measurement":
        origin = "source read-back"
    if value is None or not math.isfinite(value):
        return AcceptanceStep(name, scope, angle, result.start_angle_deg, None, None, "none",
                              PHASE_TOLERANCE_DEG, "ERROR", "no reading")
    off = abs((value - angle + 180.0) % 360.0 - 180.0)
    ok = off <= PHASE_TOLERANCE_DEG
    return AcceptanceStep(name, scope, angle, result.start_angle_deg, None, value, origin, PHASE_TOLERANCE_DEG,
                          "PASS" if ok else "FAIL",
                          "" if ok else f"read {value:g} deg for {angle:g} deg programmed "
                                        f"(tolerance {PHASE_TOLERANCE_DEG:g} deg)")


def _load_step(settings: LoadSettings, source, take, identities: dict[str, str]) -> AcceptanceStep:
    name, scope, amps = "load step 0 -> 2 A", "current probe on the line: read the rms current after the step (A)", 2.0
    try:
        load = open_load(settings)
    except InstrumentError as exc:
        return AcceptanceStep(name, scope, amps, None, None, None, "none", 0.0, "ERROR", exc.diagnosis)
    identities["load"] = load.identification or ""
    try:
        load.set_current(amps)
        load.on()
        own = source.measure().current_a
        load.off()
    except (InstrumentError, ValueError) as exc:
        return AcceptanceStep(name, scope, amps, None, None, None, "none", 0.0, "ERROR",
                              getattr(exc, "diagnosis", str(exc)))
    finally:
        load.close()
    value, origin = take(f"{name}: {scope}", own)
    tolerance = 0.05 * amps  # relay banks switch nominal steps: 5 %
    if value is None or not math.isfinite(value):
        return AcceptanceStep(name, scope, amps, own, None, None, "none", tolerance, "ERROR", "no reading")
    ok = abs(value - amps) <= tolerance
    return AcceptanceStep(name, scope, amps, own, None, value, origin, tolerance, "PASS" if ok else "FAIL",
                          "" if ok else f"read {value:.3f} A for {amps:.3f} A")


def _safe_state_step(settings: AcSourceSettings) -> AcceptanceStep:
    """The abort and return to nominal on a fresh session, as the guard does after a failure."""
    name, scope = "safe state (abort, nominal, output on)", "CH1: nominal rms voltage present (V)"
    try:
        source = open_ac_source(settings)
        try:
            source.safe_state()
            volts = source.measure().voltage_v
        finally:
            source.close()
    except InstrumentError as exc:
        return AcceptanceStep(name, scope, None, None, None, None, "none", 0.0, "FAIL", exc.diagnosis)
    tolerance = 0.02 * settings.nominal_voltage
    ok = abs(volts - settings.nominal_voltage) <= tolerance
    return AcceptanceStep(name, scope, settings.nominal_voltage, volts, None, volts, "source measurement",
                          tolerance, "PASS" if ok else "FAIL",
                          "" if ok else f"{volts:.1f} V after the safe state")


def write_station_record(path: Path, report: AcceptanceReport) -> None:
    """Merge the acceptance into the station record file (other keys are kept)."""
    record = {}
    if path.exists():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON station record ({exc})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: the station record must be a JSON object")
    record["instrument_acceptance"] = report.as_record()
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def command_doctor_instruments(args, config, console) -> int:
    """CLI entry: run, print, record. Exit 0 when every step passes (or is not supported), else 1."""
    from rich.markup import escape
    from rich.table import Table
    from smmc_bench.fixtures.clock import VirtualClock

    if config.ac_source is None:
        console.print("[red]bench doctor --instruments[/]: no [ac_source] in the bench file")
        return 2
    clock = VirtualClock() if config.ac_source.emulated else None
    reading = None if args.scope_readings == "auto" else _prompt
    report = run_acceptance(config.ac_source, config.load, clock or _WallClock(), reading=reading)
    table = Table(title="instrument acceptance")
    for column in ("Step", "Programmed", "Source measured", "Reading", "Verdict", "Details"):
        table.add_column(column, overflow="fold")
    for step in report.steps:
        table.add_row(escape(step.name), _fmt(step.programmed), _fmt(step.measured, step.uncertainty),
                      f"{_fmt(step.reading)} ({step.reading_source})", step.verdict, escape(step.diagnosis))
    console.print(table)
    for entry in report.unconfirmed:
        console.print(f"[yellow]unconfirmed[/]: {escape(entry)}")
    for cal in report.calibration:
        if cal["overdue"]:
            console.print(f"[red]calibration overdue[/]: {cal['name']} (due {cal['due']})")
    path = Path(args.station_record)
    write_station_record(path, report)
    console.print(f"recorded in {escape(str(path))}")
    return 0 if report.passed else 1


def _prompt(prompt: str, own: float | None) -> float | None:
    hint = f" [the source says {own:g}]" if own is not None else ""
    answer = input(f"{prompt}{hint}: ").strip()
    return float(answer) if answer else None


def _fmt(value: float | None, uncertainty: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" + (f" +/- {uncertainty:.2g}" if uncertainty is not None else "")


class _WallClock:
    def monotonic(self) -> float:
        import time
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        import time
        time.sleep(seconds)

    def call_at(self, due, callback):  # only the emulated source needs it, and it gets a VirtualClock
        raise NotImplementedError
