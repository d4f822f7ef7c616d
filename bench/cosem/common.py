"""Helpers every COSEM view shares: OBIS text, date-times, and time between two stamps."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from smmc_bench.drivers.dlms import CosemDateTime
from smmc_bench.drivers.dlms.errors import MalformedReply

# Interface class ids the views share.
DATA = 1
PROFILE_GENERIC = 7
CLOCK = 8


def seconds_between(a: datetime, b: datetime) -> float:
    return (a - b) / timedelta(seconds=1)


def obis_text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def obis_bytes(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def _date_time(raw: Any, what: str) -> datetime:
    if isinstance(raw, CosemDateTime):
        return raw.to_datetime()
    if not isinstance(raw, bytes):
        raise MalformedReply(f"{what} is {type(raw).__name__}, expected a 12-byte date-time")
    try:
        return CosemDateTime.from_bytes(raw).to_datetime()
    except ValueError as exc:
        raise MalformedReply(f"{what} {raw.hex()} is not a date-time: {exc}") from None
