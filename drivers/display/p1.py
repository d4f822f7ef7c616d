"""The P1-style I1 telegram as the bench hears it on a serial port (pyserial URL:
/dev/ttyUSB0 on hardware, the emulator's pty on the emulated bench).

The listener reads what arrives, cuts it into telegrams, stamps each with the
bench time its last byte was read, and judges its form: framing, CRC (through
dsmr-parser, smmc_bench.drivers.display.dsmr) and one value group per named OBIS line. It
judges nothing else: values are for the test to compare.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import serial
from smmc_bench.drivers.display import dsmr

DSMR5_BAUDRATE = 115200
_SETTLE_S = 0.005
_FRAME = re.compile(rb"/[^/!]*?![0-9A-Fa-f]{4}\r\n", re.DOTALL)
_HEADER = re.compile(r"^/([A-Za-z]{3})(\d)([^\r\n]+)\r\n\r\n")
_LINE = re.compile(r"^(\d+-\d+:\d+\.\d+\.\d+)(\(.*\))$")


class BenchTime(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class P1Telegram:
    raw: bytes
    received_at: float  # bench seconds at which its last byte was read
    maker: str = ""
    identification: str = ""
    values: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # obis -> (value, unit)
    problems: tuple[str, ...] = ()  # what is wrong with its form; empty when well formed

    def value(self, obis: str) -> str | None:
        return self.values.get(obis, (None, None))[0]

    def unit(self, obis: str) -> str | None:
        return self.values.get(obis, (None, None))[1]


def parse_telegram(raw: bytes, received_at: float = 0.0) -> P1Telegram:
    """A telegram from '/' to the CRLF after its CRC, judged for form."""
    problems: list[str] = []
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return P1Telegram(raw, received_at, problems=("bytes outside ASCII",))
    header = _HEADER.match(text)
    maker = ident = ""
    if header is None:
        problems.append("header is not '/XXX<digit>identification' followed by an empty line")
    else:
        maker, ident = header.group(1), header.group(3)
    crc = dsmr.checksum_problem(text)
    if crc:
        problems.append(crc)
    body = text[header.end():text.rindex("!")] if header else ""
    codes = []
    for line in body.split("\r\n")[:-1] if body else []:
        match = _LINE.match(line)
        if match is None:
            problems.append(f"line {line!r} is not 'OBIS(value)'")
            continue
        codes.append(match.group(1))
    values = dsmr.line_values(text, codes) if codes else {}
    for code in codes:
        if code not in values:
            problems.append(f"line {code} does not parse as one value group")
    if len(set(codes)) != len(codes):
        problems.append("an OBIS line appears twice")
    return P1Telegram(raw, received_at, maker, ident, values, tuple(problems))


class P1Listener:
    """Listens on the display port. `with P1Listener(url, clock) as p1: p1.collect(5)`."""

    def __init__(self, url: str, clock: BenchTime, baudrate: int = DSMR5_BAUDRATE, step_s: float = 0.1) -> None:
        self.url = url
        self._clock = clock
        self._baudrate = baudrate
        self.step_s = step_s
        self._port: serial.SerialBase | None = None
        self._buffer = b""

    def open(self) -> "P1Listener":
        self._port = serial.serial_for_url(self.url, baudrate=self._baudrate, timeout=0)
        return self

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> "P1Listener":
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def discard(self) -> None:
        """Forget what arrived so far: telegrams queued in the OS while nobody read are old news."""
        self._port.reset_input_buffer()
        while self._read():  # until the line is quiet: what the driver still held is gone too
            pass
        self._buffer = b""

    def write(self, data: bytes) -> None:
        """Send bytes towards the meter (the interface should ignore them)."""
        self._port.write(data)
        self._port.flush()

    def poll(self) -> list[P1Telegram]:
        """The telegrams completed since the last poll, stamped now."""
        self._buffer += self._read()
        now = self._clock.monotonic()
        found = []
        while True:
            start = self._buffer.find(b"/")
            if start < 0:
                self._buffer = b""
                break
            match = _FRAME.search(self._buffer, start)
            if match is None:
                self._buffer = self._buffer[start:]
                break
            found.append(parse_telegram(self._buffer[start:match.end()], now))
            self._buffer = self._buffer[match.end():]
        return found

    def collect(self, count: int, within_s: float) -> list[P1Telegram]:
        """Up to `count` telegrams, listening at most `within_s` bench seconds."""
        end = self._clock.monotonic() + within_s
        found: list[P1Telegram] = []
        while len(found) < count and self._clock.monotonic() < end:
            self._clock.sleep(self.step_s)
            found += self.poll()
        return found[:count]

    def until(self, accept, within_s: float) -> P1Telegram | None:
        """The first telegram `accept(telegram)` holds for, within `within_s` bench seconds, or None."""
        end = self._clock.monotonic() + within_s
        while self._clock.monotonic() < end:
            self._clock.sleep(self.step_s)
            for telegram in self.poll():
                if accept(telegram):
                    return telegram
        return None

    def _read(self) -> bytes:
        # A byte written just now may take a moment to cross the line's driver: wait a few real
        # milliseconds for it, so a telegram is stamped at the step it arrived in, not the next.
        self._port.timeout = _SETTLE_S
        first = self._port.read(1)
        waiting = self._port.in_waiting
        return first + (self._port.read(waiting) if waiting else b"")
