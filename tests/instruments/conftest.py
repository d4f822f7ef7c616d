from __future__ import annotations

import socket
import threading

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.instruments import EmulatedAcSource

MODELS = ("generic", "chroma-61500", "keysight-ac6800", "ametek-ci")


class SupplyRecorder:
    """on_supply for the emulated source: every (bench time, volts, hertz) it reports."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, float, float]] = []

    def __call__(self, volts: float, hertz: float) -> None:
        self.calls.append((self.clock.monotonic(), volts, hertz))

    def since(self, start: float) -> list[tuple[float, float]]:
        return [(round(at - start, 4), volts) for at, volts, _ in self.calls if at >= start]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulated_source(clock):
    """emulated_source(model, **kwargs) -> (emulator, recorder); stopped at teardown."""
    started = []

    def make(model: str = "generic", **kwargs):
        recorder = SupplyRecorder(clock)
        emulator = EmulatedAcSource(clock, model=model, on_supply=recorder, **kwargs)
        emulator.start()
        started.append(emulator)
        return emulator, recorder

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never answers: (host, port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join(1)
    for connection in held:
        connection.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port
