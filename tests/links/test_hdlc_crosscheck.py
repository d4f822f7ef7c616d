"""Three HDLC implementations on the same frames: the bench's codec
(smmc_bench.drivers.links.hdlc), the emulated meter's own (smmc_bench.fixtures.links.hdlc_wire) and
gurux-dlms's client framing. They must agree byte for byte and each must parse
what the others build; a byte-order slip in either of ours fails here."""
from __future__ import annotations

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, RequestTypes
from smmc_bench.drivers.links import hdlc as bench
from smmc_bench.fixtures.links import hdlc_wire as emu

CLIENT_SAP = 16
# (logical, physical, address size): the 1-, 2- and 4-byte server address forms.
SERVER_FORMS = [(1, None, 1), (1, 17, 2), (0x12, 0x1234, 4)]


def gurux_client(logical, physical, size, *, max_info=128, window=1, password=None) -> GXDLMSClient:
    address = logical if physical is None else GXDLMSClient.getServerAddress(logical, physical, size)
    auth = Authentication.LOW if password else Authentication.NONE
    client = GXDLMSClient(True, CLIENT_SAP, address, auth, password, InterfaceType.HDLC)
    client.serverAddressSize = size
    settings = client.hdlcSettings
    settings.maxInfoTX = settings.maxInfoRX = max_info
    settings.windowSizeTX = settings.windowSizeRX = window
    return client


def fields(frame) -> tuple:
    """A frame of either codec as plain values, so the two can be compared."""
    def address(a):
        return a.logical, a.physical, a.size
    return (frame.kind.value, address(frame.destination), address(frame.source), frame.poll, frame.send_seq,
            frame.recv_seq, bytes(frame.info), frame.segmented)


def bench_frame(values: tuple) -> bench.Frame:
    kind, dst, src, poll, ns, nr, info, seg = values
    return bench.Frame(bench.Kind(kind), bench.Address(*dst), bench.Address(*src), poll, ns, nr, info, seg)


def emu_frame(values: tuple) -> emu.Frame:
    kind, dst, src, poll, ns, nr, info, seg = values
    return emu.Frame(emu.Kind(kind), emu.Address(*dst), emu.Address(*src), poll, ns, nr, info, seg)


def assert_three_agree(wire: bytes) -> tuple:
    """`wire` (built by one implementation) decodes alike in ours and re-encodes to itself in each."""
    ours_bench, ours_emu = bench.decode(wire), emu.decode(wire)
    assert fields(ours_bench) == fields(ours_emu)
    values = fields(ours_bench)
    assert bench.encode(bench_frame(values)) == wire, "bench codec builds other bytes than gurux"
    assert emu.encode(emu_frame(values)) == wire, "emulator codec builds other bytes than gurux"
    return values


def client_frames(form, *, max_info=128, window=1) -> list[tuple[str, bytes]]:
    """The frames gurux sends in a session: SNRM, the AARQ I-frame(s), RR, DISC."""
    client = gurux_client(*form, max_info=max_info, window=window, password="12345678")
    frames = [("SNRM", client.snrmRequest())]
    frames += [(f"I {index}", frame) for index, frame in enumerate(client.aarqRequest())]
    frames.append(("RR", client.receiverReady(RequestTypes.FRAME)))
    frames.append(("DISC", client.disconnectRequest(True)))
    return frames


@pytest.mark.parametrize("form", SERVER_FORMS, ids=["1-byte", "2-byte", "4-byte"])
@pytest.mark.parametrize("max_info, window", [(128, 1), (32, 3)], ids=["default", "negotiated-segmented"])
def test_gurux_client_frames_agree_byte_for_byte(form, max_info, window):
    frames = client_frames(form, max_info=max_info, window=window)
    kinds = [assert_three_agree(wire)[0] for _, wire in frames]
    assert kinds[0] == "SNRM" and kinds[-2:] == ["RR", "DISC"] and set(kinds[1:-2]) == {"I"}
    snrm = bench.decode(frames[0][1])
    if (max_info, window) == (128, 1):
        assert snrm.info == b""  # gurux leaves default parameters out
    else:
        expected = (max_info, max_info, window, window)
        for parse in (bench.parse_parameters, emu.read_parameters):
            got = parse(snrm.info)
            assert (got.max_info_tx, got.max_info_rx, got.window_tx, got.window_rx) == expected
        segments = [bench.decode(wire) for name, wire in frames if name.startswith("I")]
        assert len(segments) > 1, "a 32-byte information field must split the AARQ"
        assert [s.segmented for s in segments] == [True] * (len(segments) - 1) + [False]
        assert all(len(s.info) <= max_info for s in segments)
    server = frames[0][1][3:3 + form[2]]
    assert bench.Address(form[0], form[1], form[2]).to_bytes() == server
    assert emu.Address(form[0], form[1], form[2]).to_bytes() == server


