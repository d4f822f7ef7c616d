"""HLS-GMAC in the bench's session: association and ciphered services against the emulated
meter (its own implementation on dlms-cosem), and the bench's own checks of every reply:
GCM tag, the meter's invocation counter, ciphering policy, the meter's f(CtoS)."""
from __future__ import annotations

import pytest
from dlms_cosem import security as dc_security
from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings, TcpWrapperTransport
from smmc_bench.drivers.dlms.cosem_types import DataType, Typed
from smmc_bench.drivers.dlms.errors import (
    AssociationRejected,
    MalformedReply,
    MeterNotAuthenticated,
    ReplayedReply,
    TagMismatch,
    UncipheredReply,
)
from smmc_bench.drivers.dlms.security import CipheringContext, HlsKeys, gmac, parse_key
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter

AK, EK = bytes.fromhex("000102030405060708090a0b0c0d0e0f"), bytes.fromhex("101112131415161718191a1b1c1d1e1f")
METER_TITLE = b"METER001"
CONTROL = dc_security.SecurityControlField(0, authenticated=True, encrypted=True)
GET_RESPONSE = bytes.fromhex("c401c1000600000001")  # GET-Response-Normal, double-long-unsigned 1


def keys(**kw) -> HlsKeys:
    return HlsKeys(Secret(AK), Secret(EK), **kw)


@pytest.fixture
def meter():
    with EmulatedMeter(clock=VirtualClock(), management_security="hls-gmac", hls_keys=(AK, EK)) as emulated:
        yield emulated


def session_to(meter, hls_keys: HlsKeys) -> DlmsSession:
    host, port = meter.address
    return DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2.0),
                       SessionSettings(1, 1, Authentication.HIGH_GMAC, keys=hls_keys, timeout=3.0))


@pytest.mark.parametrize("general", [False, True], ids=["glo", "general-glo"])
def test_ciphered_get_set_action_against_the_emulated_meter(meter, general):
    with session_to(meter, keys(general=general)) as session:
        assert session.last_aare.application_context == 3 and session.last_aare.ciphered_initiate
        assert session.get(3, "1.0.1.8.0.255", 2) == 0
        assert len(session.object_list()) > 10  # block transfer, every block ciphered
        session.set(8, "0.0.1.0.0.255", 3, Typed(DataType.LONG, 60))
        assert session.get(8, "0.0.1.0.0.255", 3) == 60
        counter = session.ciphering.last_server_counter
        session.get(3, "1.0.1.8.0.255", 2)
        assert session.ciphering.last_server_counter > counter


def test_the_next_association_continues_the_client_counter(meter):
    for _ in range(3):  # the meter's replay check spans associations: each AARQ counter is fresh
        with session_to(meter, keys()) as session:
            session.get(3, "1.0.1.8.0.255", 2)


@pytest.mark.parametrize("wrong", ["authentication", "encryption"])
def test_wrong_key_is_refused_by_the_meter(meter, wrong):
    bad = bytes(16)
    hls_keys = HlsKeys(Secret(bad if wrong == "authentication" else AK), Secret(bad if wrong == "encryption" else EK))
    with pytest.raises(AssociationRejected):
        session_to(meter, hls_keys).connect()
    assert [code for _, code in meter.model.standard_log.entries][-1:] == [46]


# --- the bench's own checks, on replies made with dlms-cosem ---------------------------------

def context(memory=None) -> CipheringContext:
    ctx = CipheringContext(keys(), memory)
    ctx.server_title = METER_TITLE
    return ctx


def glo_reply(counter: int, plain: bytes = GET_RESPONSE, key: bytes = EK) -> bytes:
    content = b"\x30" + counter.to_bytes(4, "big") + dc_security.encrypt(CONTROL, METER_TITLE, counter, key, plain, AK)
    return bytes((0xCC, len(content))) + content


def test_a_verified_reply_is_deciphered():
    assert context().unprotect(glo_reply(7), "GET") == GET_RESPONSE


@pytest.mark.parametrize("where", [-1, -13, 8])
def test_a_tampered_reply_is_refused(where):
    reply = bytearray(glo_reply(7))
    reply[where] ^= 0x01
    with pytest.raises(TagMismatch):
        context().unprotect(bytes(reply), "GET")


