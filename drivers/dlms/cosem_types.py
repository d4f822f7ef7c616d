"""Sans-IO COSEM data: A-XDR tags, typed values, the 12-byte date-time.

Our own codec for everything the bench verifies itself: replies are decoded
here (strictly: every byte accounted for), and request parameters are encoded
here, so no gurux type ever reaches the caller.
"""
from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

from .errors import InvalidCosemValue, MalformedReply, UnsupportedFeature


class DataType(IntEnum):
    """A-XDR data tags (IEC 62056-6-2)."""
    NULL = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Typed:
    """A value with its explicit A-XDR type. For ARRAY/STRUCTURE the value is a
    list of Typed; for OCTET_STRING it may be bytes, a CosemDateTime or a Secret."""
    type: DataType
    value: Any = None


# --- fixed-size scalars -------------------------------------------------------

_SCALARS: dict[int, struct.Struct] = {
    DataType.BOOLEAN: struct.Struct(">B"),
    DataType.DOUBLE_LONG: struct.Struct(">i"),
    DataType.DOUBLE_LONG_UNSIGNED: struct.Struct(">I"),
    DataType.BCD: struct.Struct(">B"),
    DataType.INTEGER: struct.Struct(">b"),
    DataType.LONG: struct.Struct(">h"),
    DataType.UNSIGNED: struct.Struct(">B"),
    DataType.LONG_UNSIGNED: struct.Struct(">H"),
    DataType.LONG64: struct.Struct(">q"),
    DataType.LONG64_UNSIGNED: struct.Struct(">Q"),
    DataType.ENUM: struct.Struct(">B"),
    DataType.FLOAT32: struct.Struct(">f"),
    DataType.FLOAT64: struct.Struct(">d"),
}
_FIXED_OCTETS = {DataType.DATE_TIME: 12, DataType.DATE: 5, DataType.TIME: 4}
_MAX_DEPTH = 32  # a hostile reply must not exhaust the Python stack


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """A-XDR length: one byte below 0x80, else 0x8N followed by N bytes."""
    if pos >= len(buf):
        raise MalformedReply(f"length byte missing at offset {pos}")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or n > 4 or pos + 1 + n > len(buf):
        raise MalformedReply(f"bad length encoding 0x{first:02X} at offset {pos}")
    return int.from_bytes(buf[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def decode_data(buf: bytes, pos: int = 0, *, typed: bool = False, depth: int = 0) -> tuple[Any, int]:
    """Decode one A-XDR Data at `pos`; return (value, next position).

    Plain values: int, bool, bytes, str, list, float, None; date-time as
    CosemDateTime (unvalidated, so a bench can judge it). With typed=True every
    node is a Typed. Raises MalformedReply when the bytes run out or the tag is unknown."""
    if depth > _MAX_DEPTH:
        raise MalformedReply(f"data nested deeper than {_MAX_DEPTH} levels")
    if pos >= len(buf):
        raise MalformedReply(f"data tag missing at offset {pos} (truncated)")
    tag = buf[pos]
    pos += 1
    codec = _SCALARS.get(tag)
    if codec is not None:
        end = pos + codec.size
        if end > len(buf):
            raise MalformedReply(f"{DataType(tag).label} truncated at offset {pos}")
        value = codec.unpack_from(buf, pos)[0]
        if tag == DataType.BOOLEAN:
            value = value != 0
    elif tag in (DataType.ARRAY, DataType.STRUCTURE):
        count, pos = decode_length(buf, pos)
        items = []
        for _ in range(count):
            item, pos = decode_data(buf, pos, typed=typed, depth=depth + 1)
            items.append(item)
        value, end = items, pos
    elif tag in (DataType.OCTET_STRING, DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        n, pos = decode_length(buf, pos)
        end = pos + n
        if end > len(buf):
            raise MalformedReply(
                f"{DataType(tag).label} announces {n} bytes, {len(buf) - pos} present (truncated)")
        raw = bytes(buf[pos:end])
        if tag == DataType.OCTET_STRING:
            value = raw
        else:
            try:
                value = raw.decode("ascii" if tag == DataType.VISIBLE_STRING else "utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedReply(f"{DataType(tag).label} is not valid text: {exc.reason}") from None
    elif tag == DataType.BIT_STRING:
        bits, pos = decode_length(buf, pos)
        end = pos + (bits + 7) // 8
        if end > len(buf):
            raise MalformedReply(f"bit-string of {bits} bits truncated at offset {pos}")
        value = "".join(f"{b:08b}" for b in buf[pos:end])[:bits]
    elif tag in _FIXED_OCTETS:
        end = pos + _FIXED_OCTETS[tag]
        if end > len(buf):
            raise MalformedReply(f"{DataType(tag).label} truncated at offset {pos}")
        raw = bytes(buf[pos:end])
        value = CosemDateTime.from_bytes(raw, validate=False) if tag == DataType.DATE_TIME else raw
    elif tag in (DataType.NULL, DataType.DONT_CARE):
        value, end = None, pos
    elif tag == DataType.COMPACT_ARRAY:
        raise UnsupportedFeature("compact-array data is not decoded by this driver yet")
    else:
        raise MalformedReply(f"unknown data tag 0x{tag:02X} at offset {pos - 1}")
    return (Typed(DataType(tag), value) if typed else value), end


def decode_exact(buf: bytes) -> Any:
    """Decode a Data that must fill `buf` exactly (no trailing bytes)."""
    value, end = decode_data(buf, 0)
    if end != len(buf):
        raise MalformedReply(f"{len(buf) - end} trailing bytes after the data")
    return value


def describe(value_typed_tag: int, buf: bytes, pos: int = 0) -> str:
    """Short label for trace summaries, e.g. 'octet-string 12', 'long-unsigned 42'."""
    try:
        tag = DataType(value_typed_tag)
    except ValueError:
        return f"tag 0x{value_typed_tag:02X}"
    if tag in (DataType.ARRAY, DataType.STRUCTURE, DataType.OCTET_STRING,
               DataType.VISIBLE_STRING, DataType.UTF8_STRING, DataType.BIT_STRING):
        try:
            n, _ = decode_length(buf, pos + 1)
        except MalformedReply:
            return tag.label
        return f"{tag.label} {n}"
    codec = _SCALARS.get(tag)
    if codec is not None and pos + 1 + codec.size <= len(buf):
        return f"{tag.label} {codec.unpack_from(buf, pos + 1)[0]}"
    return tag.label


_INT_RANGES = {
    DataType.INTEGER: (-0x80, 0x7F), DataType.LONG: (-0x8000, 0x7FFF),
    DataType.DOUBLE_LONG: (-0x80000000, 0x7FFFFFFF), DataType.LONG64: (-(1 << 63), (1 << 63) - 1),
    DataType.UNSIGNED: (0, 0xFF), DataType.ENUM: (0, 0xFF), DataType.BCD: (0, 0xFF),
    DataType.LONG_UNSIGNED: (0, 0xFFFF), DataType.DOUBLE_LONG_UNSIGNED: (0, 0xFFFFFFFF),
    DataType.LONG64_UNSIGNED: (0, (1 << 64) - 1),
}


def encode_data(item: Typed, secrets: list[bytes] | None = None) -> bytes:
    """A-XDR encoding of a Typed value. Revealed Secret bytes are appended to
    `secrets` so the caller can redact them from its trace."""
    t = DataType(item.type)
    v = item.value
    if t in (DataType.NULL, DataType.DONT_CARE):
        return bytes((t,))
    if t == DataType.BOOLEAN:
        return bytes((t, 1 if v else 0))
    if t in _INT_RANGES:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{t.label} needs an int, got {type(v).__name__}")
        lo, hi = _INT_RANGES[t]
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range for {t.label} [{lo}, {hi}]")
        return bytes((t,)) + _SCALARS[t].pack(v)
    if t in (DataType.FLOAT32, DataType.FLOAT64):
        return bytes((t,)) + _SCALARS[t].pack(float(v))
    if t in (DataType.ARRAY, DataType.STRUCTURE):
        parts = [bytes((t,)), encode_length(len(v))]
        for element in v:
            if not isinstance(element, Typed):
                raise TypeError(f"{t.label} elements must be Typed, got {type(element).__name__}")
            parts.append(encode_data(element, secrets))
        return b"".join(parts)
    if t == DataType.OCTET_STRING:
        raw = _octets(v, secrets)
        return bytes((t,)) + encode_length(len(raw)) + raw
    if t == DataType.VISIBLE_STRING:
        raw = v.encode("ascii") if isinstance(v, str) else bytes(v)
        return bytes((t,)) + encode_length(len(raw)) + raw
    if t == DataType.UTF8_STRING:
        raw = v.encode("utf-8") if isinstance(v, str) else bytes(v)
        return bytes((t,)) + encode_length(len(raw)) + raw
    if t == DataType.BIT_STRING:
        bits = str(v)
        if set(bits) - {"0", "1"}:
            raise ValueError("bit-string value must be a string of '0' and '1'")
        padded = bits + "0" * (-len(bits) % 8)
        body = bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))
        return bytes((t,)) + encode_length(len(bits)) + body
    if t in _FIXED_OCTETS:
        raw = _octets(v, secrets)
        if len(raw) != _FIXED_OCTETS[t]:
            raise ValueError(f"{t.label} needs {_FIXED_OCTETS[t]} bytes, got {len(raw)}")
        return bytes((t,)) + raw
    raise UnsupportedFeature(f"encoding {t.label} is not supported by this driver")


def _octets(v: Any, secrets: list[bytes] | None) -> bytes:
    if isinstance(v, CosemDateTime):
        return v.to_bytes()
    if hasattr(v, "reveal"):  # smmc_bench.drivers.secret.Secret, without importing it here
        raw = v.reveal()
        if secrets is not None:
            secrets.append(raw)
        return raw
    return bytes(v)


# --- date-time ------------------------------------------------------------------

NOT_SPECIFIED = 0xFF
YEAR_NOT_SPECIFIED = 0xFFFF
DEVIATION_NOT_SPECIFIED = 0x8000
_DATETIME = struct.Struct(">HBBBBBBBHB")


@dataclass(frozen=True)
class CosemDateTime:
    """COSEM date-time (12 bytes). `deviation` in minutes, Blue Book convention:
    UTC = local + deviation (Chile at UTC-3 has deviation +180); 0x8000 = not
    specified. Construction does not validate, so deliberately invalid values can
    be built for negative tests; `from_bytes` validates by default; `validate()`
    raises InvalidCosemValue listing every problem."""
    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    hundredths: int = 0
    weekday: int = NOT_SPECIFIED
    deviation: int = DEVIATION_NOT_SPECIFIED
    status: int = 0

    @classmethod
    def from_bytes(cls, data: bytes, *, validate: bool = True) -> "CosemDateTime":
        if len(data) != 12:
            raise InvalidCosemValue(f"date-time must be 12 bytes, got {len(data)}", raw=bytes(data))
        y, mo, d, dow, h, mi, s, hs, dev, st = _DATETIME.unpack(data)
        if dev != DEVIATION_NOT_SPECIFIED and dev >= 0x8000:
            dev -= 0x10000
        value = cls(year=y, month=mo, day=d, hour=h, minute=mi, second=s, hundredths=hs,
                    weekday=dow, deviation=dev, status=st)
        if validate:
            value.validate(raw=bytes(data))
        return value

    def to_bytes(self) -> bytes:
        return _DATETIME.pack(self.year, self.month, self.day, self.weekday, self.hour,
                              self.minute, self.second, self.hundredths,
                              self.deviation & 0xFFFF, self.status)

    def problems(self) -> list[str]:
        out = []
        def check(name: str, value: int, lo: int, hi: int, extra: tuple[int, ...] = (NOT_SPECIFIED,)):
            if not (lo <= value <= hi or value in extra):
                out.append(f"{name}={value}")
        check("year", self.year, 0, 0xFFFE, (YEAR_NOT_SPECIFIED,))
        check("month", self.month, 1, 12, (0xFD, 0xFE, 0xFF))       # FD/FE: DST end/begin
        check("day", self.day, 1, 31, (0xFD, 0xFE, 0xFF))           # FD/FE: 2nd last/last day
        check("weekday", self.weekday, 1, 7)
        check("hour", self.hour, 0, 23)
        check("minute", self.minute, 0, 59)
        check("second", self.second, 0, 59)
        check("hundredths", self.hundredths, 0, 99)
        check("deviation", self.deviation, -720, 720, (DEVIATION_NOT_SPECIFIED,))
        check("status", self.status, 0, 0xFF, ())
        if not out and self.year != YEAR_NOT_SPECIFIED and 1 <= self.month <= 12 and 1 <= self.day <= 31:
            last = calendar.monthrange(self.year, self.month)[1]
            if self.day > last:
                out.append(f"day={self.day} (month {self.month} of {self.year} has {last})")
            elif self.weekday != NOT_SPECIFIED:
                actual = calendar.weekday(self.year, self.month, self.day) + 1
                if actual != self.weekday:
                    out.append(f"weekday={self.weekday} ({self.year:04}-{self.month:02}-{self.day:02} is {actual})")
        return out

    def validate(self, raw: bytes | None = None) -> "CosemDateTime":
        problems = self.problems()
        if problems:
            raw = self.to_bytes() if raw is None else raw
            raise InvalidCosemValue(f"invalid date-time {raw.hex()}: " + ", ".join(problems), raw=raw)
        return self

    @classmethod
    def from_datetime(cls, dt: datetime, deviation_minutes: int, status: int = 0) -> "CosemDateTime":
        if dt.tzinfo is None:
            raise ValueError("from_datetime needs an aware datetime")
        local = dt.astimezone(timezone.utc) - timedelta(minutes=deviation_minutes)
        return cls(year=local.year, month=local.month, day=local.day, hour=local.hour,
                   minute=local.minute, second=local.second,
                   hundredths=local.microsecond // 10000, weekday=local.isoweekday(),
                   deviation=deviation_minutes, status=status)

    def to_datetime(self) -> datetime:
        """Aware UTC datetime; needs every field and the deviation specified."""
        self.validate()
        missing = [n for n in ("month", "day", "hour", "minute", "second")
                   if getattr(self, n) in (NOT_SPECIFIED, 0xFD, 0xFE)]
        if self.year == YEAR_NOT_SPECIFIED:
            missing.insert(0, "year")
        if self.deviation == DEVIATION_NOT_SPECIFIED:
            missing.append("deviation")
        if missing:
            raise InvalidCosemValue(f"date-time {self.to_bytes().hex()} is not a point in time: "
                                    f"{', '.join(missing)} not specified", raw=self.to_bytes())
        hs = 0 if self.hundredths == NOT_SPECIFIED else self.hundredths
        try:
            local = datetime(self.year, self.month, self.day, self.hour, self.minute, self.second,
                             hs * 10000, tzinfo=timezone.utc)
            return local + timedelta(minutes=self.deviation)
        except (ValueError, OverflowError) as exc:  # a valid COSEM year beyond what Python dates hold
            raise InvalidCosemValue(f"date-time {self.to_bytes().hex()} is outside the dates the bench can "
                                    f"compute with: {exc}", raw=self.to_bytes()) from None
