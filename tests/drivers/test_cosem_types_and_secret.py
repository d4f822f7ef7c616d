from __future__ import annotations

from datetime import datetime, timezone

import pytest
from smmc_bench.drivers.dlms import CosemDateTime, DataType, Typed
from smmc_bench.drivers.dlms.cosem_types import (
    DEVIATION_NOT_SPECIFIED,
    decode_data,
    decode_exact,
    encode_data,
)
from smmc_bench.drivers.dlms.errors import InvalidCosemValue, MalformedReply
from smmc_bench.drivers.secret import Secret, SecretUnavailable


def test_datetime_round_trip_chile_deviation():
    utc = datetime(2026, 3, 1, 2, 30, 15, 250000, tzinfo=timezone.utc)
    value = CosemDateTime.from_datetime(utc, deviation_minutes=180, status=0x80)
    assert (value.year, value.month, value.day, value.hour) == (2026, 2, 28, 23)   # local = UTC - 3 h
    assert value.weekday == 6 and value.hundredths == 25
    raw = value.to_bytes()
    assert len(raw) == 12 and raw[9:11] == b"\x00\xb4"
    back = CosemDateTime.from_bytes(raw)
    assert back == value and back.to_datetime() == utc and back.status == 0x80


def test_negative_deviation_and_unspecified():
    value = CosemDateTime.from_datetime(datetime(2026, 1, 1, tzinfo=timezone.utc), -60)
    assert CosemDateTime.from_bytes(value.to_bytes()).deviation == -60
    unspecified = CosemDateTime(2026, 1, 1, 0, 0, 0, deviation=DEVIATION_NOT_SPECIFIED)
    assert unspecified.to_bytes()[9:11] == b"\x80\x00"
    assert CosemDateTime.from_bytes(unspecified.to_bytes()).deviation == DEVIATION_NOT_SPECIFIED
    with pytest.raises(InvalidCosemValue, match="deviation not specified"):
        unspecified.to_datetime()


@pytest.mark.parametrize("fields, problem", [
    (dict(month=13), "month=13"), (dict(day=0), "day=0"), (dict(hour=24), "hour=24"),
    (dict(minute=60), "minute=60"), (dict(second=61), "second=61"), (dict(hundredths=100), "hundredths=100"),
    (dict(deviation=721), "deviation=721"), (dict(month=2, day=30), "has 28"),
    (dict(weekday=1), "weekday=1"),
])
def test_invalid_values_encode_but_do_not_decode(fields, problem):
    base = dict(year=2026, month=11, day=26, hour=6, minute=0, second=0, weekday=4, deviation=180)
    base.update(fields)
    raw = CosemDateTime(**base).to_bytes()          # deliberately invalid, for negative tests
    with pytest.raises(InvalidCosemValue, match=problem) as info:
        CosemDateTime.from_bytes(raw)
    assert isinstance(info.value, MalformedReply) and isinstance(info.value, ValueError)
    assert CosemDateTime.from_bytes(raw, validate=False).to_bytes() == raw


def test_datetime_length_is_strict():
    with pytest.raises(InvalidCosemValue, match="12 bytes, got 11"):
        CosemDateTime.from_bytes(bytes(11))


def test_axdr_round_trip_nested():
    value = Typed(DataType.STRUCTURE, [
        Typed(DataType.LONG_UNSIGNED, 8), Typed(DataType.OCTET_STRING, bytes(6)),
        Typed(DataType.ARRAY, [Typed(DataType.INTEGER, -1), Typed(DataType.BOOLEAN, True)]),
        Typed(DataType.VISIBLE_STRING, "EMU"), Typed(DataType.ENUM, 2), Typed(DataType.NULL),
        Typed(DataType.DOUBLE_LONG, -5), Typed(DataType.FLOAT32, 1.5), Typed(DataType.BIT_STRING, "101"),
    ])
    raw = encode_data(value)
    assert decode_exact(raw) == [8, bytes(6), [-1, True], "EMU", 2, None, -5, 1.5, "101"]
    typed, end = decode_data(raw, typed=True)
    assert end == len(raw) and typed == value
    with pytest.raises(MalformedReply, match="trailing"):
        decode_exact(raw + b"\x00")
    with pytest.raises(MalformedReply):
        decode_exact(raw[:-1])


def test_encode_checks_ranges():
    with pytest.raises(ValueError, match="out of range for integer"):
        encode_data(Typed(DataType.INTEGER, 200))
    with pytest.raises(TypeError):
        encode_data(Typed(DataType.ARRAY, [1, 2]))


def test_secret_hides_itself():
    secret = Secret(b"hunter22")
    assert repr(secret) == str(secret) == f"{secret}" == f"{secret:>20}" == "Secret(***)"
    assert secret.reveal() == b"hunter22" and secret == Secret(b"hunter22")


def test_secret_from_env(monkeypatch):
    monkeypatch.delenv("SMMC_TEST_PW", raising=False)
    with pytest.raises(SecretUnavailable, match="SMMC_TEST_PW is not set"):
        Secret.from_env("SMMC_TEST_PW")
    monkeypatch.setenv("SMMC_TEST_PW", "")
    with pytest.raises(SecretUnavailable, match="is empty"):
        Secret.from_env("SMMC_TEST_PW")
    monkeypatch.setenv("SMMC_TEST_PW", "abc")
    assert Secret.from_env("SMMC_TEST_PW").reveal() == b"abc"


def test_secret_from_file(tmp_path):
    with pytest.raises(SecretUnavailable, match="does not exist"):
        Secret.from_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n")
    with pytest.raises(SecretUnavailable, match="is empty"):
        Secret.from_file(empty)
    good = tmp_path / "pw.txt"
    good.write_bytes(b"s3cret-value\n")
    assert Secret.from_file(good).reveal() == b"s3cret-value"
    try:
        Secret.from_file(empty)
    except SecretUnavailable as exc:
        assert "s3cret" not in str(exc)
