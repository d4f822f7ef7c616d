"""pytest fixtures for the I1 display interface (aspect 4).

- `display`: a P1Listener on the meter's display port, open for the test. On the
  emulated bench the port is the emulator's pty; on hardware it is the meter's
  `display_port` in bench.toml (a pyserial URL such as /dev/ttyUSB1), and the test
  is skipped, naming the key, when the bench has none.
- `consumer_message`: the consumer text message, put back after the test.
"""
from __future__ import annotations

from typing import Iterator

import pytest
from smmc_bench.cosem.display import ConsumerMessage
from smmc_bench.drivers.display import P1Listener
from smmc_bench.safety.restore import restore_all


def display_port(meter, bench_station) -> str | None:
    emulator = bench_station.emulator(meter.id)
    if emulator is not None:
        return emulator.display_port
    return meter.station_meter.settings.display_port


@pytest.fixture
def display(meter, bench_station, bench_clock) -> Iterator[P1Listener]:
    url = display_port(meter, bench_station)
    if url is None:
        pytest.skip(f"meter {meter.id}: no display port (bench.toml [[meter]] display_port = \"/dev/ttyUSBx\")")
    parameters = meter.profile.display.parameters
    listener = P1Listener(url, bench_clock, baudrate=parameters.baudrate, step_s=parameters.sample_step_s)
    with listener:
        yield listener


@pytest.fixture
def consumer_message(meter) -> Iterator[ConsumerMessage]:
    message = ConsumerMessage(meter.session, meter.profile.display.objects.consumer_message_text)
    original = message.read()
    try:
        yield message
    finally:
        restore_all(f"meter {meter.id} consumer message", [("text", lambda: message.write(original))])
