"""Emulated sources that take time as their manuals say (issue 14): the AMETEK/CI output relay
settles about 1 s after OUTP ON|OFF (*OPC? answers only then), and a Keysight AC6800 MEASure
query makes a new 333-666 ms acquisition (FETCh returns its figures). A driver that skipped the
*OPC? handshake, or measured three times instead of one MEASure and two FETChes, is caught."""
from __future__ import annotations

from dataclasses import replace

import pytest
from smmc_bench.drivers.instruments import AcSource


@pytest.fixture
def driven(emulated_source):
    opened = []

    def make(model: str, *, table_changes: dict | None = None, **kwargs):
        emulator, recorder = emulated_source(model, **kwargs)
        source = AcSource(emulator.resource, model=model, timeout=0.5)
        if table_changes:
            source.table = replace(source.table, **table_changes)
        opened.append(source.open())
        return source, emulator

    yield make
    for source in opened:
        source.close()


def output_settled_on_return(source: AcSource, emulator, clock) -> bool:
    """The check: when off()/on() return, the terminals already carry what was asked."""
    before = clock.monotonic()
    source.off()
    off_ok = emulator.state.supply_voltage == 0.0
    source.on()
    on_ok = emulator.state.supply_voltage == pytest.approx(220.0)
    return off_ok and on_ok and clock.monotonic() - before >= 2 * 0.999


def test_ametek_relay_settles_before_opc_answers(driven, clock):
    source, emulator = driven("ametek-ci")
    assert output_settled_on_return(source, emulator, clock)


def test_driver_that_skips_opc_is_caught(driven, clock):
    source, emulator = driven("ametek-ci", table_changes={"operation_complete": None})
    assert not output_settled_on_return(source, emulator, clock)


def test_relay_delay_on_the_raw_instrument(driven, clock):
    source, emulator = driven("ametek-ci")
    sent = clock.monotonic()
    source.link.write("OUTP OFF")
    assert source.link.query("OUTP?") == "0"  # the setting changes at once...
    assert emulator.state.supply_voltage == 220.0  # ...the terminals only when the relay has moved
    assert source.link.query("*OPC?") == "1"
    assert clock.monotonic() - sent == pytest.approx(1.0, abs=0.05)
    assert emulator.state.supply_voltage == 0.0
    off_at = [change.at for change in emulator.history if change.voltage == 0.0][-1]
    assert off_at - sent == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("model", ["generic", "chroma-61500", "keysight-ac6800"])
def test_no_relay_delay_where_no_manual_gives_one(driven, clock, model):
    source, emulator = driven(model)
    before = clock.monotonic()
    source.off()
    assert emulator.state.supply_voltage == 0.0 and clock.monotonic() - before < 0.05


def rising_current(clock):
    return lambda: 1.0 + clock.monotonic()  # changes between acquisitions


def test_keysight_measure_is_one_acquisition(driven, clock):
    source, emulator = driven("keysight-ac6800", measured_current=rising_current(clock))
    for _ in range(5):
        before = clock.monotonic()
        reading = source.measure()
        took = clock.monotonic() - before
        assert 0.333 <= took <= 0.666 + 0.05
        # The three figures are one acquisition's: P = V * I of the same cycles.
        assert reading.power_w == pytest.approx(reading.voltage_v * reading.current_a, rel=1e-4)


def test_driver_that_measures_three_times_is_caught(driven, clock):
    source, emulator = driven("keysight-ac6800", measured_current=rising_current(clock),
                              table_changes={"fetch_current": None, "fetch_power": None})
    before, count = clock.monotonic(), emulator.acquisitions
    reading = source.measure()
    assert emulator.acquisitions - count == 3 and clock.monotonic() - before >= 0.999
    assert reading.power_w != pytest.approx(reading.voltage_v * reading.current_a, rel=1e-4)


def test_keysight_fetch_before_any_measure_is_refused(driven):
    source, emulator = driven("keysight-ac6800")
    source.link.write("*CLS", check=False)
    source.link.write("FETC:CURR:AC?", check=False)  # a query sent as a write: no reply is read
    assert source.errors() == [(-230, "Data corrupt or stale")]


@pytest.mark.parametrize("model", ["keysight-ac6800", "ametek-ci"])
def test_bench_timed_dropout_lasts_what_was_asked_despite_slow_parts(driven, clock, model):
    source, emulator = driven(model)
    result = source.dropout(0.2, clock, method="software")
    off_at, back_at = [change.at for change in emulator.history][-2:]
    assert back_at - off_at == pytest.approx(0.2, abs=0.01)  # not 1.2 s (relay) nor 0.5 s (acquisition)
    assert result.applied_s == pytest.approx(0.2, abs=result.applied_uncertainty_s + 0.01)
    if model == "keysight-ac6800":
        assert result.measurement.startswith("command acknowledgements")
