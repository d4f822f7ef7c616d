"""Each security mutant (fixtures/meter/mutants/security.py) makes one decision of the emulated
meter's HLS-GMAC differently from the conforming HlsGmacServer; probed directly here, and on the
wire by tests/conformance/test_security_hls.py (scripts/bench validate --bench examples/hls.toml)."""
from __future__ import annotations

import pytest
from dlms_cosem import security as dc_security
from dlms_cosem.exceptions import DecryptionError
from smmc_bench.fixtures.meter import MUTANTS
from smmc_bench.fixtures.meter.hls import HlsAssociation, HlsGmacServer, SecurityRefusal
from smmc_bench.fixtures.meter.mutants import security

AK, EK = bytes(range(16)), bytes(range(16, 32))
TITLE = b"CLIENT01"
CONTROL = dc_security.SecurityControlField(0, authenticated=True, encrypted=True)
INITIATE = bytes.fromhex("01000000065f1f0400001e1d0400")
PROBED_MUTANTS = {m.name for m in security.MUTANTS}


def server(mutant: str | None, events: list[int] | None = None) -> HlsGmacServer:
    kind = MUTANTS[mutant].replacements[HlsGmacServer] if mutant else HlsGmacServer
    return kind(AK, EK, (events if events is not None else []).append)


def glo_get(counter: int, plain: bytes = bytes.fromhex("c001c100080000010000ff0200")) -> bytes:
    content = b"\x30" + counter.to_bytes(4, "big") + dc_security.encrypt(CONTROL, TITLE, counter, EK, plain, AK)
    return bytes((0xC8, len(content))) + content


def associated(meter: HlsGmacServer) -> HlsAssociation:
    ciphered = dc_security.encrypt(CONTROL, TITLE, 1, EK, INITIATE, AK)
    association, _ = meter.open(TITLE, b"c" * 16, 0x30, 1, ciphered)
    return association


def test_every_security_mutant_is_probed():
    assert {m.name for m in security.MUTANTS} == PROBED_MUTANTS == {n for n in MUTANTS if n.startswith("sec-")}


@pytest.mark.parametrize("name", ["sec-accepts-replayed-frame", "sec-accepts-repeated-counter"])
def test_replayed_request_served(name):
    for mutant, served in ((None, False), (name, True)):
        meter = server(mutant)
        association = associated(meter)
        assert meter.unprotect(association, glo_get(2))[0] == 0xC0
        try:
            meter.unprotect(association, glo_get(2))
            assert served
        except SecurityRefusal as refusal:
            assert not served and refusal.event == 50


def test_lower_counter_served_only_by_the_replay_mutant():
    meter = server("sec-accepts-replayed-frame")
    association = associated(meter)
    meter.unprotect(association, glo_get(5))
    assert meter.unprotect(association, glo_get(3))[0] == 0xC0
    with pytest.raises(SecurityRefusal):
        repeated = server("sec-accepts-repeated-counter")
        association = associated(repeated)
        repeated.unprotect(association, glo_get(5))
        repeated.unprotect(association, glo_get(3))


def test_wrong_key_accepted():
    wrong = dc_security.encrypt(CONTROL, TITLE, 1, EK, INITIATE, bytes(16))
    with pytest.raises(SecurityRefusal):
        server(None).open(TITLE, b"c" * 16, 0x30, 1, wrong)
    _, initiate = server("sec-accepts-wrong-key").open(TITLE, b"c" * 16, 0x30, 1, wrong)
    assert initiate[0] == 0x01


def test_any_f_stoc_accepted():
    presented = b"\x10" + bytes(16)
    assert not server(None).f_stoc_valid(associated(server(None)), presented)
    meter = server("sec-accepts-any-f-stoc")
    assert meter.f_stoc_valid(associated(meter), presented)


def test_unciphered_request_accepted():
    assert not server(None).accepts_plain(associated(server(None)))
    meter = server("sec-accepts-unciphered-request")
    assert meter.accepts_plain(associated(meter))


def test_wrong_tag_accepted():
    request = glo_get(2)
    tampered = request[:-1] + bytes((request[-1] ^ 1,))
    with pytest.raises(SecurityRefusal):
        conforming = server(None)
        conforming.unprotect(associated(conforming), tampered)
    meter = server("sec-accepts-wrong-tag")
    assert meter.unprotect(associated(meter), tampered)[0] == 0xC0
    with pytest.raises(DecryptionError):
        HlsGmacServer(AK, EK, lambda e: None).decrypt(TITLE, 2, tampered[7:])


def test_counter_not_increasing():
    conforming, meter = server(None), server("sec-counter-not-increasing")
    assert conforming.next_counter() < conforming.next_counter()
    assert meter.next_counter() == meter.next_counter()


