"""Pins the dlms-cosem behaviours fixtures/meter works around or avoids.

If an upstream fix makes one of the `upstream_*` tests fail, the matching
workaround (or own encoder) can be reconsidered.
"""
from __future__ import annotations

import pytest
from dlms_cosem import dlms_data
from dlms_cosem.protocol.xdlms import GetRequestFactory, GetResponseNormal
from dlms_cosem.protocol.xdlms.invoke_id_and_priority import InvokeIdAndPriority
from smmc_bench.fixtures.meter import apdu, axdr
from smmc_bench.fixtures.meter.cosem_patches import (
    ActionNormal,
    Descriptor,
    GetNext,
    GetNormal,
    RequestParseError,
    SetNormal,
    parse_aarq,
    parse_action,
    parse_get,
    parse_rlrq,
    parse_set,
)

UNKNOWN_CLASS_GET = bytes.fromhex("c001c1fff10000010000ff0200")


def test_upstream_rejects_unknown_class_id():
    with pytest.raises(ValueError):
        GetRequestFactory.from_bytes(UNKNOWN_CLASS_GET)


def test_unknown_class_id_is_parsed_with_its_real_value():
    assert parse_get(UNKNOWN_CLASS_GET) == GetNormal(
        0xC1, Descriptor(0xFFF1, bytes([0, 0, 1, 0, 0, 255]), 2), None)


def test_upstream_get_response_normal_encoder_is_broken():
    response = GetResponseNormal(data=b"\x11\x05", invoke_id_and_priority=InvokeIdAndPriority(1, True, True))
    with pytest.raises(TypeError):
        response.to_bytes()
    assert apdu.get_response_normal(0xC1, b"\x11\x05") == bytes.fromhex("c401c1001105")


def test_upstream_data_encoders_fail_where_ours_work():
    with pytest.raises(NotImplementedError):
        dlms_data.BooleanData(True).to_bytes()
    long_octets = dlms_data.OctetStringData(b"x" * 200).to_bytes()
    assert long_octets[1] == 200  # one-byte length: not valid A-XDR above 127
    assert axdr.encode(axdr.octet_string(b"x" * 200))[:3] == bytes([9, 0x81, 200])
    assert axdr.encode(axdr.boolean(True)) == b"\x03\x01"


def test_requests_as_gurux_sends_them():
    assert parse_get(bytes.fromhex("c002c100000003")) == GetNext(0xC1, 3)
    assert parse_set(bytes.fromhex("c101c100080000010000ff0200090c07e80506ff0708090000f000")) == SetNormal(
        0xC1, Descriptor(8, bytes([0, 0, 1, 0, 0, 255]), 2), bytes.fromhex("090c07e80506ff0708090000f000"))
    assert parse_action(bytes.fromhex("c301c100080000010000ff060110001e")) == ActionNormal(
        0xC1, Descriptor(8, bytes([0, 0, 1, 0, 0, 255]), 6), bytes.fromhex("10001e"))
    assert parse_action(bytes.fromhex("c301c100460000600310ff0100")).parameter is None
    aarq = parse_aarq(bytes.fromhex(
        "603da1090607608574050801018a0207808b0760857405080201ac11800f534d4d432d454d552d4c4c532d3031"
        "be10040e01000000065f1f0400401e5dffff"))
    assert int(aarq.authentication) == 1 and aarq.user_information.content.client_max_receive_pdu_size == 0xFFFF
    assert parse_rlrq(bytes.fromhex("6203800100")).reason == 0


@pytest.mark.parametrize("garbage", [b"\xc0\x01", b"\xc0\x07\x01", b"\xc1\x03\xc1" + bytes(12), b"\x60\x01"])
def test_garbage_raises_our_parse_error(garbage):
    parser = {0xC0: parse_get, 0xC1: parse_set, 0x60: parse_aarq}[garbage[0]]
    with pytest.raises(RequestParseError):
        parser(garbage)
