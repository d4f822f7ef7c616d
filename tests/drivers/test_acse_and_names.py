"""ACSE decoding tolerant of every alternative the standards permit, strict on what they forbid;
DLMS UA names in both forms IC 15 allows."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import apdu
from smmc_bench.drivers.dlms.errors import (
    DlmsTimeout,
    LinkClosed,
    MalformedReply,
    UnsupportedFeature,
)
from smmc_bench.drivers.dlms.names import (
    arcs_of,
    context_id,
    decode_oid,
    encode_oid,
    mechanism_id,
)
from smmc_bench.fixtures.meter import apdu as meter_apdu
from smmc_bench.fixtures.meter.apdu import AcseServiceUser, AssociationResult

from .scripted_peer import CLOSE, OCTETS_12, SILENT, aare, frame, get_normal

INITIATE = bytes.fromhex("0800065f1f040000101d04000007")
LLS_OID = bytes.fromhex("60857405080201")


@pytest.mark.parametrize("value", [LLS_OID, [2, 16, 756, 5, 8, 2, 1]])
def test_mechanism_name_in_either_form(value):
    assert mechanism_id(value) == 1


@pytest.mark.parametrize("value, why", [
    (bytes.fromhex("60857405080101"), "not a DLMS UA name"),     # a context name where a mechanism belongs
    ([2, 16, 756, 5, 8, 2], "not of 7"),
    ([2, 16, 756, 5, 8, 2, True], "not of 7"),
    ([2, 16, 756, 5, 8, 2, -1], "not of 7"),
    (7, "neither"),
    (bytes.fromhex("608574050802"), "not a DLMS UA name"),
    (bytes.fromhex("60857405080281"), "cut short"),
    (bytes.fromhex("6080857405080201"), "leading 0x80"),
])
def test_malformed_names_are_malformed(value, why):
    with pytest.raises(MalformedReply, match=why):
        mechanism_id(value)


def test_context_name_and_oid_round_trip():
    assert context_id([2, 16, 756, 5, 8, 1, 3]) == 3
    assert decode_oid(encode_oid((2, 16, 756, 5, 8, 1, 1))) == (2, 16, 756, 5, 8, 1, 1)
    assert arcs_of(bytes.fromhex("2a864886f70d"), "x") == (1, 2, 840, 113549)


def test_aare_with_every_optional_element_is_understood():
    raw = meter_apdu.aare(AssociationResult.ACCEPTED, AcseServiceUser.NULL,
                          meter_apdu.initiate_response(0x101D, 1024, quality_of_service=0),
                          mechanism_id=1, full=True, system_title=b"EMU\0\0\0\0\1")
    parsed = apdu.parse_aare(raw)
    assert parsed.accepted and parsed.application_context == 1 and parsed.mechanism == 1
    assert parsed.initiate.conformance == 0x101D and parsed.initiate.server_max_receive_pdu_size == 1024
    assert parsed.initiate.quality_of_service == 0
    assert {"protocol-version", "responding-AP-title", "responder-acse-requirements", "mechanism-name",
            "implementation-information"} <= set(parsed.elements)
    # gurux is given the same AARE in its minimal form, which we parse the same way
    again = apdu.parse_aare(parsed.minimal())
    assert (again.application_context, again.initiate) == (1, parsed.initiate)


@pytest.mark.parametrize("mutate, why", [
    (lambda body: body + bytes.fromhex("a203020100"), "appears twice"),
    (lambda body: body + bytes.fromhex("8b0100"), "not an element of AARE"),
    (lambda body: body.replace(bytes.fromhex("a305a103020100"), b""), "lacks its mandatory result-source"),
])
def test_aare_breaking_the_standard_is_malformed(mutate, why):
    raw = aare()
    body = mutate(raw[2:])
    with pytest.raises(MalformedReply, match=why):
        apdu.parse_aare(bytes((0x61, len(body))) + body)


def test_glo_initiate_response_is_unsupported_not_malformed():
    ciphered = bytes.fromhex("28") + bytes(20)
    raw = meter_apdu.aare(AssociationResult.ACCEPTED, AcseServiceUser.NULL, ciphered,
                          context=bytes.fromhex("60857405080103"))
    with pytest.raises(UnsupportedFeature, match="LN-with-ciphering context.*glo-InitiateResponse.*ciphering not "
                                                 "supported yet"):
        apdu.parse_aare(raw)


def test_glo_initiate_response_through_the_session(scripted):
    ciphered = meter_apdu.aare(AssociationResult.ACCEPTED, AcseServiceUser.NULL, b"\x28" + bytes(20),
                               context=bytes.fromhex("60857405080103"))
    _, session = scripted([frame(ciphered)])
    with pytest.raises(UnsupportedFeature, match="^AARQ SAP1 LLS to .*ciphering not supported yet"):
        session.connect()
    assert not session.transport.is_open


@pytest.mark.parametrize("raw, reason", [
    (bytes.fromhex("6303800100"), 0),
    (bytes.fromhex("6300"), None),
    (bytes.fromhex("6309800100be0404020800"), 0),
])
def test_rlre_forms(raw, reason):
    assert apdu.parse_rlre(raw) == reason


def test_rlre_with_inconsistent_lengths_is_malformed():
    with pytest.raises(MalformedReply, match="announces"):
        apdu.parse_rlre(bytes.fromhex("6305800100"))


def test_malformed_rlre_at_exit_is_noted_not_raised(scripted):
    _, session = scripted([frame(aare()), frame(bytes.fromhex("6305800100"))])
    with session:
        pass
    assert not session.transport.is_open
    assert any("release not judged here" in e.summary for e in session.trace)


def test_strict_release_raises_what_the_rlre_breaks(scripted):
    _, session = scripted([frame(aare()), frame(bytes.fromhex("6305800100"))])
    session.connect()
    with pytest.raises(MalformedReply, match="^RLRQ to .*announces 5 bytes, 3 present"):
        session.release(strict=True)
    session.close()


def test_strict_release_without_answer_is_a_timeout(scripted):
    _, session = scripted([frame(aare()), SILENT])
    session.connect()
    with pytest.raises(DlmsTimeout):
        session.release(strict=True)
    session.close()


def test_invoke_ids_change_per_request_and_a_reply_to_an_earlier_one_is_malformed(scripted):
    peer, session = scripted([frame(aare()), frame(get_normal(OCTETS_12)), frame(get_normal(OCTETS_12, invoke=0xC1))])
    session.connect()
    session.get(8, "0.0.1.0.0.255", 2)
    session.get(8, "0.0.1.0.0.255", 2)
    assert [apdu[2] & 0x0F for apdu in peer.received[1:]] == [1, 2]
    session.close()
    # 0x41: invoke-id 1 (the first request's), not the placeholder the scripted peer rewrites
    peer, session = scripted([frame(aare()), frame(get_normal(OCTETS_12)), frame(get_normal(OCTETS_12, invoke=0x41))])
    session.connect()
    session.get(8, "0.0.1.0.0.255", 2)
    with pytest.raises(MalformedReply, match="invoke-id 1 does not match the request's 2"):
        session.get(8, "0.0.1.0.0.255", 2)
    session.close()


def test_gurux_invoke_id_workaround_is_pinned():
    """gurux's setInvokeID writes an attribute its encoder never reads: the session sets `invokeId`."""
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    client = GXDLMSClient(True, 1, 1, Authentication.NONE, None, InterfaceType.PDU)
    client.settings.setInvokeID(5)
    assert bytes(client._read("0.0.1.0.0.255", 8, 2)[0])[2] & 0x0F != 5  # the setter is not enough
    client.settings.invokeId = 5
    assert bytes(client._read("0.0.1.0.0.255", 8, 2)[0])[2] & 0x0F == 5


def test_a_link_the_meter_closed_is_associated_again_at_the_next_request(scripted):
    peer, session = scripted([frame(aare()), CLOSE, frame(aare()), frame(get_normal(OCTETS_12))])
    session.connect()
    with pytest.raises(LinkClosed):
        session.get(8, "0.0.1.0.0.255", 2)
    assert session.get(8, "0.0.1.0.0.255", 2) == bytes.fromhex("07ea0b1a04020e151300f000")
    assert session.recoveries == 1 and peer.received[2][:1] == b"\x60"
    session.close()


def test_after_a_timeout_the_next_request_starts_from_a_new_association(scripted):
    peer, session = scripted([frame(aare()), SILENT, frame(aare()), frame(get_normal(OCTETS_12))])
    session.connect()
    with pytest.raises(DlmsTimeout):
        session.get(8, "0.0.1.0.0.255", 2)
    assert session.get(8, "0.0.1.0.0.255", 2) == bytes.fromhex("07ea0b1a04020e151300f000")
    assert [apdu[:1] for apdu in peer.received] == [b"\x60", b"\xc0", b"\x60", b"\xc0"]
    session.close()
