"""Our A-XDR codec and COSEM date-time."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from smmc_bench.fixtures.meter import axdr, cosem_time
from smmc_bench.fixtures.meter.axdr import Data, DataType


@pytest.mark.parametrize("value", [
    axdr.null(), axdr.boolean(False), axdr.integer(-5), axdr.long(-720), axdr.unsigned(255),
    axdr.long_unsigned(65535), axdr.double_long_unsigned(2**32 - 1), axdr.enum(2),
    Data(DataType.DOUBLE_LONG, -1), Data(DataType.LONG64, -2**63), Data(DataType.BIT_STRING, "1011000001"),
    axdr.octet_string(b"z" * 300), Data(DataType.DATE_TIME, bytes(12)),
    axdr.array([axdr.structure(axdr.octet_string(b"a"), axdr.unsigned(1))] * 130),
])
def test_round_trip(value):
    assert axdr.decode_exactly(axdr.encode(value)) == value


def test_lengths_use_long_form_from_128():
    assert axdr.encode_length(127) == b"\x7f"
    assert axdr.encode_length(128) == b"\x81\x80"
    assert axdr.encode_length(300) == b"\x82\x01\x2c"


@pytest.mark.parametrize("raw", [b"", b"\x09\x05ab", b"\x12\x00", b"\x07", b"\x01\x02\x11", b"\x11\x01\x00"])
def test_malformed_data_raises(raw):
    with pytest.raises(axdr.DecodeError):
        axdr.decode_exactly(raw)


def test_date_time_encodes_local_time_and_deviation():
    raw = cosem_time.encode(datetime(2025, 1, 2, 3, 4, 5, 670000, tzinfo=timezone.utc), 240)
    # UTC 03:04:05.67 on Thursday 2 Jan is 23:04:05.67 local (UTC-4) on Wednesday 1 Jan
    assert raw == bytes.fromhex("07e9 01 01 03 17 04 05 43 00f0 00".replace(" ", ""))
    assert cosem_time.decode_for_set(raw, 0) == datetime(2025, 1, 2, 3, 4, 5, 670000, tzinfo=timezone.utc)


def test_date_time_set_rules():
    raw = bytearray(cosem_time.encode(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), 240))
    raw[9:11] = b"\x80\x00"  # deviation not specified: the meter's own time zone applies
    assert cosem_time.decode_for_set(bytes(raw), 0).hour == 23
    raw[4] = 4  # Thursday written for a Wednesday
    with pytest.raises(cosem_time.InvalidDateTime):
        cosem_time.decode_for_set(bytes(raw), 0)
