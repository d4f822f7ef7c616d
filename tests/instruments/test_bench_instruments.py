"""bench.toml instrument tables, the factories, the emulated instruments, probes and fixtures."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_args

import pytest
from smmc_bench.config import ConfigError, load_bench
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentError,
    ModbusLoadBank,
    ScpiElectronicLoad,
)
from smmc_bench.drivers.instruments.ac_tables import MODELS
from smmc_bench.instruments import (
    AcModel,
    AcSourceSettings,
    LoadSettings,
    open_ac_source,
    open_load,
    probe_instruments,
    serve_emulated_instruments,
)

REPO = Path(__file__).resolve().parents[2]

BENCH = """
[bench]
station_id = "LAB-1"

[[meter]]
id = "m1"
profile = "emulated-idis"
emulated = true
"""

CHROMA = """
[ac_source]
model = "chroma-61500"
resource = "GPIB0::30::INSTR"
nominal_voltage = 220.0
nominal_frequency = 50.0
timeout = 3.0
"""

BANK = """
[load]
kind = "modbus"
transport = "tcp"
host = "192.0.2.30"
port = 502
device_id = 2
steps_a = [1.0, 2.0, 4.0, 8.0]
"""


def bench_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(BENCH + text)
    return path


def test_config_models_list_every_command_table():
    assert set(get_args(AcModel)) == set(MODELS)


def test_real_chroma_and_modbus_bank_load(tmp_path):
    config = load_bench(bench_file(tmp_path, CHROMA + BANK))
    assert config.ac_source.model == "chroma-61500" and config.ac_source.visa_backend == "@py"
    assert config.load.steps_a == [1.0, 2.0, 4.0, 8.0] and config.load.device_id == 2


def test_instruments_are_optional(tmp_path):
    config = load_bench(bench_file(tmp_path, ""))
    assert config.ac_source is None and config.load is None


@pytest.mark.parametrize("text, key", [
    ('[ac_source]\nmodel = "fluke-6100"\nresource = "X"', "ac_source.model"),
    ('[ac_source]\nmodel = "generic"', "ac_source: resource"),
    ('[ac_source]\nemulated = true\nnominal_voltage = -5', "ac_source.nominal_voltage"),
    ('[ac_source]\nemulated = true\ncolour = "red"', "ac_source.colour"),
    ('[ac_source]\nemulated = true\ntimeout = 0', "ac_source.timeout"),
    ('[load]\nkind = "relay"\nemulated = true', "load.kind"),
    ('[load]\nkind = "modbus"\nhost = "h"\nport = 502', "load: steps_a"),
    ('[load]\nkind = "modbus"\nsteps_a = [1.0]\nhost = "h"', "load: port"),
    ('[load]\nkind = "modbus"\ntransport = "rtu"\nsteps_a = [1.0]', "load: serial_port"),
    ('[load]\nkind = "modbus"\nemulated = true\nsteps_a = [1.0, -2.0]', "load: steps_a"),
    ('[load]\nkind = "modbus"\nemulated = true\ndevice_id = 300', "load.device_id"),
    ('[load]\nkind = "scpi"\nresource = "X"\nhost = "h"', "load: host"),
    ('[load]\nkind = "scpi"', "load: resource"),
])
def test_bad_instrument_settings_name_the_key(tmp_path, text, key):
    path = bench_file(tmp_path, text)
    with pytest.raises(ConfigError) as failure:
        load_bench(path)
    assert f"{path}: {key}" in str(failure.value)


def test_serve_emulated_instruments_and_open_them(clock):
    supplies, demands = [], []
    served = serve_emulated_instruments(
        AcSourceSettings(emulated=True, model="chroma-61500", nominal_voltage=230.0),
        LoadSettings(kind="modbus", emulated=True, steps_a=[2.0, 4.0]),
        clock, on_supply=lambda v, f: supplies.append((v, f)), measured_current=lambda: 6.0,
        on_demand=demands.append)
    try:
        assert served.ac_source.resource == served.ac_emulator.resource and served.ac_source.emulated
        assert supplies == [(230.0, 50.0)]  # the source starts in its rest state, and says so
        source = open_ac_source(served.ac_source)
        bank = open_load(served.load)
        try:
            assert isinstance(source, AcSource) and isinstance(bank, ModbusLoadBank)
            bank.set_current(6.0)
            bank.on()
            assert demands == [6.0] and source.measure().current_a == 6.0
            source.dropout(0.1, clock)
            assert supplies[-2:] == [(0.0, 50.0), (230.0, 50.0)]
        finally:
            bank.close()
            source.close()
    finally:
        served.stop()


def test_serve_leaves_real_instruments_alone(clock):
    real = AcSourceSettings(resource="TCPIP::192.0.2.20::5025::SOCKET")
    served = serve_emulated_instruments(real, LoadSettings(kind="scpi", emulated=True), clock)
    try:
        assert served.ac_source is real and served.ac_emulator is None
        load = open_load(served.load)
        assert isinstance(load, ScpiElectronicLoad)
        load.close()
    finally:
        served.stop()


def test_probe_identifies_emulated_instruments_without_a_station():
    probes = probe_instruments(AcSourceSettings(emulated=True, model="keysight-ac6800"),
                               LoadSettings(kind="modbus", emulated=True))
    assert [(p.name, p.ok) for p in probes] == [("AC source", True), ("load", True)]
    assert "AC6801B" in probes[0].identification and probes[0].diagnosis == "emulated"
    assert "Modbus relay board" in probes[1].identification


def test_probe_reports_unreachable_and_wrong_model(emulated_source, closed_port):
    emulator, _ = emulated_source("chroma-61500")
    probes = probe_instruments(
        AcSourceSettings(resource=emulator.resource, model="ametek-ci", timeout=0.5),
        LoadSettings(kind="scpi", resource=f"TCPIP::127.0.0.1::{closed_port}::SOCKET", timeout=0.5))
    assert not probes[0].ok and "check model = \"ametek-ci\"" in probes[0].diagnosis
    assert probes[0].identification.startswith("Chroma")
    assert not probes[1].ok and "connection refused" in probes[1].diagnosis


def test_open_refuses_an_unserved_emulated_instrument():
    with pytest.raises(InstrumentError, match="not served yet"):
        open_ac_source(AcSourceSettings(emulated=True))
    with pytest.raises(InstrumentError, match="not served yet"):
        open_load(LoadSettings(kind="modbus", emulated=True))


FIXTURE_CONFTEST = """
from types import SimpleNamespace
import pytest
from smmc_bench.instruments import AcSourceSettings, LoadSettings, serve_emulated_instruments
from smmc_bench.fixtures.clock import VirtualClock