def test_a_reply_with_another_key_is_refused():
    with pytest.raises(TagMismatch):
        context().unprotect(glo_reply(7, key=bytes(16)), "GET")


def test_a_counter_that_does_not_increase_is_refused():
    ctx = context()
    ctx.unprotect(glo_reply(7), "GET")
    for counter in (7, 6):
        with pytest.raises(ReplayedReply):
            ctx.unprotect(glo_reply(counter), "GET")
    assert ctx.unprotect(glo_reply(8), "GET") == GET_RESPONSE


def test_the_meters_counter_must_keep_rising_across_associations_with_the_same_keys():
    from smmc_bench.drivers.dlms.security import MeterCounterMemory

    memory = MeterCounterMemory()
    first = context(memory)
    first.unprotect(glo_reply(7), "GET")
    first.unprotect(glo_reply(9), "GET")
    for counter in (9, 1):  # the next association's first counter: not above the last one seen
        with pytest.raises(ReplayedReply, match="earlier association"):
            context(memory).unprotect(glo_reply(counter), "GET")
    assert context(memory).unprotect(glo_reply(10), "GET") == GET_RESPONSE
    other_keys = context(memory)
    other_keys.keys = HlsKeys(Secret(AK), Secret(bytes(16)))  # a counter per key: new keys may start low
    assert other_keys.unprotect(glo_reply(1, key=bytes(16)), "GET") == GET_RESPONSE
    assert context().unprotect(glo_reply(1), "GET") == GET_RESPONSE  # no shared memory: nothing remembered


def test_the_emulated_meters_counter_rises_across_a_sessions_associations(meter):
    session = session_to(meter, keys())
    firsts = []
    for _ in range(3):  # each reconnect is checked against the counters of the earlier ones
        session.connect()
        session.get(8, "0.0.1.0.0.255", 2)
        firsts.append(session.ciphering.first_server_counter)
        session.release()
        session.close()
    assert firsts == sorted(set(firsts)) and len(firsts) == 3


def test_a_reply_in_clear_is_refused_but_an_exception_response_passes():
    with pytest.raises(UncipheredReply):
        context().unprotect(GET_RESPONSE, "GET")
    assert context().unprotect(bytes.fromhex("d80102"), "GET") == bytes.fromhex("d80102")


def test_a_reply_with_another_policy_is_refused():
    content = b"\x10" + (9).to_bytes(4, "big") + GET_RESPONSE + bytes(12)
    with pytest.raises(UncipheredReply):
        context().unprotect(bytes((0xCC, len(content))) + content, "GET")


def test_a_general_glo_reply_from_another_system_title_is_refused():
    content = glo_reply(7)[2:]
    with pytest.raises(TagMismatch):
        context().unprotect(bytes((0xDB, 8)) + b"OTHER001" + bytes((len(content),)) + content, "GET")


def test_pass_4_checks_the_meters_f_ctos():
    ctx = context()
    good = gmac(EK, AK, METER_TITLE, 5, ctx.client_challenge)
    independent = b"\x10" + (5).to_bytes(4, "big") + dc_security.gmac(
        dc_security.SecurityControlField(0, authenticated=True), METER_TITLE, 5, EK, AK, ctx.client_challenge)
    assert good == independent
    ctx.check_f_ctos(good)
    with pytest.raises(MeterNotAuthenticated):
        context().check_f_ctos(good[:-1] + bytes((good[-1] ^ 1,)))


def test_keys_never_show_and_must_be_16_bytes():
    hls_keys = keys()
    assert AK.hex() not in repr(hls_keys) and EK.hex() not in repr(hls_keys) and "Secret" not in repr(hls_keys)
    with pytest.raises(ValueError):
        HlsKeys(Secret(b"short"), Secret(EK))
    assert parse_key(b"00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n", "key") == AK
    for bad in (b"zz" * 16, b"00" * 15):
        with pytest.raises(ValueError) as raised:
            parse_key(bad, "the key file")
        assert bad.decode() not in str(raised.value)


def test_malformed_ciphered_length_is_malformed():
    reply = glo_reply(7)
    with pytest.raises(MalformedReply):
        context().unprotect(reply[:1] + bytes((reply[1] + 1,)) + reply[2:], "GET")
