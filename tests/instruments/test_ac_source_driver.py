"""The AC source driver against the emulated source, for every command table."""
from __future__ import annotations

import socket
import time

import pytest
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentCommandError,
    InstrumentTimeout,
    InstrumentUnreachable,
    NotSupported,
)
from smmc_bench.drivers.instruments.ac_tables import MODELS as TABLE_MODELS

from .conftest import MODELS

LIST_MODELS = ("chroma-61500", "ametek-ci")
SOFTWARE_MODELS = ("generic", "keysight-ac6800")


def test_every_table_has_an_emulated_model():
    assert set(TABLE_MODELS) == set(MODELS)


@pytest.fixture
def driven(emulated_source):
    """driven(model) -> (driver, emulator, recorder), the driver opened on the emulator."""
    opened = []

    def make(model: str, **kwargs):
        emulator, recorder = emulated_source(model, **kwargs)
        source = AcSource(emulator.resource, model=model, timeout=0.5).open()
        opened.append(source)
        return source, emulator, recorder

    yield make
    for source in opened:
        source.close()


@pytest.mark.parametrize("model", MODELS)
def test_basic_operations_through_each_table(driven, model):
    source, emulator, recorder = driven(model, measured_current=lambda: 4.5)
    assert source.identification == emulator.instrument.idn
    source.set_voltage(230.0)
    source.set_frequency(60.0)
    assert source.voltage() == pytest.approx(230.0) and source.frequency() == pytest.approx(60.0)
    reading = source.measure()
    assert (reading.voltage_v, reading.current_a, reading.power_w) == pytest.approx((230.0, 4.5, 1035.0))
    source.off()
    assert not source.is_on() and emulator.state.supply_voltage == 0.0
    assert source.measure().current_a == 0.0
    source.on()
    assert source.is_on()
    assert recorder.calls[-1][1:] == (230.0, 60.0)
    assert emulator.errors == [] and source.errors() == []


@pytest.mark.parametrize("model", LIST_MODELS)
def test_list_dropout_happens_at_the_right_bench_times(driven, clock, model):
    source, emulator, recorder = driven(model)
    wall = time.monotonic()
    start = clock.monotonic()
    result = source.dropout(0.2, clock)
    assert time.monotonic() - wall < 1.0  # bench time jumped; no 200 ms of real waiting needed
    assert (result.method, result.cycle_exact, result.kind) == ("list", True, "dropout")
    assert result.programmed_s == pytest.approx(0.2)  # 10 whole cycles at 50 Hz
    changes = recorder.since(start)
    assert [volts for _, volts in changes] == [0.0, 220.0]
    off_at = recorder.calls[-2][0]
    back_at = recorder.calls[-1][0]
    # Half a cycle: a step due "now" is fired by the clock's real-time thread, a few ms late on a busy machine.
    assert back_at - off_at == pytest.approx(0.2, abs=0.01)
    assert result.started_at <= off_at <= result.started_at + result.uncertainty_s + 0.01
    assert emulator.state.supply_voltage == 220.0 and not emulator.state.sequence_running
    assert emulator.errors == []


def test_list_dropout_is_rounded_to_whole_cycles(driven, clock):
    source, _, recorder = driven("chroma-61500")
    result = source.dropout(0.105, clock)  # 5.25 cycles -> 5
    assert result.programmed_s == pytest.approx(0.1) and result.requested_s == 0.105
    assert recorder.calls[-1][0] - recorder.calls[-2][0] == pytest.approx(0.1, abs=0.01)  # half a cycle


@pytest.mark.parametrize("model", LIST_MODELS)
def test_list_sag_holds_the_residual_voltage(driven, clock, model):
    source, emulator, recorder = driven(model)
    source.set_voltage(230.0)
    start = clock.monotonic()
    result = source.sag(70, 0.5, clock)
    assert result.kind == "sag" and result.residual_v == pytest.approx(161.0)
    assert [volts for _, volts in recorder.since(start)] == [161.0, 230.0]
    assert emulator.state.voltage == 230.0