@pytest.fixture(scope="session")
def bench_station():
    if {empty}:
        yield SimpleNamespace(instruments=SimpleNamespace(ac_source=None, load=None))
        return
    clock = VirtualClock()
    served = serve_emulated_instruments(AcSourceSettings(emulated=True, model="chroma-61500"),
                                        LoadSettings(kind="scpi", emulated=True), clock)
    yield SimpleNamespace(instruments=served, clock=clock, served=served)
    served.stop()
"""

FIXTURE_TESTS = """
def test_a_disturbs(ac_source, load, bench_station):
    ac_source.set_voltage(100.0)
    ac_source.off()
    load.set_current(5.0)
    load.on()
    assert bench_station.served.load_emulator.demand == 5.0

def test_b_finds_everything_back(ac_source, load, bench_station):
    state = bench_station.served.ac_emulator.state
    assert (state.output, state.voltage, state.frequency) == (True, 220.0, 50.0)
    assert bench_station.served.load_emulator.demand == 0.0
    result = ac_source.dropout(0.2, bench_station.clock)
    assert result.method == "list" and result.cycle_exact
"""

EMPTY_TESTS = """
def test_needs_a_source(ac_source):
    pass

def test_needs_a_load(load):
    pass
"""


def run_pytest(tmp_path: Path, conftest: str, tests: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(conftest))
    (tmp_path / "test_fixtures_use.py").write_text(textwrap.dedent(tests))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           f"--smmc-bench={REPO / 'bench.toml'}", f"--smmc-run-dir={tmp_path / 'run'}", "test_fixtures_use.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_fixtures_restore_after_each_test(tmp_path):
    run = run_pytest(tmp_path, FIXTURE_CONFTEST.format(empty=False), FIXTURE_TESTS)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr


def test_fixtures_skip_with_a_reason_when_the_bench_has_no_instruments(tmp_path):
    run = run_pytest(tmp_path, FIXTURE_CONFTEST.format(empty=True), EMPTY_TESTS)
    assert run.returncode == 0 and "2 skipped" in run.stdout, run.stdout + run.stderr
    assert "no AC source ([ac_source] in bench.toml)" in run.stdout
    assert "no load ([load] in bench.toml)" in run.stdout
