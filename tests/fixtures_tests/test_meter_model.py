"""Behaviour of the emulated meter's COSEM objects, without the network."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import axdr, cosem_time
from smmc_bench.fixtures.meter.cosem_objects import (
    MODE_TRANSITIONS,
    TRANSITIONS,
    ControlState,
    CosemError,
    Result,
)
from smmc_bench.fixtures.meter.model import MeterModel

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ZERO = axdr.integer(0)


def make_model(control_mode: int = 2, offset: float = -437.0, **kwargs) -> MeterModel:
    return MeterModel(VirtualClock(START), "EMU0000001", offset, 240, control_mode, **kwargs)


def time_octets(local: datetime, deviation: int = 240) -> bytes:
    """A client's SET value: local time, weekday and hundredths not specified."""
    return (local.year.to_bytes(2, "big") + bytes([local.month, local.day, 0xFF, local.hour,
            local.minute, local.second, 0xFF]) + deviation.to_bytes(2, "big", signed=True) + b"\x00")


# --- clock -----------------------------------------------------------------

def test_clock_starts_offset_and_encodes_local_time_with_deviation():
    model = make_model()
    assert abs((model.clock.now() - START).total_seconds() + 437) < 1
    raw = model.clock.get(2).value
    decoded = cosem_time.decode_for_set(raw, 0)
    assert abs((decoded - model.clock.now()).total_seconds()) < 0.02
    assert int.from_bytes(raw[9:11], "big", signed=True) == 240
    assert raw[5] == (model.clock.now() - timedelta(minutes=240)).hour
    assert model.clock.get(4) == axdr.unsigned(0)
    assert model.clock.get(9) == axdr.enum(1)


def test_set_time_moves_clock_and_logs_old_then_new():
    model = make_model()
    before = model.clock.now()
    model.clock.set(2, axdr.octet_string(time_octets(datetime(2025, 3, 10, 8, 30, 0))))
    expected = datetime(2025, 3, 10, 12, 30, 0, tzinfo=timezone.utc)
    assert abs((model.clock.now() - expected).total_seconds()) < 0.5
    (old_time, old_code), (new_time, new_code) = model.standard_log.entries
    assert (old_code, new_code) == (4, 5)
    assert abs((old_time - before).total_seconds()) < 0.5 and new_time == expected
    assert model.standard_event_code.get(2) == axdr.unsigned(5)


@pytest.mark.parametrize("raw", [
    time_octets(datetime(2025, 1, 1))[:2] + b"\x0d" + time_octets(datetime(2025, 1, 1))[3:],  # month 13
    time_octets(datetime(2025, 1, 1))[:3] + b"\x20" + time_octets(datetime(2025, 1, 1))[4:],  # day 32
    time_octets(datetime(2025, 2, 1))[:3] + b"\x1e" + time_octets(datetime(2025, 2, 1))[4:],  # 30 February
    time_octets(datetime(2025, 1, 1))[:5] + b"\x19" + time_octets(datetime(2025, 1, 1))[6:],  # hour 25
    time_octets(datetime(2025, 1, 1))[:6] + b"\x3c" + time_octets(datetime(2025, 1, 1))[7:],  # minute 60
    time_octets(datetime(2025, 1, 1))[:5] + b"\xff" + time_octets(datetime(2025, 1, 1))[6:],  # hour unspecified
    b"\xff\xff" + time_octets(datetime(2025, 1, 1))[2:],  # year unspecified
    time_octets(datetime(2025, 1, 1))[:11],  # 11 octets
])
def test_invalid_time_is_refused_and_clock_unchanged(raw):
    model = make_model()
    offset = model.clock.offset_s
    with pytest.raises(CosemError) as refused:
        model.clock.set(2, axdr.octet_string(raw))
    assert refused.value.result == Result.OTHER_REASON
    assert model.clock.offset_s == offset and model.standard_log.entries == []


def test_set_time_wrong_type_is_type_unmatched():
    with pytest.raises(CosemError) as refused:
        make_model().clock.set(2, axdr.unsigned(3))
    assert refused.value.result == Result.TYPE_UNMATCHED


def test_shift_time_moves_by_seconds_and_limits_to_900():
    model = make_model()
    offset = model.clock.offset_s
    model.clock.invoke(6, axdr.long(-120))
    assert model.clock.offset_s == pytest.approx(offset - 120, abs=0.1)
    assert [code for _, code in model.standard_log.entries] == [4, 5]
    for out_of_range in (901, -901):
        with pytest.raises(CosemError):
            model.clock.invoke(6, axdr.long(out_of_range))
    assert model.clock.offset_s == pytest.approx(offset - 120, abs=0.1)
    assert len(model.standard_log.entries) == 2


def test_adjust_to_quarter_rounds_to_nearest_quarter_hour():
    model = make_model(offset=-500.0)  # 11:51:40 -> 11:45
    model.clock.invoke(1, ZERO)
    now = model.clock.now()
    assert (now.hour, now.minute, now.second) == (11, 45, 0)
    up = make_model(offset=-437.0)  # 11:52:43 -> 12:00
    up.clock.invoke(1, ZERO)
    assert (up.clock.now().hour, up.clock.now().minute) == (12, 0)
    assert [code for _, code in model.standard_log.entries] == [4, 5]


def test_time_zone_writable_within_range():
    model = make_model()
    model.clock.set(3, axdr.long(180))
    assert model.clock.time_zone == 180
    with pytest.raises(CosemError):
        model.clock.set(3, axdr.long(800))
    with pytest.raises(CosemError) as refused:
        model.clock.set(4, axdr.unsigned(0))
    assert refused.value.result == Result.READ_WRITE_DENIED


