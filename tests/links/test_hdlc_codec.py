"""The HDLC codec (smmc_bench.drivers.links.hdlc) against the standard's check values and two
independent implementations: gurux-dlms (client HDLC framing) and dlms-cosem
(whose HDLC frames are sound only for frames to a client; pinned below)."""
from __future__ import annotations

import pytest
from dlms_cosem.hdlc import address as dc_address
from dlms_cosem.hdlc import frames as dc_frames
from gurux_dlms import GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.GXDLMS import GXDLMS
from smmc_bench.drivers.links import hdlc
from smmc_bench.drivers.links.hdlc import (
    Address,
    BadFrame,
    Frame,
    FrameError,
    Garbage,
    HdlcParameters,
    Kind,
)

CLIENT = Address.client(16)
SERVER = Address.server(1, 17)


def test_crc16_x25_check_value():
    assert hdlc.crc16(b"123456789") == 0x906E  # CRC-16/X.25 catalogue check value


@pytest.mark.parametrize("logical, physical, size, gurux_size", [
    (1, None, 1, 1), (1, 17, 2, 2), (0x7F, 0x7F, 2, 2), (1, 0x3FFD, 4, 4), (0x123, 0x1234, 4, 4),
])
def test_server_address_forms_match_gurux(logical, physical, size, gurux_size):
    ours = Address.server(logical, physical)
    assert ours.size == size
    value = logical if physical is None else GXDLMSClient.getServerAddress(logical, physical, gurux_size)
    gurux = bytes(GXDLMS.getAddressBytes(value, gurux_size))
    assert ours.to_bytes() == gurux
    assert Address.parse(ours.to_bytes(), 0) == (ours, size)


def test_address_validation():
    with pytest.raises(ValueError, match="does not fit"):
        Address(0x80, 1, 2)
    with pytest.raises(ValueError, match="no physical"):
        Address(1, 5, 1)
    with pytest.raises(FrameError, match="address field of 3 bytes"):
        Address.parse(bytes((0x02, 0x22, 0x23)), 0)
    assert Address.server(1, None, 4) == Address(1, 0, 4)


def test_physical_address_from_serial_matches_gurux():
    expected = GXDLMSClient.getServerAddressFromSerialNumber(12345678, 1) & 0x3FFF
    assert hdlc.physical_address_from_serial("ABC12345678") == expected == 6678
    with pytest.raises(ValueError, match="no digits"):
        hdlc.physical_address_from_serial("EMU")


@pytest.mark.parametrize("frame", [
    Frame(Kind.SNRM, SERVER, CLIENT),
    Frame(Kind.SNRM, SERVER, CLIENT, info=hdlc.encode_parameters(HdlcParameters.symmetric(512, 7))),
    Frame(Kind.UA, CLIENT, SERVER, info=hdlc.encode_parameters(HdlcParameters())),
    Frame(Kind.DISC, SERVER, CLIENT), Frame(Kind.DM, CLIENT, SERVER),
    Frame(Kind.RR, SERVER, CLIENT, recv_seq=5), Frame(Kind.RNR, CLIENT, SERVER, poll=False, recv_seq=7),
    Frame(Kind.I, SERVER, CLIENT, send_seq=3, recv_seq=6, info=b"\xe6\xe6\x00\xc0", segmented=True),
    Frame(Kind.I, CLIENT, Address.server(0x123, 0x2345), poll=False, send_seq=7, recv_seq=0, info=b"x" * 300),
    Frame(Kind.FRMR, CLIENT, SERVER, info=b"\x10\x00\x04"), Frame(Kind.UI, CLIENT, SERVER, info=b"push"),
])
def test_encode_decode_round_trip(frame):
    raw = hdlc.encode(frame)
    assert raw[0] == raw[-1] == hdlc.FLAG
    assert hdlc.decode(raw) == frame


def test_snrm_parameters_from_gurux_parse():
    client = GXDLMSClient(True, 16, GXDLMSClient.getServerAddress(1, 17), Authentication.NONE, None,
                          InterfaceType.HDLC)
    client.hdlcSettings.maxInfoTX, client.hdlcSettings.maxInfoRX = 512, 256
    client.hdlcSettings.windowSizeTX, client.hdlcSettings.windowSizeRX = 2, 3
    frame = hdlc.decode(bytes(client.snrmRequest()))
    assert (frame.kind, frame.destination, frame.source) == (Kind.SNRM, SERVER, CLIENT)
    assert hdlc.parse_parameters(frame.info) == HdlcParameters(512, 256, 2, 3)


def test_gurux_client_accepts_our_ua_and_segmented_reply():
    client = GXDLMSClient(True, 16, GXDLMSClient.getServerAddress(1, 17), Authentication.NONE, None,
                          InterfaceType.HDLC)
    client.snrmRequest()
    negotiated = hdlc.negotiate(HdlcParameters(), HdlcParameters.symmetric(128))
    ua = hdlc.encode(Frame(Kind.UA, CLIENT, SERVER, info=hdlc.encode_parameters(negotiated)))
    reply = GXReplyData()
    client.getData(ua, reply)
    client.parseUAResponse(reply.data)
    assert client.hdlcSettings.maxInfoRX == 128


