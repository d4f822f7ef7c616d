"""The emulated instruments' SCPI parser: forms, paths, error queue, per-model command sets."""
from __future__ import annotations

import socket

import pytest
from smmc_bench.fixtures.instruments import EmulatedAcSource
from smmc_bench.fixtures.instruments.scpi_server import ScpiInstrument


def run(emulator: EmulatedAcSource, message: str) -> str | None:
    return emulator.instrument.execute(message)


@pytest.mark.parametrize("command", [
    "VOLT 230", "volt 230", "VOLTage 230", "SOURce:VOLTage:LEVel:IMMediate:AMPLitude 230",
    ":sour:volt:lev 230", "SOUR1:VOLT 230", "VOLT 230V", "VOLT 230000 mV",
])
def test_short_long_and_mixed_case_forms_are_one_command(emulated_source, command):
    emulator, _ = emulated_source("generic")
    run(emulator, command)
    assert emulator.state.voltage == pytest.approx(230.0)
    assert emulator.errors == []


def test_semicolons_continue_the_path_and_join_replies(emulated_source):
    emulator, recorder = emulated_source("generic")
    assert run(emulator, "SOUR:VOLT 120;FREQ 60;:OUTP OFF;:VOLT?;FREQ?;:OUTP?") == "120.00;60.00;0"
    assert emulator.state.frequency == 60.0 and not emulator.state.output
    assert recorder.calls[-1][1:] == (0.0, 60.0)  # output off: the terminals carry 0 V


def test_error_queue_numbers_and_order(emulated_source):
    emulator, _ = emulated_source("generic")
    assert run(emulator, "VOLTS 10") is None
    run(emulator, "VOLT 999")
    run(emulator, "VOLT abc")
    run(emulator, "OUTP MAYBE")
    run(emulator, "VOLT")
    replies = [run(emulator, "SYST:ERR?") for _ in range(6)]
    assert replies == ['-113,"Undefined header"', '-222,"Data out of range"', '-104,"Data type error"',
                       '-224,"Illegal parameter value"', '-109,"Missing parameter"', '0,"No error"']


def test_error_stops_the_rest_of_the_message(emulated_source):
    emulator, _ = emulated_source("generic")
    run(emulator, "VOLT 100;BOGUS;VOLT 150")
    assert emulator.state.voltage == 100.0
    assert emulator.errors == [(-113, "Undefined header")]


def test_error_queue_overflows_with_minus_350_and_cls_clears_it():
    instrument = ScpiInstrument("x")
    for _ in range(40):
        instrument.execute("NOPE")
    assert instrument.errors[-1] == (-350, "Queue overflow") and len(instrument.errors) <= 16
    instrument.execute("*CLS")
    assert instrument.execute("SYSTem:ERRor:NEXT?") == '0,"No error"'


def test_unknown_query_is_never_answered_over_tcp(emulated_source):
    emulator, _ = emulated_source("generic")
    with socket.create_connection(emulator.address, timeout=1) as link:
        link.settimeout(0.3)
        link.sendall(b"MEAS:BOGUS?\n")
        with pytest.raises(socket.timeout):
            link.recv(100)
        link.sendall(b"SYST:ERR?\r\n")  # CR LF accepted
        assert link.recv(100) == b'-113,"Undefined header"\n'


@pytest.mark.parametrize("model, accepted, rejected", [
    ("chroma-61500", ":SOUR:VOLT:AC 110", "VOLT 110"),
    ("generic", "VOLT 110", ":SOUR:VOLT:AC 110"),
    ("keysight-ac6800", "VOLT 110", "LIST:VOLT 1,2"),
    ("ametek-ci", "LIST:VOLT 0,110", "LIST:BASE CYCLE"),
])
def test_each_model_speaks_only_its_own_command_set(emulated_source, model, accepted, rejected):
    emulator, _ = emulated_source(model)
    run(emulator, accepted)
    assert emulator.errors == []
    run(emulator, rejected)
    assert emulator.errors == [(-113, "Undefined header")]


@pytest.mark.parametrize("model, idn", [
    ("generic", "smmc-bench"), ("chroma-61500", "Chroma ATE,61604"),
    ("keysight-ac6800", "Keysight Technologies,AC6801B"), ("ametek-ci", "AMETEK"),
])
def test_idn_per_model(emulated_source, model, idn):
    emulator, _ = emulated_source(model)
    assert run(emulator, "*IDN?").startswith(idn)


def test_chroma_list_runs_in_bench_time(emulated_source, clock):
    emulator, recorder = emulated_source("chroma-61500")
    run(emulator, "LIST:BASE CYCLE;VOLT:AC:STAR 0,220;END 0,220;:LIST:FREQ:STAR 50;END 50")
    run(emulator, "LIST:DWEL 10,1;COUN 1;:OUTP:MODE LIST")
    start = clock.monotonic()
    run(emulator, "TRIG ON")
    assert run(emulator, "TRIG:STAT?") == "RUNNING"
    clock.sleep(0.5)
    assert run(emulator, "TRIG:STAT?") == "OFF"
    assert emulator.errors == []
    changes = recorder.since(start)
    assert [volts for _, volts in changes] == [0.0, 220.0]
    # The list starts at its start angle (LIST:DEGR, 0 deg when never set): within a cycle...
    assert 0.0 <= changes[0][0] <= 0.02 + 0.01
    assert abs((emulator.sequence_starts[-1][1] + 180) % 360 - 180) < 1e-6
    # ...and lasts 10 cycles at 50 Hz, within half a cycle.
    assert changes[1][0] - changes[0][0] == pytest.approx(0.2, abs=0.01)


def test_chroma_list_needs_list_mode_and_equal_lengths(emulated_source):
    emulator, _ = emulated_source("chroma-61500")
    run(emulator, "LIST:VOLT:AC:STAR 0,220;END 0,220;:LIST:FREQ:STAR 50;END 50;:LIST:DWEL 10,1")
    run(emulator, "TRIG ON")
    assert emulator.errors == [(-221, "Settings conflict")]  # still in FIXED mode
    run(emulator, "*CLS;LIST:DWEL 10,1,5;:OUTP:MODE LIST;:TRIG ON")
    assert emulator.errors == [(-221, "Settings conflict")]


def test_output_off_reads_no_voltage_and_no_current(emulated_source):
    emulator, _ = emulated_source("generic", measured_current=lambda: 3.0)
    assert run(emulator, "MEAS:VOLT?;CURR?;POW?") == "220.00;3.0000;660.00"
    run(emulator, "OUTP OFF")
    # After MEAS:VOLT:AC? the path is MEAS:VOLT:, so the next query restarts from the root.
    assert run(emulator, "MEAS:VOLT:AC?;:MEAS:CURR:AC?;:MEAS:POW:AC?") == "0.00;0.0000;0.00"
