"""Every decoder the bench applies to bytes from a meter or an instrument, with the inputs
hypothesis feeds it: random bytes, and valid messages mutated (truncated, extended, bytes
changed), so the fuzzing reaches past the first check of each decoder.

A decoder may reject its input only with the bench's own errors (smmc_bench.drivers.dlms.errors for what
meters send, smmc_bench.drivers.instruments.errors for instruments); anything else escaping is a defect.
Used by tests/fuzz (a short run) and benchmarks/fuzz_decoders.py (100,000 inputs each).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import strategies as st
from smmc_bench.drivers.dlms import apdu, names, wrapper
from smmc_bench.drivers.dlms.cosem_types import CosemDateTime, decode_exact
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.headend.notification import (
    GeneralBlockAssembler,
    parse_data_notification,
    parse_general_block,
)
from smmc_bench.drivers.instruments.errors import InstrumentError
from smmc_bench.drivers.instruments.scpi import parse_error_entry, parse_number
from smmc_bench.drivers.links import hdlc
from smmc_bench.drivers.links.mode_e import parse_identification
from smmc_bench.fixtures.meter import apdu as meter_apdu
from smmc_bench.fixtures.meter.apdu import AcseServiceUser, AssociationResult

BENCH_ERRORS: tuple[type[BaseException], ...] = (DlmsError, InstrumentError)


@dataclass(frozen=True)
class Decoder:
    name: str
    decode: Callable[[Any], Any]
    inputs: st.SearchStrategy


def mutated(*examples: bytes, max_size: int = 96) -> st.SearchStrategy[bytes]:
    """Valid examples, then cut, extended or with bytes changed; mixed with plain random bytes."""
    return st.one_of(st.binary(max_size=max_size), _with_edits(st.sampled_from(examples)))


def _axdr() -> st.SearchStrategy[bytes]:
    """Well-formed A-XDR Data, nested, of every tag the codec knows (then mutated by the caller)."""
    scalar = st.one_of(
        st.just(b"\x00"),
        st.integers(0, 1).map(lambda v: bytes((0x03, v))),
        st.binary(min_size=4, max_size=4).map(lambda b: b"\x05" + b),
        st.binary(min_size=4, max_size=4).map(lambda b: b"\x06" + b),
        st.binary(max_size=20).map(lambda b: bytes((0x09, len(b))) + b),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
        .map(lambda t: bytes((0x0A, len(t))) + t.encode()),
        st.binary(min_size=1, max_size=1).map(lambda b: b"\x11" + b),
        st.binary(min_size=2, max_size=2).map(lambda b: b"\x12" + b),
        st.binary(min_size=1, max_size=1).map(lambda b: b"\x16" + b),
        st.binary(min_size=8, max_size=8).map(lambda b: b"\x18" + b),
        st.binary(min_size=12, max_size=12).map(lambda b: b"\x19" + b),
        st.binary(min_size=12, max_size=12).map(lambda b: b"\x09\x0c" + b),
        st.integers(0, 16).flatmap(lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8)
                                   .map(lambda b, n=n: bytes((0x04, n)) + b)),
    )
    return st.recursive(scalar, lambda inner: st.lists(inner, max_size=4).flatmap(
        lambda items: st.sampled_from((0x01, 0x02)).map(lambda tag: bytes((tag, len(items))) + b"".join(items))),
        max_leaves=12)


def _with_edits(strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    ops = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255)), max_size=3)

    def edit(data: bytes, changes) -> bytes:
        out = bytearray(data)
        for op, where, value in changes:
            where %= len(out) + 1
            if op == 0 and out:
                out[where % len(out)] = value
            elif op == 1:
                out.insert(where, value)
            elif op == 2 and out:
                del out[where % len(out)]
            elif op == 3:
                del out[where:]
        return bytes(out)
    return st.one_of(strategy, st.builds(edit, strategy, ops))


# --- valid seeds --------------------------------------------------------------------------

INITIATE = bytes.fromhex("0800065f1f040000101d04000007")
# AAREs built by the emulated meter's own encoder (the other side of the wire).
AARE = meter_apdu.aare(AssociationResult.ACCEPTED, AcseServiceUser.NULL, INITIATE)
AARE_FULL = meter_apdu.aare(AssociationResult.ACCEPTED, AcseServiceUser.NULL, INITIATE, mechanism_id=1, full=True,
                            system_title=b"EMU\x00\x00\x00\x00\x01")
AARE_REJECTED = meter_apdu.aare(AssociationResult.REJECTED_PERMANENT, AcseServiceUser.AUTHENTICATION_FAILURE,
                                bytes.fromhex("0e010601"))
RLRE = bytes.fromhex("6303800100")
GET_NORMAL = bytes.fromhex("c401c100090c07ea0b1a04020e151300f00000")[:-1]
GET_BLOCK = bytes.fromhex("c402c10000000001000401020304")
GET_ERROR = bytes.fromhex("c401c10104")
SET_OK = bytes.fromhex("c501c100")
ACTION_DATA = bytes.fromhex("c701c100010011 05".replace(" ", ""))
EXCEPTION = bytes.fromhex("d80102")
SERVICE_ERROR = bytes.fromhex("0e010601")
STAMP = bytes.fromhex("07e9030a010c000000" + "00f000")
NOTIFICATION = b"\x0f\x00\x00\x00\x01\x0c" + STAMP + bytes.fromhex("02020904454d55310600000004")
GBT_BLOCK = b"\xe0\xc0\x00\x01\x00\x00" + bytes((len(NOTIFICATION),)) + NOTIFICATION
HDLC_PARAMETERS = hdlc.encode_parameters(hdlc.HdlcParameters.symmetric(128, 1))
_CLIENT, _SERVER = hdlc.Address.client(16), hdlc.Address.server(1, 17, 2)
HDLC_UA = hdlc.encode(hdlc.Frame(hdlc.Kind.UA, _CLIENT, _SERVER, info=HDLC_PARAMETERS))
HDLC_I = hdlc.encode(hdlc.Frame(hdlc.Kind.I, _CLIENT, _SERVER, send_seq=1, recv_seq=2,
                                info=b"\xe6\xe7\x00" + bytes.fromhex("c401c1000906454d5531303030")))
WRAPPER_HEADER = bytes.fromhex("0001000100010012")
IDENTIFICATION = b"/EMU5\\2EMU0000001\r\n"


def _datetime(raw: bytes) -> Any:
    value = CosemDateTime.from_bytes(raw)
    try:
        return value.to_datetime()
    except DlmsError:
        return value


def _oid(raw: bytes) -> Any:
    return names.decode_oid(raw)


def _name(value: Any) -> Any:
    return names.mechanism_id(value), names.context_id(value)


def _name_either(value: Any) -> Any:
    try:
        return names.mechanism_id(value)
    except DlmsError:
        return names.context_id(value)


def _hdlc_stream(raw: bytes) -> Any:
    reader = hdlc.FrameReader()
    half = len(raw) // 2
    return reader.feed(raw[:half]) + reader.feed(raw[half:]), reader.pending


def _push_blocks(raw: bytes) -> Any:
    """A stream of general-block-transfer blocks cut at 0xE0 tags, assembled, then the push parsed."""
    assembler = GeneralBlockAssembler(max_size=4096)
    whole = None
    for part in [b"\xe0" + chunk for chunk in raw.split(b"\xe0")[1:]] or [raw]:
        whole = assembler.add(parse_general_block(part))
    return parse_data_notification(whole) if whole else None


def _wrapper_header(raw: bytes) -> Any:
    return wrapper.check_header(raw[:8].ljust(8, b"\0"), expect_source=1, expect_destination=1)


_text = st.one_of(st.text(max_size=40), st.sampled_from(["+2.2000E+02", "220.0V", "-113,\"Undefined header\"",
                                                         "0", "1e999", "  .5", "nan"]))

DECODERS: list[Decoder] = [
    Decoder("HDLC frame", hdlc.decode, mutated(HDLC_UA, HDLC_I)),
    Decoder("HDLC stream (frame reader)", _hdlc_stream, mutated(HDLC_UA + HDLC_I, b"\x7e\x7e" + HDLC_I)),
    Decoder("HDLC parameters (SNRM/UA)", hdlc.parse_parameters, mutated(HDLC_PARAMETERS)),
    Decoder("TCP wrapper header", _wrapper_header, mutated(WRAPPER_HEADER, max_size=12)),
    Decoder("APDU service reply", apdu.parse_service_reply,
            mutated(GET_NORMAL, GET_BLOCK, GET_ERROR, SET_OK, ACTION_DATA, EXCEPTION, SERVICE_ERROR)),
    Decoder("APDU AARE", apdu.parse_aare, mutated(AARE, AARE_FULL, AARE_REJECTED)),
    Decoder("APDU RLRE", apdu.parse_rlre, mutated(RLRE, b"\x63\x00")),
    Decoder("xDLMS InitiateResponse", apdu.parse_initiate_response, mutated(INITIATE)),
    Decoder("A-XDR data", decode_exact, st.one_of(st.binary(max_size=64), _with_edits(_axdr()))),
    Decoder("COSEM date-time", _datetime, mutated(STAMP, bytes(12), b"\xff" * 12, max_size=14)),
    Decoder("OID (BER)", _oid, mutated(bytes.fromhex("60857405080201"), max_size=16)),
    Decoder("IC 15 name (either form)", _name_either,
            st.one_of(st.binary(max_size=12), st.lists(st.integers(-2, 1 << 17), max_size=9),
                      st.lists(st.one_of(st.integers(), st.booleans(), st.none(), st.binary(max_size=3)),
                               max_size=8))),
    Decoder("mode E identification", parse_identification, mutated(IDENTIFICATION, max_size=40)),
    Decoder("push notification", parse_data_notification, mutated(NOTIFICATION)),
    Decoder("push in general block transfer", _push_blocks, mutated(GBT_BLOCK, GBT_BLOCK[:12] + GBT_BLOCK[12:])),
    Decoder("SCPI number", lambda text: parse_number(text, what="fuzz"), _text),
    Decoder("SCPI error entry", parse_error_entry, _text),
]


def escapes(decoder: Decoder, data: Any) -> BaseException | None:
    """None when the decoder accepts `data` or rejects it with a bench error; else what escaped."""
    try:
        decoder.decode(data)
    except BENCH_ERRORS:
        return None
    except Exception as exc:  # anything else is what the fuzzing is looking for
        return exc
    return None