def test_parameters_negotiation_and_defaults():
    assert hdlc.parse_parameters(b"") == hdlc.DEFAULT_PARAMETERS
    client = HdlcParameters(max_info_tx=2030, max_info_rx=512, window_tx=7, window_rx=1)
    meter = HdlcParameters.symmetric(1024, 3)
    # The meter's UA, from its own point of view: it sends at most what the client receives.
    assert hdlc.negotiate(client, meter) == HdlcParameters(512, 1024, 1, 3)
    with pytest.raises(FrameError, match="unknown parameter"):
        hdlc.parse_parameters(bytes.fromhex("818003090100"))
    with pytest.raises(FrameError, match="outside"):
        hdlc.parse_parameters(bytes.fromhex("8180040502ffff"))
    with pytest.raises(FrameError, match="group says"):
        hdlc.parse_parameters(bytes.fromhex("81800905020080"))


@pytest.mark.parametrize("part, reason", [("fcs", "fcs"), ("hcs", "hcs")])
def test_corrupted_frames_are_rejected_with_the_reason(part, reason):
    raw = hdlc.corrupt(hdlc.encode(Frame(Kind.I, SERVER, CLIENT, info=b"\xe6\xe6\x00abc")), part)
    with pytest.raises(FrameError) as error:
        hdlc.decode(raw)
    assert error.value.reason == reason


def test_decode_rejects_malformed_frames():
    good = hdlc.encode(Frame(Kind.RR, SERVER, CLIENT, recv_seq=1))
    with pytest.raises(FrameError, match="flags"):
        hdlc.decode(good[:-1])
    with pytest.raises(FrameError, match="format field says"):
        hdlc.decode(good[:3] + b"\x00" + good[3:])
    selective_reject = bytearray(good)
    selective_reject[6] = 0x0D  # SREJ: not used by 62056-46
    selective_reject[-3:-1] = hdlc.check_sequence(bytes(selective_reject[1:-3]))
    with pytest.raises(FrameError, match="control"):
        hdlc.decode(bytes(selective_reject))


def test_reader_takes_frames_in_any_chunks_with_shared_flags_and_noise():
    one = hdlc.encode(Frame(Kind.RR, CLIENT, SERVER, recv_seq=2))
    two = hdlc.encode(Frame(Kind.I, CLIENT, SERVER, info=b"\xe6\xe7\x00" + b"z" * 200))
    bad = hdlc.corrupt(hdlc.encode(Frame(Kind.I, CLIENT, SERVER, info=b"\xe6\xe7\x00q")), "fcs")
    stream = b"\x00\x11" + one + two[1:] + bad + b"\x7e\x7e"  # `two` shares `one`'s closing flag
    reader = hdlc.FrameReader()
    events = []
    for i in range(0, len(stream), 7):
        events += reader.feed(stream[i:i + 7])
    kinds = [type(e).__name__ if not isinstance(e, Frame) else e.kind.value for e in events]
    assert kinds == ["Garbage", "RR", "I", "BadFrame"]
    assert isinstance(events[0], Garbage) and events[0].raw == b"\x00\x11"
    assert isinstance(events[3], BadFrame) and events[3].error.reason == "fcs"
    assert events[2].raw == two
    assert reader.pending == 0


def test_reader_resynchronises_after_a_length_that_misses_the_flag():
    good = hdlc.encode(Frame(Kind.UA, CLIENT, SERVER))
    damaged = bytearray(hdlc.encode(Frame(Kind.I, CLIENT, SERVER, info=b"\xe6\xe7\x00abcdef")))
    del damaged[8]  # a byte lost on the line
    events = hdlc.FrameReader().feed(bytes(damaged) + good)
    assert isinstance(events[0], BadFrame) and events[-1] == hdlc.decode(good)


def test_segments():
    assert hdlc.segments(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert hdlc.segments(b"", 3) == [b""]


# --- dlms-cosem: where its HDLC codecs are sound, and the bugs that keep us off them -----

def test_dlms_cosem_frames_to_a_client_agree_with_ours():
    theirs = dc_frames.InformationFrame(dc_address.HdlcAddress(16, None, "client"),
                                        dc_address.HdlcAddress(1, 17, "server"), payload=b"\xe6\xe7\x00\xc4",
                                        send_sequence_number=1, receive_sequence_number=2)
    ours = Frame(Kind.I, CLIENT, SERVER, send_seq=1, recv_seq=2, info=b"\xe6\xe7\x00\xc4")
    assert theirs.to_bytes() == hdlc.encode(ours)
    assert dc_frames.InformationFrame.from_bytes(hdlc.encode(ours)).receive_sequence_number == 2


def test_dlms_cosem_information_frame_parse_assumes_a_client_destination():
    """Pinned bug (domain notes section 5): a frame to a 2-byte server address does not parse."""
    request = hdlc.encode(Frame(Kind.I, SERVER, CLIENT, info=b"\xe6\xe6\x00\xc0\x01"))
    with pytest.raises(ValueError):
        dc_frames.InformationFrame.from_bytes(request)
    assert hdlc.decode(request).destination == SERVER


def test_dlms_cosem_drops_physical_address_zero():
    """Pinned bug: dlms-cosem writes server address 1/0 as the 1-byte form (physical part lost)."""
    assert dc_address.HdlcAddress(1, 0, "server").to_bytes() == b"\x03"
    assert Address.server(1, 0).to_bytes() == b"\x02\x01"
