"""Review E's security mutants (fixtures/meter/mutants/review_e.py): each probed directly, so a
mutant the conformance suite lets survive is known to carry its defect (not a no-op)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from dlms_cosem import security as dc_security
from smmc_bench.fixtures.meter import MUTANTS
from smmc_bench.fixtures.meter.association import AccessMode, ReadOnlyAccess
from smmc_bench.fixtures.meter.hls import HlsAssociation, HlsGmacServer, KeyTransferRefused, SecurityRefusal
from smmc_bench.fixtures.meter.mutants import review_e

AK, EK, KEK = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
TITLE, OTHER_TITLE = b"CLIENT01", b"CLIENT02"
CONTROL = dc_security.SecurityControlField(0, authenticated=True, encrypted=True)
GMAC_CONTROL = dc_security.SecurityControlField(0, authenticated=True)
INITIATE = bytes.fromhex("01000000065f1f0400001e1d0400")
GET = bytes.fromhex("c001c100080000010000ff0200")
NEW_AK, NEW_EK = bytes(range(100, 116)), bytes(range(200, 216))


def server(mutant: str | None, events: list[int] | None = None) -> HlsGmacServer:
    kind = MUTANTS[mutant].replacements[HlsGmacServer] if mutant else HlsGmacServer
    return kind(AK, EK, (events if events is not None else []).append, master_key=KEK)


def glo_get(counter: int, title: bytes = TITLE, ak: bytes = AK) -> bytes:
    content = b"\x30" + counter.to_bytes(4, "big") + dc_security.encrypt(CONTROL, title, counter, EK, GET, ak)
    return bytes((0xC8, len(content))) + content


def general_glo_get(counter: int, title: bytes) -> bytes:
    content = b"\x30" + counter.to_bytes(4, "big") + dc_security.encrypt(CONTROL, title, counter, EK, GET, AK)
    return bytes((0xDB, 8)) + title + bytes((len(content),)) + content


def open_with(meter: HlsGmacServer, counter: int, ak: bytes = AK, ek: bytes = EK,
              challenge: bytes = b"c" * 16) -> HlsAssociation:
    return meter.open(TITLE, challenge, 0x30, counter, dc_security.encrypt(CONTROL, TITLE, counter, ek, INITIATE, ak))


def served(meter: HlsGmacServer, association: HlsAssociation, request: bytes) -> bool:
    try:
        return meter.unprotect(association, request) == GET
    except SecurityRefusal:
        return False


def opens(meter: HlsGmacServer, counter: int, ak: bytes, ek: bytes) -> bool:
    try:
        open_with(meter, counter, ak, ek)
        return True
    except SecurityRefusal:
        return False


def test_every_review_e_mutant_is_probed_and_counts_as_security():
    names = {m.name for m in review_e.MUTANTS}
    assert names == {n for n in MUTANTS if n.startswith("reve-")} and len(names) >= 10
    assert all(MUTANTS[n].management_security == "hls-gmac" for n in names)
    assert len(PROBED) == len(set(PROBED)) and set(PROBED) == names


def test_counter_checked_once_per_association():
    for mutant, replay_served in ((None, False), ("reve-counter-checked-once", True)):
        meter = server(mutant)
        association, _ = open_with(meter, 1)
        assert served(meter, association, glo_get(5))
        assert not served(meter, association, glo_get(1)) or replay_served  # checked: 2nd request and later
        assert served(meter, association, glo_get(4)) == replay_served
    # the first request of an association is still checked
    meter = server("reve-counter-checked-once")
    association, _ = open_with(meter, 5)
    assert not served(meter, association, glo_get(3))


def test_replay_after_reconnect():
    for mutant, replayed in ((None, False), ("reve-replay-after-reconnect", True)):
        meter = server(mutant)
        association, _ = open_with(meter, 1)
        assert served(meter, association, glo_get(5))
        association, _ = open_with(meter, 6)  # a reconnect (the client's counter goes on)
        assert served(meter, association, glo_get(5)) == replayed  # the previous association's request
        assert opens(meter, 1, AK, EK) == replayed  # a replayed AARQ


def test_tag_compared_on_eight_bytes():
    request = glo_get(2)
    last_tag_byte = request[:-1] + bytes((request[-1] ^ 1,))
    first_tag_byte = request[:-12] + bytes((request[-12] ^ 1,)) + request[-11:]
    for mutant, accepted in ((None, False), ("reve-tag-8-bytes", True)):
        meter = server(mutant)
        association, _ = open_with(meter, 1)
        assert served(meter, association, last_tag_byte) == accepted
        assert not served(meter, association, first_tag_byte)


def test_aarq_with_a_wrong_authentication_key():
    for mutant, accepted in ((None, False), ("reve-aarq-wrong-ak", True)):
        meter = server(mutant)
        assert opens(meter, 1, bytes(16), EK) == accepted
        assert not opens(meter, 2, AK, bytes(16))  # a wrong encryption key stays refused
    # ... and only in the AARQ: a request ciphered with a wrong authentication key is refused
    meter = server("reve-aarq-wrong-ak")
    association, _ = open_with(meter, 1)
    assert not served(meter, association, glo_get(2, ak=bytes(16)))


def test_f_stoc_over_the_client_challenge():
    """A recorded f(StoC) (for StoC = X) replays in a new association whose CtoS is X."""
    for mutant, accepted in ((None, False), ("reve-f-stoc-over-ctos", True)):
        meter = server(mutant)
        first, _ = open_with(meter, 1)
        recorded = b"\x10" + (2).to_bytes(4, "big") + dc_security.gmac(GMAC_CONTROL, TITLE, 2, EK, AK,
                                                                       first.server_challenge)
        assert meter.f_stoc_valid(first, recorded)
        attacker, _ = open_with(meter, 3, challenge=first.server_challenge)
        assert meter.f_stoc_valid(attacker, recorded) == accepted
        assert not meter.f_stoc_valid(attacker, recorded[:-1] + bytes((recorded[-1] ^ 1,)))


def _transfer(meter: HlsGmacServer, key_data) -> None:
    association, _ = open_with(meter, 1)
    try:
        meter.global_key_transfer(key_data)
    finally:
        meter.protect(association, bytes.fromhex("c701c10000"))  # the reply goes out (old keys)


def test_transfer_stores_only_the_first_key():
    key_data = [(0, aes_key_wrap(KEK, NEW_EK)), (2, aes_key_wrap(KEK, NEW_AK))]
    conforming = server(None)
    _transfer(conforming, key_data)
    assert opens(conforming, 10, NEW_AK, NEW_EK)
    meter = server("reve-transfer-first-key-only")
    _transfer(meter, key_data)
    assert not opens(meter, 10, NEW_AK, NEW_EK) and not opens(meter, 11, AK, EK)
    assert opens(meter, 12, AK, NEW_EK)  # the new encryption key with the old authentication key


def test_failed_transfer_changes_a_key():
    key_data = [(0, aes_key_wrap(KEK, NEW_EK)), (2, aes_key_wrap(bytes(16), NEW_AK))]  # 2nd: wrong KEK
    for mutant, changed in ((None, False), ("reve-failed-transfer-changes-key", True)):
        meter = server(mutant)
        with pytest.raises(KeyTransferRefused):
            _transfer(meter, key_data)
        assert opens(meter, 10, AK, EK) == (not changed)
        assert opens(meter, 11, AK, NEW_EK) == changed


def test_public_may_redirect_push():
    from smmc_bench.fixtures.meter.cosem_objects import CosemObject

    class Push(CosemObject):
        class_id, version = 40, 0

    push = Push("0.4.25.9.0.255")
    mutant = MUTANTS["reve-public-may-redirect-push"].replacements[ReadOnlyAccess]
    readable = frozenset({push.logical_name})
    assert ReadOnlyAccess(readable).attribute_access(push, 3) == AccessMode.READ_ONLY
    assert mutant(readable).attribute_access(push, 3) == AccessMode.READ_AND_WRITE
    assert mutant(readable).attribute_access(push, 2) == AccessMode.READ_ONLY


def _response_counter(meter: HlsGmacServer) -> int:
    return int.from_bytes(meter.glo_initiate_response(b"\x08\x00\x06")[3:7], "big")


def test_server_counter_restarts_per_association():
    conforming, meter = server(None), server("reve-server-counter-restarts")
    first, second = _response_counter(conforming), _response_counter(conforming)
    assert second > first
    assert _response_counter(meter) == _response_counter(meter) == 1


def test_pass3_failure_logged_as_49():
    for mutant, logged in ((None, [46]), ("reve-pass3-logged-49", [49])):
        events: list[int] = []
        meter = server(mutant, events)
        association, _ = open_with(meter, 1)
        assert meter.reply_to_hls(association, b"\x10" + bytes(20)) is None
        assert events == logged and not association.authenticated
    events = []
    meter = server("reve-pass3-logged-49", events)
    assert not opens(meter, 1, bytes(16), EK) and events == [46]  # the AARQ's failure logged right


def test_events_capped_at_five():
    for mutant, expected in ((None, 7), ("reve-events-capped", 5)):
        events: list[int] = []
        meter = server(mutant, events)
        association, _ = open_with(meter, 1)
        assert served(meter, association, glo_get(100))
        for counter in range(2, 9):
            assert not served(meter, association, glo_get(counter))
        assert events == [50] * expected


def test_general_glo_title_not_checked():
    for mutant, accepted in ((None, False), ("reve-general-glo-any-title", True)):
        meter = server(mutant)
        association, _ = open_with(meter, 10)
        assert served(meter, association, general_glo_get(11, TITLE))
        assert served(meter, association, general_glo_get(1, OTHER_TITLE)) == accepted  # another title, counter 1


PROBED = ["reve-counter-checked-once", "reve-replay-after-reconnect", "reve-tag-8-bytes", "reve-aarq-wrong-ak",
          "reve-f-stoc-over-ctos", "reve-transfer-first-key-only", "reve-failed-transfer-changes-key",
          "reve-public-may-redirect-push", "reve-server-counter-restarts", "reve-pass3-logged-49",
          "reve-events-capped", "reve-general-glo-any-title"]
PROBED_MUTANTS = set(PROBED)  # what tests/fixtures_tests/test_mutants.py counts as probed in this module
