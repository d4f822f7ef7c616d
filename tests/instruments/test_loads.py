"""Loads end to end: the SCPI electronic load and the Modbus relay bank against their emulators."""
from __future__ import annotations

import time

import pytest
from smmc_bench.drivers.instruments import (
    InstrumentCommandError,
    InstrumentTimeout,
    InstrumentUnreachable,
    Load,
    ModbusLoadBank,
    ScpiElectronicLoad,
)
from smmc_bench.fixtures.instruments import EmulatedModbusLoadBank, EmulatedScpiLoad


@pytest.fixture
def scpi_load():
    demands: list[float] = []
    emulator = EmulatedScpiLoad(demands.append)
    emulator.start()
    driver = ScpiElectronicLoad(emulator.resource, timeout=0.5).open()
    yield driver, emulator, demands
    driver.close()
    emulator.stop()


def test_scpi_load_end_to_end(scpi_load):
    load, emulator, demands = scpi_load
    assert isinstance(load, Load)
    assert "ELECTRONIC LOAD" in load.identification
    load.set_current(12.5)
    assert demands == [] and load.current() == 0.0  # input still off: nothing drawn
    load.on()
    assert demands == [12.5] and load.current() == pytest.approx(12.5)
    load.set_current(3.0)
    load.off()
    assert demands == [12.5, 3.0, 0.0] and not emulator.input_on


def test_scpi_load_reads_what_really_flows(scpi_load):
    _, emulator, _ = scpi_load
    emulator.actual_current = lambda: 0.02  # e.g. the meter's breaker is open
    load = ScpiElectronicLoad(emulator.resource, timeout=0.5).open()
    try:
        load.set_current(10.0)
        load.on()
        assert load.current() == pytest.approx(0.02)
    finally:
        load.close()


def test_scpi_load_rejects_out_of_range(scpi_load):
    load, _, _ = scpi_load
    with pytest.raises(InstrumentCommandError, match="-222 Data out of range"):
        load.set_current(100.0)


@pytest.fixture
def bank():
    """bank(framer, **driver kwargs) -> (driver, emulator, demands)."""
    made = []

    def make(framer: str = "socket", steps=(1.0, 2.0, 4.0, 8.0), **kwargs):
        demands: list[float] = []
        emulator = EmulatedModbusLoadBank(steps, on_demand=demands.append, device_id=3, framer=framer)
        host, port = emulator.start()
        transport = "rtu-over-tcp" if framer == "rtu" else "tcp"
        driver = ModbusLoadBank(steps, transport=transport, host=host, port=port,
                                device_id=kwargs.pop("device_id", 3), timeout=0.3, **kwargs)
        made.append((driver, emulator))
        return driver, emulator, demands

    yield make
    for driver, emulator in made:
        driver.close()
        emulator.stop()


@pytest.mark.parametrize("framer", ["socket", "rtu"], ids=["modbus-tcp", "rtu-over-tcp"])
def test_modbus_bank_end_to_end(bank, framer):
    driver, emulator, demands = bank(framer)
    driver.open()
    assert isinstance(driver, Load) and "4 steps" in driver.identification
    driver.set_current(6.0)
    assert driver.chosen_a == 6.0 and driver.current() == 0.0 and demands == []
    driver.on()
    assert emulator.state.coils == (False, True, True, False) and demands == [6.0]
    assert driver.current() == 6.0
    driver.set_current(9.0)  # already on: follows at once
    assert demands[-1] == 9.0 and emulator.state.total_a == 9.0
    driver.off()
    assert demands[-1] == 0.0 and driver.current() == 0.0


@pytest.mark.parametrize("target, chosen", [(5.5, 5.0), (0.5, 0.0), (15.0, 15.0), (40.0, 15.0), (7.9, 7.0)])
def test_bank_picks_the_closest_combination_not_above(target, chosen):
    bank = ModbusLoadBank((1.0, 2.0, 4.0, 8.0), host="127.0.0.1", port=1)
    bank._selection = bank._choose(target)
    assert bank.chosen_a == chosen


def test_bank_wrong_device_id_is_an_exception_with_a_diagnosis(bank):
    driver, _, _ = bank(device_id=9)
    with pytest.raises(InstrumentCommandError, match="Modbus exception"):
        driver.open()


def test_bank_closed_port_and_silent_server(closed_port, silent_server):
    wall = time.monotonic()
    with pytest.raises(InstrumentUnreachable, match="cannot connect"):
        ModbusLoadBank((1.0,), host="127.0.0.1", port=closed_port, timeout=0.3).open()
    host, port = silent_server
    with pytest.raises(InstrumentTimeout, match="no reply to read coils"):
        ModbusLoadBank((1.0,), host=host, port=port, timeout=0.3, retries=0).open()
    assert time.monotonic() - wall < 3.0


def test_scpi_load_silent_server_times_out(silent_server):
    host, port = silent_server
    with pytest.raises(InstrumentTimeout):
        ScpiElectronicLoad(f"TCPIP::{host}::{port}::SOCKET", timeout=0.2).open()


@pytest.mark.parametrize("registers", ["coils", "holding"])
def test_modbus_board_by_its_register_map(registers):
    from smmc_bench.drivers.instruments.load import ModbusLoadBank
    from smmc_bench.fixtures.instruments.loads import EmulatedModbusLoadBank

    demands = []
    with EmulatedModbusLoadBank((1.0, 2.0, 4.0), on_demand=demands.append, registers=registers,
                                first_coil=3) as emulator:
        bank = ModbusLoadBank((1.0, 2.0, 4.0), host=emulator.host, port=emulator.port, registers=registers,
                              first_coil=3).open()
        try:
            bank.set_current(5.0)
            bank.on()
            assert bank.current() == 5.0 and emulator.state.coils == (True, False, True)
            bank.off()
            assert bank.current() == 0 and demands[-1] == 0
        finally:
            bank.close()
