"""pytest fixtures for supply-side tests (registered by smmc_bench.plugin.session once a bench is asked for).

- `head_end`: a HeadEndListener on the bench clock, and the meter under test
  told to push to it: the bench writes the alarm push setup's
  send_destination over DLMS, as a lab does with a real meter, and puts the
  old destination back afterwards. Where it listens: `[head_end]` in
  bench.toml when the bench has one (host, port, advertise = the address the
  meter must dial), else 127.0.0.1 on a free port (the emulated bench).
- `local_operator`: presses the meter's reconnect button. On the emulated
  bench the emulator's button; on hardware it asks the operator at the
  terminal (stdin must be a TTY, with a bounded wait), else the test is
  skipped saying why.

- `limiter`: the meter's supply-side objects (bench.cosem_supply.SupplyObjects),
  with the limiter's settings and the breaker (connected, original control
  mode) put back after the test.

Also `source_current_a` (the load current as the AC source measures it),
`draw_power` (have the load draw a power at the meter's voltage) and
`optional_load` (the bench's load when it has one, for tests that only get
better with it).
"""
from __future__ import annotations

import logging
import select
import sys
from typing import Iterator, Protocol

import pytest
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.push import PushSetup
from smmc_bench.cosem.supply import SupplyObjects
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.procedures import reassociate_for_restore
from smmc_bench.safety.restore import restore_all

log = logging.getLogger(__name__)

OPERATOR_TIMEOUT_S = 300.0

def source_current_a(ac_source) -> float:
    """The current the AC source delivers (the sum through every meter on it)."""
    reading = ac_source.measure()
    return float(reading.current_a if hasattr(reading, "current_a") else reading[1])


def draw_power(load, objects: SupplyObjects, power_w: float) -> None:
    """Have the load draw `power_w` at the voltage the meter reports (the load takes a current)."""
    volts, _ = objects.voltage.read()
    load.set_current(power_w / volts)
    load.on()


def optional_load(request: pytest.FixtureRequest):
    """The `load` fixture's driver, or None when the bench has no load (its fixture skips)."""
    try:
        return request.getfixturevalue("load")
    except pytest.skip.Exception:
        return None


# -- the head-end ------------------------------------------------------------------------
def _head_end_settings(bench_config) -> tuple[str, int, str | None]:
    settings = getattr(bench_config, "head_end", None)
    if settings is None:
        return "127.0.0.1", 0, None
    return settings.host, settings.port, getattr(settings, "advertise", None)


@pytest.fixture
def head_end(meter, bench_clock, bench_config) -> Iterator[HeadEndListener]:
    host, port, advertise = _head_end_settings(bench_config)
    listener = HeadEndListener(bench_clock, host, port)
    listener.start()
    push = PushSetup(meter.session, meter.profile.supply.objects.alarm_push_setup)
    try:
        original = push.destination()
        push.set_destination(advertise or listener.destination)
        try:
            yield listener
        finally:
            _restore_destination(meter, push, original, bench_clock)
    finally:
        listener.stop()


def _restore_destination(meter, push: PushSetup, original: str, clock) -> None:
    """Put the meter's push destination back (after an outage the session may need associating again)."""
    try:
        if not meter.session.is_associated:
            reassociate_for_restore(meter.session, clock, meter.profile.supply.limits.restart_time.value)
        push.set_destination(original)
    except DlmsError as exc:
        # Not a verdict on the test that ran: the next head-end writes its own destination anyway.
        log.warning("meter %s: push destination not restored to %r: %s", meter.id, original, exc.diagnosis)


# -- the limiter, put back -----------------------------------------------------------------
@pytest.fixture
def limiter(meter, bench_clock) -> Iterator[SupplyObjects]:
    objects = SupplyObjects(meter)
    view, dc = objects.limiter, meter.disconnect_control
    saved = (view.threshold_normal(), view.threshold_emergency(), view.min_over_threshold_duration(),
             view.min_under_threshold_duration(), view.raw_emergency_profile(), view.emergency_group_ids())
    original_mode = dc.control_mode()
    try:
        yield objects
    finally:
        if not meter.session.is_associated:
            reassociate_for_restore(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
        normal, emergency, over, under, profile, groups = saved
        # Thresholds first: the breaker must not close into a limit the test left behind.
        restore_all(f"meter {meter.id} limiter", [
            ("threshold_normal", lambda: view.set_threshold_normal(normal)),
            ("threshold_emergency", lambda: view.set_threshold_emergency(emergency)),
            ("min_over_threshold_duration", lambda: view.set_min_over_threshold_duration(over)),
            ("min_under_threshold_duration", lambda: view.set_min_under_threshold_duration(under)),
            ("emergency_profile_group_id_list", lambda: view.set_emergency_group_ids(groups)),
            ("emergency_profile", lambda: view.restore_emergency_profile(profile)),
            ("breaker reconnected", lambda: restore_connected(dc, meter.profile.disconnector.control_modes,
                                                              original_mode)),
        ])


# -- the local operator --------------------------------------------------------------------
class LocalOperator(Protocol):
    how: str

    def press_reconnect(self) -> None:
        """Press the meter's reconnect button (IC 70 manual_reconnect, transition e)."""


class EmulatedButton:
    how = "the emulated meter's button"

    def __init__(self, emulator) -> None:
        self._emulator = emulator

    def press_reconnect(self) -> None:
        # The customer's button is the disconnect control's manual trigger (Blue Book IC 70, e);
        # local_* (g/h) are the meter's own local function, the limiter.
        self._emulator.manual_reconnect()


class OperatorPrompt:
    how = "the operator at the meter"

    def __init__(self, meter_id: str, capture_manager) -> None:
        self._meter_id = meter_id
        self._capture = capture_manager

    def press_reconnect(self) -> None:
        prompt = (f"\n>>> Press the reconnect button of meter {self._meter_id}, then press Enter here "
                  f"(within {OPERATOR_TIMEOUT_S:.0f} s): ")
        with self._capture.global_and_fixture_disabled():
            sys.__stdout__.write(prompt)
            sys.__stdout__.flush()
            ready, _, _ = select.select([sys.__stdin__], [], [], OPERATOR_TIMEOUT_S)
            if not ready:
                raise TimeoutError(f"the operator did not confirm the button press within {OPERATOR_TIMEOUT_S:.0f} s")
            sys.__stdin__.readline()


@pytest.fixture
def local_operator(request: pytest.FixtureRequest, meter, bench_station) -> LocalOperator:
    emulator = bench_station.emulator(meter.id)
    if emulator is not None:
        return EmulatedButton(emulator)
    stdin = sys.__stdin__
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if stdin is None or not stdin.isatty() or capture is None:
        pytest.skip(f"meter {meter.id} is real and its reconnect button needs a person: stdin is not a "
                    f"terminal, so no operator can be asked (run the bench from a terminal)")
    return OperatorPrompt(meter.id, capture)