# --- disconnect control ------------------------------------------------------

def _drive_to(model: MeterModel, state: ControlState) -> None:
    control = model.disconnect_control
    control.control_state = state
    control.output_state = state == ControlState.CONNECTED


TRIGGER_METHOD = {"remote_disconnect": 1, "remote_reconnect": 2}


@pytest.mark.parametrize("mode", range(7))
@pytest.mark.parametrize("trigger", ["remote_disconnect", "remote_reconnect", "manual_disconnect",
                                     "manual_reconnect", "local_disconnect", "local_reconnect"])
@pytest.mark.parametrize("source", list(ControlState))
def test_state_machine_follows_blue_book_table(mode, trigger, source):
    model = make_model(control_mode=mode)
    _drive_to(model, source)
    enabled = [TRANSITIONS[letter] for letter in MODE_TRANSITIONS[mode]]
    expected = next((t.target for t in enabled if t.trigger == trigger and t.source == source), None)
    if trigger in TRIGGER_METHOD:
        if expected is None:
            with pytest.raises(CosemError) as refused:
                model.disconnect_control.invoke(TRIGGER_METHOD[trigger], ZERO)
            assert refused.value.result == Result.TEMPORARY_FAILURE
        else:
            model.disconnect_control.invoke(TRIGGER_METHOD[trigger], ZERO)
    else:
        assert model.disconnect_control.trigger(trigger) is (expected is not None)
    control = model.disconnect_control
    assert control.control_state == (source if expected is None else expected)
    assert control.output_state == (control.control_state == ControlState.CONNECTED)
    assert len(model.disconnector_log.entries) == (0 if expected is None else 1)


def test_mode_table_matches_blue_book():
    assert MODE_TRANSITIONS == {0: "", 1: "bcfgde", 2: "bcfgae", 3: "bcgde", 4: "bcgae",
                                5: "bcfgdeh", 6: "bcgdeh"}


def test_disconnect_and_reconnect_log_62_and_63_at_meter_time():
    model = make_model(control_mode=1)
    control = model.disconnect_control
    control.invoke(1, ZERO)
    control.invoke(2, ZERO)
    (t62, c62), (t63, c63) = model.disconnector_log.entries
    assert (c62, c63) == (62, 63)
    assert abs((t62 - model.clock.now()).total_seconds()) < 0.5
    assert model.disconnector_event_code.get(2) == axdr.unsigned(63)


def test_mode_2_remote_reconnect_waits_for_button():
    model = make_model(control_mode=2)
    control = model.disconnect_control
    control.invoke(1, ZERO)
    control.invoke(2, ZERO)
    assert control.control_state == ControlState.READY_FOR_RECONNECTION and not control.output_state
    with pytest.raises(CosemError):
        control.invoke(2, ZERO)
    assert control.trigger("manual_reconnect")
    assert control.control_state == ControlState.CONNECTED and control.output_state
    assert [code for _, code in model.disconnector_log.entries] == [62, 63, 61]


def test_control_mode_set_validates_range_and_type():
    control = make_model().disconnect_control
    control.set(4, axdr.enum(5))
    assert control.control_mode == 5
    with pytest.raises(CosemError):
        control.set(4, axdr.enum(7))
    with pytest.raises(CosemError) as refused:
        control.set(4, axdr.unsigned(1))
    assert refused.value.result == Result.TYPE_UNMATCHED
    with pytest.raises(CosemError):
        control.invoke(1, axdr.integer(1))


# --- energy and logs ------------------------------------------------------

def test_energy_accrues_only_while_connected():
    bench = VirtualClock(START)
    model = MeterModel(bench, "EMU1", 0.0, 240, 1, load_w=1000.0)
    bench.sleep(3600)
    assert model.energy.wh == pytest.approx(1000, abs=1)
    model.disconnect_control.invoke(1, ZERO)
    bench.sleep(7200)
    assert model.energy.wh == pytest.approx(1000, abs=1)
    model.disconnect_control.invoke(2, ZERO)
    bench.sleep(1800)
    assert model.energy_register.get(2).value == pytest.approx(1500, abs=1)
    assert model.energy_register.get(3) == axdr.structure(axdr.integer(0), axdr.enum(30))


def test_event_log_is_fifo_with_capacity_and_encodes_buffer():
    model = make_model()
    log = model.standard_log
    for code in range(105):
        log.record(START, code % 256)
    assert len(log.entries) == 100 and log.codes()[0] == 5
    buffer = log.get(2)
    assert len(buffer.value) == 100
    first = buffer.value[0]
    assert first.value[0].type == axdr.DataType.OCTET_STRING and first.value[1] == axdr.unsigned(5)
    assert log.get(7) == axdr.double_long_unsigned(100)
    assert log.get(8) == axdr.double_long_unsigned(100)
    captured = [item.value[1].value for item in log.get(3).value]
    assert captured == [bytes([0, 0, 1, 0, 0, 255]), bytes([0, 0, 96, 11, 0, 255])]


def test_meter_buttons_follow_the_mode():
    from smmc_bench.fixtures.meter import EmulatedMeter

    meter = EmulatedMeter(clock=VirtualClock(START), control_mode=5)
    assert meter.local_disconnect() and meter.state.control_state == ControlState.READY_FOR_RECONNECTION
    assert [code for _, code in meter.state.disconnector_events] == [64]
    assert meter.local_reconnect() and meter.state.output_state
    assert meter.manual_disconnect() and meter.manual_reconnect()
    assert [code for _, code in meter.state.disconnector_events] == [64, 69, 60, 61]
    assert not meter.manual_reconnect()  # already connected