@pytest.mark.parametrize("form", SERVER_FORMS, ids=["1-byte", "2-byte", "4-byte"])
def test_meter_responses_agree_and_gurux_parses_them(form):
    """UA with parameters, an I-frame reply and an RR, as the meter sends them."""
    client_address, server_address = (CLIENT_SAP, None, 1), form
    params = (64, 32, 2, 3)  # the meter's point of view
    ua = (("UA", client_address, server_address, True, 0, 0,
           bench.encode_parameters(bench.HdlcParameters(*params)), False))
    assert bench.encode_parameters(bench.HdlcParameters(*params)) == emu.parameters_field(emu.PortParameters(*params))
    reply = ("I", client_address, server_address, True, 0, 1, bench.LLC_RESPONSE + b"\x61\x03\xa1\x01\x00", False)
    rr = ("RR", client_address, server_address, True, 0, 1, b"", False)
    for values in (ua, reply, rr):
        wire = bench.encode(bench_frame(values))
        assert emu.encode(emu_frame(values)) == wire
        assert fields(emu.decode(wire)) == fields(bench.decode(wire)) == values
    client = gurux_client(*form, max_info=128, window=1)
    client.snrmRequest()
    data = GXReplyData()
    assert client.getData(GXByteBuffer(emu.encode(emu_frame(ua))), data)
    client.parseUAResponse(data.data)
    settings = client.hdlcSettings
    # gurux stores them from its own side: what the meter receives is what gurux may send.
    assert (settings.maxInfoTX, settings.maxInfoRX, settings.windowSizeTX, settings.windowSizeRX) == (32, 64, 3, 2)


@pytest.mark.parametrize("values", [
    ("I", (1, 17, 2), (CLIENT_SAP, None, 1), True, 5, 2, b"x" * 40, True),
    ("I", (0x12, 0x1234, 4), (CLIENT_SAP, None, 1), False, 7, 0, b"y" * 300, False),
    ("SNRM", (1, None, 1), (CLIENT_SAP, None, 1), True, 0, 0, b"", False),
    ("DM", (CLIENT_SAP, None, 1), (1, 17, 2), True, 0, 0, b"", False),
    ("FRMR", (CLIENT_SAP, None, 1), (1, 17, 2), True, 0, 0, b"\x10\x00\x04", False),
])
def test_each_of_ours_parses_the_other(values):
    from_bench = bench.encode(bench_frame(values))
    from_emu = emu.encode(emu_frame(values))
    assert from_bench == from_emu
    assert fields(emu.decode(from_bench)) == values
    assert fields(bench.decode(from_emu)) == values


def test_check_sequences_are_low_byte_first_in_both():
    """CRC-16/X.25 of "123456789" is 0x906E; on the wire 6E 90."""
    assert emu.fcs16(b"123456789") == bench.crc16(b"123456789") == 0x906E
    assert emu.check_sequence(b"123456789") == bench.check_sequence(b"123456789") == b"\x6e\x90"


@pytest.mark.parametrize("part", ["fcs", "hcs"])
def test_both_reject_a_damaged_check_sequence(part):
    wire = bench.encode(bench_frame(("I", (1, 17, 2), (CLIENT_SAP, None, 1), True, 0, 0, b"abc", False)))
    damaged = bench.corrupt(wire, part)
    with pytest.raises(bench.FrameError, match=part):
        bench.decode(damaged)
    with pytest.raises(emu.WireError, match=part):
        emu.decode(damaged)


def test_bench_names_check_sequences_sent_high_byte_first():
    """A meter that sends HCS/FCS in the wrong byte order is named as such, not taken for line noise."""
    wire = bench.encode(bench_frame(("I", (CLIENT_SAP, None, 1), (1, 17, 2), True, 0, 1, b"abcdef", False)))
    swapped = bytearray(wire)
    swapped[-3], swapped[-2] = swapped[-2], swapped[-3]
    swapped[7], swapped[8] = swapped[8], swapped[7]  # the HCS after 7E A0xx DA(1) SA(2) C
    assert bench.check_bytes_swapped(bytes(swapped))
    assert not bench.check_bytes_swapped(wire)
    assert not bench.check_bytes_swapped(bench.corrupt(wire, "fcs"))