@pytest.mark.parametrize("name, expected", [("sec-event-not-logged", []), ("sec-logs-wrong-event", [49])])
def test_replay_event(name, expected):
    for mutant, logged in ((None, [50]), (name, expected)):
        events: list[int] = []
        meter = server(mutant, events)
        association = associated(meter)
        meter.unprotect(association, glo_get(2))
        with pytest.raises(SecurityRefusal):
            meter.unprotect(association, glo_get(2))
        assert events == logged


# -- global key transfer (IC 64 method 2) ------------------------------------------------------

KEK = bytes(range(32, 48))


def keyed_server(mutant: str | None, events: list[int] | None = None) -> HlsGmacServer:
    kind = MUTANTS[mutant].replacements[HlsGmacServer] if mutant else HlsGmacServer
    return kind(AK, EK, (events if events is not None else []).append, master_key=KEK)


def transfer(meter: HlsGmacServer, new_ak: bytes, new_ek: bytes) -> None:
    """A global key transfer as the meter's SecuritySetup passes it, then the reply going out."""
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    association = associated(meter)
    meter.global_key_transfer([(0, aes_key_wrap(KEK, new_ek)), (2, aes_key_wrap(KEK, new_ak))])
    reply = meter.protect(association, bytes.fromhex("c701c10000"))  # ACTION-Response success
    assert dc_security.decrypt(CONTROL, meter.system_title, int.from_bytes(reply[3:7], "big"), EK, reply[7:], AK)


def opens_with(meter: HlsGmacServer, ak: bytes, ek: bytes, counter: int) -> bool:
    ciphered = dc_security.encrypt(CONTROL, TITLE, counter, ek, INITIATE, ak)
    try:
        meter.open(TITLE, b"c" * 16, 0x30, counter, ciphered)
        return True
    except SecurityRefusal:
        return False


def test_emulator_key_wrap_is_rfc_3394():
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    from smmc_bench.fixtures.meter.hls import unwrap_key, wrap_key

    kek, key = bytes.fromhex("000102030405060708090A0B0C0D0E0F"), bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert wrap_key(kek, key) == bytes.fromhex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")  # RFC 3394 4.1
    assert unwrap_key(KEK, aes_key_wrap(KEK, AK)) == AK
    with pytest.raises(ValueError):
        unwrap_key(bytes(16), aes_key_wrap(KEK, AK))


def test_key_transfer_takes_effect_after_the_reply_and_is_logged():
    events: list[int] = []
    meter = keyed_server(None, events)
    new_ak, new_ek = bytes(range(100, 116)), bytes(range(200, 216))
    transfer(meter, new_ak, new_ek)
    assert events == [48]
    assert not opens_with(meter, AK, EK, 10) and opens_with(meter, new_ak, new_ek, 11)


def test_key_transfer_with_a_wrong_master_key_changes_nothing():
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    from smmc_bench.fixtures.meter.hls import KeyTransferRefused

    meter = keyed_server(None)
    with pytest.raises(KeyTransferRefused):
        meter.global_key_transfer([(0, aes_key_wrap(bytes(16), bytes(range(200, 216))))])
    assert opens_with(meter, AK, EK, 10)


def test_key_change_not_applied():
    meter = keyed_server("sec-key-change-not-applied")
    transfer(meter, bytes(range(100, 116)), bytes(range(200, 216)))
    assert opens_with(meter, AK, EK, 10) and not opens_with(meter, bytes(range(100, 116)), bytes(range(200, 216)), 11)


def test_old_key_still_accepted():
    meter = keyed_server("sec-old-key-still-accepted")
    new_ak, new_ek = bytes(range(100, 116)), bytes(range(200, 216))
    transfer(meter, new_ak, new_ek)
    assert opens_with(meter, AK, EK, 10) and opens_with(meter, new_ak, new_ek, 11)


def test_key_change_not_logged():
    events: list[int] = []
    meter = keyed_server("sec-key-change-not-logged", events)
    transfer(meter, bytes(range(100, 116)), bytes(range(200, 216)))
    assert events == [] and opens_with(meter, bytes(range(100, 116)), bytes(range(200, 216)), 10)


def test_public_may_transfer_keys():
    from smmc_bench.fixtures.meter.association import ReadOnlyAccess
    from smmc_bench.fixtures.meter.supply_objects import SecuritySetup

    setup = SecuritySetup("0.0.43.0.0.255", b"EMU\x00\x00\x00\x00\x01")
    mutant = MUTANTS["sec-public-may-transfer-keys"].replacements[ReadOnlyAccess]
    assert not ReadOnlyAccess(frozenset()).method_allowed(setup, 2)
    assert mutant(frozenset()).method_allowed(setup, 2)