@pytest.mark.parametrize("model", SOFTWARE_MODELS)
def test_software_dropout_is_flagged_not_cycle_exact(driven, clock, model):
    source, emulator, recorder = driven(model)
    start = clock.monotonic()
    result = source.dropout(3.0, clock)
    assert (result.method, result.cycle_exact) == ("software", False)
    assert "NOT cycle-exact" in result.describe()
    assert [volts for _, volts in recorder.since(start)] == [0.0, 220.0]
    assert recorder.calls[-1][0] - recorder.calls[-2][0] == pytest.approx(3.0, abs=0.05)
    assert result.duration_s == pytest.approx(3.0, abs=0.05)
    assert emulator.state.output


def test_software_method_can_be_forced_and_list_refused(driven, clock):
    source, _, _ = driven("chroma-61500")
    assert source.dropout(0.1, clock, method="software").method == "software"
    generic, _, _ = driven("generic")
    with pytest.raises(NotSupported, match="no LIST"):
        generic.dropout(0.1, clock, method="list")


def test_a_wrong_table_fails_with_the_error_queue_entry(emulated_source):
    emulator, _ = emulated_source("chroma-61500")
    source = AcSource(emulator.resource, model="generic", timeout=0.5).open()
    try:
        with pytest.raises(InstrumentCommandError) as failure:
            source.set_voltage(200.0)
        assert failure.value.code == -113 and "VOLT 200.00" in failure.value.diagnosis
        assert "-113 Undefined header" in str(failure.value)
        # An unknown query is never answered: the timeout's diagnosis reads the queue for the reason.
        with pytest.raises(InstrumentTimeout, match=r"no reply to 'VOLT\?' .* error queue says -113"):
            source.voltage()
        # ...and the session is clean again for the next exchange.
        assert source.identify().startswith("Chroma")
    finally:
        source.close()


def test_out_of_range_value_names_the_command(driven):
    source, _, _ = driven("generic")
    with pytest.raises(InstrumentCommandError, match=r"'VOLT 400.00' rejected: -222 Data out of range"):
        source.set_voltage(400.0)


def test_silent_instrument_times_out_with_a_diagnosis(silent_server):
    host, port = silent_server
    source = AcSource(f"TCPIP::{host}::{port}::SOCKET", timeout=0.2)
    wall = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"no reply to '\*IDN\?' within 0.2 s \(silent"):
        source.open()
    assert time.monotonic() - wall < 1.5
    assert not source.link.is_open


def test_closed_port_is_unreachable_at_once(closed_port):
    source = AcSource(f"TCPIP::127.0.0.1::{closed_port}::SOCKET", timeout=0.5)
    wall = time.monotonic()
    with pytest.raises(InstrumentUnreachable, match="connection refused"):
        source.open()
    assert time.monotonic() - wall < 0.5


def test_bad_resource_string_is_unreachable():
    with pytest.raises(InstrumentUnreachable, match="cannot open"):
        AcSource("TCPIP::no-such-host.invalid::5025::SOCKET", timeout=0.3).open()


def test_source_dying_mid_session_is_diagnosed(driven):
    source, emulator, _ = driven("generic")
    emulator.stop()
    with pytest.raises(InstrumentUnreachable):
        source.set_voltage(100.0)


def test_checked_command_is_fast_nagle_off(driven):
    """TCP_NODELAY is set (pyvisa-py cannot set it through the attribute): a checked command
    is two small writes and would otherwise wait ~40 ms for a delayed ACK."""
    source, _, _ = driven("generic")
    session = source.link._session
    raw = session.visalib.sessions[session.session].interface
    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    wall = time.monotonic()
    for _ in range(10):
        source.set_voltage(220.0)
    assert (time.monotonic() - wall) / 10 < 0.02


def test_missing_serial_port_is_unreachable():
    with pytest.raises(InstrumentUnreachable, match="cannot open"):
        AcSource("ASRL/dev/smmc-no-such-tty::INSTR", model="chroma-61500", baud_rate=9600, timeout=0.3).open()
