"""Every instrument mutant is caught by the bench's own checks: the driver's self-verification
(list read back, dropout measured), its busy wait, its known state on open, its safe state, and
the load's per-model tables. A mutant that no test here catches would be a defect the bench
could not see on real hardware either."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentCommandError,
    InstrumentError,
)
from smmc_bench.drivers.instruments.ac_source import applied_duration
from smmc_bench.drivers.instruments.ac_tables import table_for
from smmc_bench.drivers.instruments.load import ScpiElectronicLoad
from smmc_bench.fixtures.instruments.ac_source import MUTANTS
from smmc_bench.fixtures.instruments.loads import EmulatedScpiLoad


@pytest.fixture
def open_source(emulated_source):
    opened = []

    def make(model: str, mutant: str | None = None) -> tuple[AcSource, object]:
        emulator, _ = emulated_source(model, mutant=mutant)
        source = AcSource(emulator.resource, model=model, timeout=0.5).open()
        opened.append(source)
        return source, emulator

    yield make
    for source in opened:
        source.close()


def dropout_applied_as_programmed(source: AcSource, clock) -> bool:
    """The check a conformance test makes before judging on a dropout: applied = programmed."""
    result = source.dropout(0.2, clock)
    assert result.applied_s is not None, result.describe()
    return abs(result.applied_s - result.programmed_s) <= result.applied_uncertainty_s + 0.5 / 50


def test_conforming_chroma_dropout_is_measured_as_programmed(open_source, clock):
    source, _ = open_source("chroma-61500")
    result = source.dropout(0.2, clock)
    assert result.measurement.startswith("sampled")
    assert abs(result.applied_s - 0.2) <= result.applied_uncertainty_s + 0.01
    assert result.applied_uncertainty_s < 0.02  # sampled every half cycle at the edges
    assert result.evidence()["applied_s"] == result.applied_s


def test_mutant_dwell_in_ms_under_cycle_is_caught_by_the_measurement(open_source, clock):
    source, _ = open_source("chroma-61500", "dwell-ms-under-cycle")
    # The read-back agrees (the unit echoes the numbers it took): only measuring shows it.
    assert not dropout_applied_as_programmed(source, clock)


def test_mutant_busy_stuck_running_is_caught_by_the_busy_wait(open_source, clock):
    source, emulator = open_source("chroma-61500", "busy-stuck-running")
    with pytest.raises(InstrumentError, match="still running"):
        source.dropout(0.2, clock)
    # ...and the supply is back whatever (the finish commands ran).
    assert emulator.state.supply_voltage == pytest.approx(220.0)


def test_mutant_front_panel_left_over_is_undone_on_open(open_source, emulated_source):
    source, emulator = open_source("chroma-61500", "front-panel-left-over")
    source.set_voltage(230.0)
    assert source.measure().voltage_v == pytest.approx(230.0)
    # Without the known state the same source applies the wrong voltage: the check can fail.
    raw, _ = emulated_source("chroma-61500", mutant="front-panel-left-over")
    bare = AcSource(raw.resource, model="chroma-61500", timeout=0.5)
    object.__setattr__(bare, "table", _without_known_state(bare.table))
    with bare:
        with pytest.raises(InstrumentCommandError):
            bare.set_voltage(230.0)  # out of the LOW range: -222
        assert bare.measure().voltage_v != pytest.approx(220.0)  # DC offset left on


def _without_known_state(table):
    from dataclasses import replace
    return replace(table, known_state=())


def test_mutant_abort_refused_makes_the_safe_state_fail_loudly(open_source):
    source, _ = open_source("keysight-ac6800", "abort-refused")
    with pytest.raises(InstrumentError, match="safe state not reached.*ABOR"):
        source.safe_state()


def test_mutant_abort_refused_on_ametek_fails_at_open(emulated_source):
    emulator, _ = emulated_source("ametek-ci", mutant="abort-refused")  # ABOR is part of its known state
    with pytest.raises(InstrumentCommandError, match="ABOR"):
        AcSource(emulator.resource, model="ametek-ci", timeout=0.5).open()


def test_every_ac_mutant_has_a_test_here():
    tested = {"dwell-ms-under-cycle", "busy-stuck-running", "front-panel-left-over", "abort-refused",
              "phase-angle-ignored"}  # the last in test_phase_sync.py
    assert set(MUTANTS) == tested


def test_list_read_back_catches_a_source_that_took_other_values(open_source, clock):
    source, emulator = open_source("chroma-61500")
    # A unit that took other values than the driver meant (here: the list really holds 10,1).
    from smmc_bench.drivers.instruments.ac_tables.base import TransientProgram
    program = TransientProgram(setup=(), start=(), finish=(), durations_s=(0.2,), cycle_exact=True,
                               readback=(("LIST:DWEL?", (99.0,)),))
    source.link.write("LIST:DWEL 10,1")
    with pytest.raises(InstrumentError, match="read back wrong"):
        source._verify_readback(program)


def test_applied_duration_bounds():
    samples = [(0.00, 0.001, 0.0), (0.01, 0.011, 0.0), (0.20, 0.201, 0.0), (0.21, 0.211, 220.0)]
    applied, spread = applied_duration(samples, 110.0, started=0.0)
    assert applied - spread <= 0.2 <= applied + spread
    assert applied_duration([(0, 0, 220.0)], 110.0, 0.0) == (None, None)  # never seen
    assert applied_duration([(0, 0, 0.0)], 110.0, 0.0) == (None, None)  # never seen to end


def test_tables_name_their_sources_and_unconfirmed_entries():
    for model in ("chroma-61500", "ametek-ci", "keysight-ac6800"):
        table = table_for(model)
        assert table.sources and table.unconfirmed


# -- loads --------------------------------------------------------------------------
def test_mutant_inp_on_refused_is_caught_by_the_generic_table():
    with EmulatedScpiLoad(mutant="inp-on-refused") as emulator:
        load = ScpiElectronicLoad(emulator.resource, timeout=0.5).open()
        try:
            load.set_current(2.0)
            with pytest.raises(InstrumentCommandError, match="INP ON"):
                load.on()
        finally:
            load.close()


@pytest.mark.parametrize("model", ["chroma-63800", "chroma-63600"])
def test_chroma_loads_take_mode_and_load_on(model):
    demands = []
    with EmulatedScpiLoad(demands.append, model=model) as emulator:
        with ScpiElectronicLoad(emulator.resource, timeout=0.5, model=model) as load:
            load.set_current(3.0)
            load.on()
            assert emulator.mode == "CC" and load.current() == pytest.approx(3.0)
            load.off()
        # the generic table on a Chroma load is refused at once (INP/FUNC undefined)
        with pytest.raises(InstrumentCommandError):
            ScpiElectronicLoad(emulator.resource, timeout=0.5).open()
    assert demands[-1] == 0.0


@pytest.mark.parametrize("mode,level,amps", [("CP", 440.0, 2.0), ("CR", 110.0, 2.0)])
def test_load_modes_cp_and_cr(mode, level, amps):
    with EmulatedScpiLoad() as emulator:
        with ScpiElectronicLoad(emulator.resource, timeout=0.5, mode=mode) as load:
            with pytest.raises(ValueError):
                load.set_current(1.0)
            load.set_level(level)
            load.on()
            assert emulator.mode == mode and emulator.demand == pytest.approx(amps)
        assert emulator.local  # front panel back to local on close


def test_load_overrides_from_bench_toml():
    with EmulatedScpiLoad(model="chroma-63800") as emulator:
        with ScpiElectronicLoad(emulator.resource, timeout=0.5,
                                overrides={"mode": "MODE CC", "on": "LOAD ON"}) as load:
            load.on()
            assert emulator.input_on


@pytest.mark.parametrize("model", ["generic", "keysight-ac6800", "ametek-ci"])
def test_measure_is_one_acquisition_then_fetch(open_source, model):
    source, emulator = open_source(model)
    before = emulator.acquisitions
    source.measure()
    assert emulator.acquisitions - before == 1


def test_mutant_front_panel_left_over_keysight_range_is_undone_on_open(open_source, emulated_source):
    source, emulator = open_source("keysight-ac6800", "front-panel-left-over")
    assert source.link.query("VOLT:RANG?") == "310"
    source.set_voltage(230.0)
    assert emulator.state.supply_voltage == pytest.approx(230.0)
    # Without the known state: left on the 155 V range, 230 V is refused.
    raw, _ = emulated_source("keysight-ac6800", mutant="front-panel-left-over")
    bare = AcSource(raw.resource, model="keysight-ac6800", timeout=0.5)
    object.__setattr__(bare, "table", _without_known_state(bare.table))
    with bare:
        with pytest.raises(InstrumentCommandError):
            bare.set_voltage(230.0)


def test_keysight_range_takes_155_or_310_only(open_source):
    source, _ = open_source("keysight-ac6800")
    source.link.write("VOLT:RANG 200", check=False)
    assert source.errors() == [(-222, "Data out of range")]
    source.link.write("VOLT:RANG MIN")
    assert source.link.query("VOLT:RANG?") == "155"
