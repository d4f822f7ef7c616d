"""After an interrupt, the bench reads each device back and says what it found, did, or could
not do (smmc_bench.safety.safe_state): here with an emulated AC source left off, and one that is gone."""
from __future__ import annotations

import socket
from types import SimpleNamespace

from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.instruments import (
    AcSourceSettings,
    open_ac_source,
    serve_emulated_instruments,
)
from smmc_bench.safety.safe_state import check_safe_state


def station_with(ac_source: AcSourceSettings | None) -> SimpleNamespace:
    return SimpleNamespace(instruments=SimpleNamespace(ac_source=ac_source, load=None), meters={})


def test_a_source_left_off_is_put_back_and_said_so():
    served = serve_emulated_instruments(AcSourceSettings(emulated=True, model="chroma-61500"), None, VirtualClock())
    try:
        source = open_ac_source(served.ac_source)
        source.set_voltage(90.0)
        source.off()
        source.close()
        assert check_safe_state(station_with(served.ac_source)) == [
            "AC source: was 90 V, output off; put back at nominal 220 V 50 Hz, output on (read back)"]
        assert check_safe_state(station_with(served.ac_source)) == [
            "AC source: at nominal 220 V 50 Hz, output on (read back)"]
    finally:
        served.stop()


def test_a_source_that_does_not_answer_is_named_for_the_operator():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens once the probe is closed
    settings = AcSourceSettings(resource=f"TCPIP::127.0.0.1::{port}::SOCKET", model="chroma-61500", timeout=1.0)
    [line] = check_safe_state(station_with(settings))
    assert line.startswith("AC source: NOT CHECKED, it does not answer") and line.endswith("check it by hand")
