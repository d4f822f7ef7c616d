"""Phase-synchronised dropouts and sags (issue 14): the Chroma list's start angle (LIST:DEGR), the
AMETEK/CI phase-synchronised trigger (TRIG:SYNC:SOUR PHAS, TRIG:SYNC:PHAS), refused elsewhere.
The emulated sources start the event at that phase of their own time base, so a source that
ignores the angle (mutant `phase-angle-ignored`) is caught here."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.instruments import AcSource, NotSupported
from smmc_bench.drivers.instruments.ac_tables import table_for

PHASE_MODELS = ("chroma-61500", "ametek-ci")
ANGLE_TOLERANCE_DEG = 0.5


@pytest.fixture
def driven(emulated_source):
    opened = []

    def make(model: str, **kwargs):
        emulator, recorder = emulated_source(model, **kwargs)
        source = AcSource(emulator.resource, model=model, timeout=0.5).open()
        opened.append(source)
        return source, emulator

    yield make
    for source in opened:
        source.close()


def started_at_angle(emulator, angle: float) -> bool:
    """The last event began at `angle` of the emulated output's own time base."""
    assert emulator.sequence_starts, "no sequence ran"
    _, phase = emulator.sequence_starts[-1]
    return abs((phase - angle + 180.0) % 360.0 - 180.0) <= ANGLE_TOLERANCE_DEG


@pytest.mark.parametrize("model", PHASE_MODELS)
@pytest.mark.parametrize("angle", [90.0, 270.0, 45.5])
def test_dropout_starts_at_the_asked_angle(driven, clock, model, angle):
    source, emulator = driven(model)
    clock.sleep(0.0123)  # the source's phase is anywhere when the command arrives
    result = source.dropout(0.2, clock, start_angle_deg=angle)
    assert started_at_angle(emulator, angle)
    assert (result.requested_angle_deg, result.start_angle_deg) == (angle, angle)
    assert result.evidence()["requested_angle_deg"] == angle and f"from {angle:g} deg" in result.describe()
    # The event waited for its angle (up to a cycle) and still lasted what was programmed.
    assert result.applied_s == pytest.approx(result.programmed_s, abs=result.applied_uncertainty_s + 0.01)
    began, _ = emulator.sequence_starts[-1]
    assert result.started_at <= began <= result.started_at + result.uncertainty_s
    assert abs(result.applied_started_at - began) <= 0.01
    assert emulator.state.supply_voltage == pytest.approx(220.0) and emulator.errors == []


@pytest.mark.parametrize("model", PHASE_MODELS)
def test_sag_starts_at_the_asked_angle(driven, clock, model):
    source, emulator = driven(model)
    clock.sleep(0.004)
    result = source.sag(70, 0.1, clock, start_angle_deg=180.0)
    assert started_at_angle(emulator, 180.0) and result.kind == "sag"
    assert min(v for _, v, _ in emulator_history(emulator)) == pytest.approx(154.0)


def emulator_history(emulator):
    return [(change.at, change.voltage, change.frequency) for change in emulator.history]


@pytest.mark.parametrize("model", PHASE_MODELS)
def test_mutant_phase_angle_ignored_is_caught(driven, clock, model):
    source, emulator = driven(model, mutant="phase-angle-ignored")
    clock.sleep(0.0123)
    result = source.dropout(0.2, clock, start_angle_deg=90.0)
    # Read-back agrees (the unit echoes the angle it took): only the start on the output shows it.
    assert result.start_angle_deg == 90.0
    assert not started_at_angle(emulator, 90.0)
    assert started_at_angle(emulator, 0.0)


def test_chroma_without_an_angle_starts_at_0_deg_even_if_the_front_panel_left_another(driven, clock):
    source, emulator = driven("chroma-61500", mutant="front-panel-left-over")
    clock.sleep(0.007)
    result = source.dropout(0.1, clock)
    assert result.requested_angle_deg is None and result.start_angle_deg == 0.0
    assert started_at_angle(emulator, 0.0)  # not the 45 deg left in LIST:DEGR
    # ...and the DC list left at 5 V does not ride on the dropout, the sine buffer is used.
    assert min(v for _, v, _ in emulator_history(emulator)) == 0.0
    assert emulator.list_shapes == ["A", "A"]
    assert source.link.query("LIST:VOLT:DC:STAR?") == "0,0"


def test_ametek_without_an_angle_starts_at_once(driven, clock):
    source, emulator = driven("ametek-ci")
    source.link.write("TRIG:SYNC:SOUR PHAS")  # left over: would delay the start by up to a cycle
    clock.sleep(0.005)  # 90 deg from 0 at 50 Hz: a left-over sync at 0 deg would wait 15 ms
    result = source.dropout(0.1, clock)
    assert result.start_angle_deg is None
    began = emulator.sequence_starts[-1][0]
    # Started while INIT was processed (no cycle of waiting is allowed for in the uncertainty).
    assert result.started_at <= began <= result.started_at + result.uncertainty_s
    assert source.link.query("TRIG:SYNC:SOUR?") == "IMM"


@pytest.mark.parametrize("model", ["generic", "keysight-ac6800"])
def test_models_without_phase_sync_refuse_an_angle(driven, clock, model):
    source, emulator = driven(model)
    assert not table_for(model).phase_sync
    with pytest.raises(NotSupported, match="phase-synchronised"):
        source.dropout(0.1, clock, start_angle_deg=90.0)
    assert emulator.state.supply_voltage == 220.0  # nothing was applied
    source.dropout(0.1, clock)  # without an angle: bench-timed as before


def test_a_bench_timed_event_cannot_take_an_angle(driven, clock):
    source, _ = driven("chroma-61500")
    with pytest.raises(NotSupported, match="bench-timed"):
        source.dropout(0.1, clock, method="software", start_angle_deg=90.0)
    for bad in (-1.0, 360.0, 400.0):
        with pytest.raises(ValueError, match="start angle"):
            source.sag(50, 0.1, clock, start_angle_deg=bad)


@pytest.mark.parametrize("model,command,query", [
    ("chroma-61500", "LIST:DEGR", "LIST:DEGR?"),
    ("ametek-ci", "TRIG:SYNC:PHAS", "TRIG:SYNC:PHAS?"),
])
def test_emulators_take_0_to_359_9_deg_and_refuse_the_rest(driven, model, command, query):
    source, emulator = driven(model)
    source.link.write(f"{command} 359.9")
    assert float(source.link.query(query)) == pytest.approx(359.9)
    for bad in ("360", "-0.1"):
        source.link.write(f"{command} {bad}", check=False)
        assert source.errors() == [(-222, "Data out of range")]
    assert float(source.link.query(query)) == pytest.approx(359.9)


def test_emulated_phase_runs_on_across_a_frequency_change(driven, clock):
    source, emulator = driven("ametek-ci")
    now = clock.monotonic()
    before = emulator.phase_at(now)
    source.set_frequency(60.0)
    changed_at, phase = emulator._phase_ref
    assert phase == pytest.approx((before + (changed_at - now) * 50 * 360) % 360, abs=1e-6)  # continuous
    assert (emulator.phase_at(changed_at + 1 / 240) - phase) % 360 == pytest.approx(90.0)  # at 60 Hz now
