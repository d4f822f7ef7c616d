"""The emulated meter's I1 port: its CRC, its telegram shape and its data-request behaviour."""
from __future__ import annotations

import os
import select
from datetime import datetime, timezone

from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.fixtures.meter.p1 import crc16

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)


def test_crc16_is_crc16_arc():
    assert crc16(b"123456789") == 0xBB3D  # the catalogue check value of CRC-16/ARC
    assert crc16(b"") == 0


def test_telegram_shape():
    meter = EmulatedMeter(clock=VirtualClock(START), initial_clock_offset=0.0)
    telegram = meter.model.display_telegrams.telegram()
    assert telegram.startswith(b"/EMU5EMU0000001\r\n\r\n")
    body, bang, tail = telegram.partition(b"!")
    assert bang and tail.endswith(b"\r\n") and len(tail) == 6
    assert int(tail[:4], 16) == crc16(body + b"!")
    assert b"\r\n0-0:1.0.0(250310080000W)\r\n" in telegram  # local time: UTC - 240 min


def test_writes_only_while_a_reader_holds_the_port():
    meter = EmulatedMeter(clock=VirtualClock(START))
    meter.start()
    try:
        meter.bench_clock.sleep(86400)  # nobody listens: a day passes with no timer chain
        assert meter.display._timer is None
        reader = os.open(meter.display_port, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            received = b""
            for _ in range(50):
                meter.bench_clock.sleep(0.1)
                if select.select([reader], [], [], 0.005)[0]:
                    received += os.read(reader, 65536)
            assert received.count(b"/EMU5") >= 3
        finally:
            os.close(reader)
        for _ in range(20):  # the next tick sees the hang-up and stops the chain
            meter.bench_clock.sleep(1.0)
        assert meter.display._timer is None
    finally:
        meter.stop()
