"""Aspect 1 (article as the profile's [security] says): DLMS security with HLS-GMAC.

Use case: the management client associates with HLS-GMAC (mechanism 5, security suite 0)
and every xDLMS APDU of its association is authenticated and encrypted. The meter must
refuse whoever does not hold the keys and every request that is replayed, tampered with
or sent in clear, log the security events the profile names, and keep serving the right
client afterwards.

The bench's own session verifies every GCM tag and the meter's invocation counter; here the
bench plays the attacker: it presents wrong keys, resends a ciphered request it already
sent (same and lower invocation counter), flips a byte of a ciphertext and of a tag, and
sends a request in clear, each through `DlmsSession.exchange_raw` so nothing is repaired on
the way. It also changes the global keys (IC 64 global_key_transfer, keys wrapped with the
master key) and puts the original keys back, whatever happens. Deselected on benches whose
management client does not use HLS-GMAC.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import pytest
from smmc_bench.drivers.dlms.errors import AssociationRejected, DlmsError, MeterNotAuthenticated
from smmc_bench.drivers.dlms.security import HlsKeys
from smmc_bench.drivers.secret import Secret

log = logging.getLogger(__name__)

# Only for meters whose management client the bench associates with HLS-GMAC: elsewhere these
# tests do not exist (deselected, as a link test on a bench without that link).
pytestmark = [pytest.mark.smmc_aspect(1), pytest.mark.smmc_ntd("4-4"), pytest.mark.smmc_feature("hls_gmac"),
              pytest.mark.smmc_management_security("high-gmac")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
CLOCK_TIME_GET = bytes.fromhex("c001c1" "0008" "0000010000ff" "02" "00")  # GET 8/0.0.1.0.0.255/2
GET_RESPONSE, GLO_GET_RESPONSE, GENERAL_GLO = 0xC4, 0xCC, 0xDB


def _keys(meter) -> HlsKeys:
    keys = meter.station_meter.keys
    if keys is None or meter.session.settings.keys is None:
        pytest.skip("the bench's management client does not associate with HLS-GMAC here")
    return keys


def _served(reply: bytes) -> bool:
    """The meter answered the request with data (in clear or ciphered) rather than refusing it."""
    if not reply:
        return False
    if reply[0] == GET_RESPONSE:
        return len(reply) > 3 and reply[3] == 0
    return reply[0] in (GLO_GET_RESPONSE, GENERAL_GLO)


def _flip(data: bytes, index: int) -> bytes:
    """`data` with the byte at `index` (negative counts from the end) XOR 0x5A, the rest unchanged."""
    index %= len(data)
    return data[:index] + bytes((data[index] ^ 0x5A,)) + data[index + 1:]


def _event_log(meter):
    from smmc_bench.cosem.event_log import EventLog
    return EventLog(meter.session, meter.profile.security.event_log)


def _right_client_works(meter, link_access, usecase, step: str, article: str) -> None:
    with usecase.step(step, HEAD_END, METER, "the right client associates again (HLS-GMAC); GET clock.time"):
        link_access.suspend()
        link_access.resume()
        meter.clock.read()
    usecase.expect("the right client works after the refusals", meter.session.is_associated, True, article=article)


def _security_log_now(meter, link_access):
    """The meter's own session back on the line, and the security event log as it stands."""
    link_access.resume()
    return _event_log(meter).entries()


def _served_again_then_logged(meter, link_access, usecase, step: int, before) -> list[int]:
    """After the refusals: the right client is served again (step N), then the codes the security
    event log gained since `before` (step N+1), for the test to judge."""
    security = meter.profile.security
    _right_client_works(meter, link_access, usecase, str(step), security.article)
    with usecase.step(str(step + 1), HEAD_END, METER, f"GET the security event log {security.event_log}"):
        return [event.code for event in _event_log(meter).new_since(before)]


def test_wrong_keys_refused_and_logged(meter, link_access, usecase):
    keys = _keys(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    log = _event_log(meter)
    before = log.entries()
    ak, ek = keys.authentication_key.reveal(), keys.encryption_key.reveal()
    wrong = {
        "a wrong authentication key": HlsKeys(Secret(_flip(ak, 3)), keys.encryption_key, keys.system_title,
                                              keys.policy, keys.general),
        "a wrong encryption key": HlsKeys(keys.authentication_key, Secret(_flip(ek, 7)), keys.system_title,
                                          keys.policy, keys.general),
    }
    wrong["a wrong f(StoC) in pass 3"] = keys
    outcomes: dict[str, str] = {}
    for number, (label, presented) in enumerate(wrong.items(), start=1):
        with usecase.step(f"1.{number}", HEAD_END, METER, f"AARQ management client (SAP {sap}), HLS-GMAC with "
                                                          f"{label}; pass 3 if the AARE accepts"):
            session = link_access.session(sap, keys=presented)
            if presented is keys:
                session.tamper_f_stoc = lambda f_stoc: _flip(f_stoc, len(f_stoc) - 1)
            try:
                session.connect()
                outcomes[label] = "accepted"
            except AssociationRejected:
                outcomes[label] = "refused"
            except DlmsError:
                # Refused at pass 3 (the meter answers reply_to_HLS_authentication with an error), or
                # accepted by the meter and then refused by the bench (its glo-InitiateResponse or
                # f(CtoS) does not verify with the wrong key): the meter's AARE says which.
                accepted = session.last_hls is not None and session.last_hls.meter_accepted and \
                    presented is not keys
                outcomes[label] = "accepted" if accepted else "refused"
            finally:
                session.close()
    usecase.expect("associations with a wrong key", {k: v.split(" (")[0] for k, v in outcomes.items()},
                   {label: "refused" for label in wrong}, article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 2, before)
    expected = len(wrong) // security.failures_before_event
    usecase.expect(f"association authentication failure events ({security.association_failure_event}) logged",
                   codes.count(security.association_failure_event) >= expected, True, article=security.article)


def test_recorded_f_stoc_reflected_as_ctos_refused_and_logged(meter, link_access, usecase):
    """Pass 3 must prove the client holds the keys now: a recorded f(StoC) replayed in a later
    association whose AARQ carries the recorded StoC as its CtoS (reflection) must be refused."""
    keys = _keys(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    before = _security_log_now(meter, link_access)
    with usecase.step("1", HEAD_END, METER, f"association (SAP {sap}, HLS-GMAC), keeping the meter's StoC and "
                                            "the f(StoC) presented in pass 3; release"):
        session = link_access.session(sap, keys=keys)
        try:
            session.connect()
            recorded_stoc, recorded_f_stoc = session.ciphering.server_challenge, session.ciphering.f_stoc_sent
        finally:
            _end(session)
    with usecase.step("2", HEAD_END, METER, "AARQ with the recorded StoC as CtoS; pass 3 presents the recorded "
                                            "f(StoC) instead of one over the new StoC"):
        session = link_access.session(sap, keys=keys)
        session.client_challenge = recorded_stoc
        session.tamper_f_stoc = lambda f_stoc: recorded_f_stoc
        try:
            session.connect()
            outcome = "accepted"
        except MeterNotAuthenticated:  # the meter answered pass 3 with an f(CtoS) (that the bench refuses)
            outcome = "accepted"
        except DlmsError:  # the AARQ or pass 3 refused
            outcome = "refused"
        finally:
            _end(session)
    usecase.expect("a recorded f(StoC) reflected through CtoS", outcome, "refused", article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 3, before)
    usecase.expect(f"association authentication failure event ({security.association_failure_event}) logged",
                   security.association_failure_event in codes or security.failures_before_event > 1, True,
                   article=security.article)


def test_replayed_request_refused_and_logged(meter, link_access, usecase):
    _keys(meter)
    security = meter.profile.security
    before = _security_log_now(meter, link_access)
    ciphering = meter.session.ciphering
    with usecase.step("1", HEAD_END, METER, "GET clock.time twice (ciphered), keeping both requests"):
        meter.clock.read()
        older = ciphering.last_protected
        meter.clock.read()
        latest = ciphering.last_protected
    outcomes = {}
    with usecase.step("2", HEAD_END, METER, "resend the latest ciphered request (same invocation counter)"):
        outcomes["same invocation counter"] = _served(meter.session.exchange_raw(latest, "replayed GET (same IC)"))
    with usecase.step("3", HEAD_END, METER, "resend the older ciphered request (lower invocation counter)"):
        outcomes["lower invocation counter"] = _served(meter.session.exchange_raw(older, "replayed GET (lower IC)"))
    usecase.expect("replayed requests served", outcomes, {label: False for label in outcomes},
                   article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 4, before)
    usecase.expect(f"replay attack events ({security.replay_event}) logged", codes.count(security.replay_event),
                   len(outcomes), article=security.article)


def test_replay_from_an_earlier_association_refused_and_logged(meter, link_access, usecase):
    """The meter's replay check spans associations: a ciphered request and an AARQ recorded in an
    earlier association must not be taken after a reconnect (the client's counter went on)."""
    keys = _keys(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    before = _security_log_now(meter, link_access)
    with usecase.step("1", HEAD_END, METER, f"association (SAP {sap}, HLS-GMAC): GET clock.time (ciphered), "
                                            "keeping its AARQ and the request; release"):
        session = link_access.session(sap, keys=keys)
        try:
            session.connect()
            session.get(8, "0.0.1.0.0.255", 2)
            recorded_aarq, recorded_request = session.ciphering.aarq, session.ciphering.last_protected
        finally:
            _end(session)
    outcomes = {}
    with usecase.step("2", HEAD_END, METER, "a new association (the right client); resend the recorded "
                                            "ciphered request"):
        link_access.resume()
        meter.clock.read()
        outcomes["request from the earlier association"] = \
            "served" if _served(meter.session.exchange_raw(recorded_request, "replayed GET (earlier association)")) \
            else "refused"
    with usecase.step("3", HEAD_END, METER, "resend the recorded AARQ (the earlier association's)"):
        session = link_access.session(sap, keys=keys)
        session.tamper_aarq = lambda aarq: recorded_aarq
        try:
            session.connect()
            outcomes["AARQ from the earlier association"] = "accepted"
        except AssociationRejected:
            outcomes["AARQ from the earlier association"] = "refused"
        except DlmsError:  # the meter accepted it and the bench's pass 3/4 failed, or the meter refused pass 3
            accepted = session.last_hls is not None and session.last_hls.meter_accepted
            outcomes["AARQ from the earlier association"] = "accepted" if accepted else "refused"
        finally:
            _end(session)
    usecase.expect("replays from an earlier association", outcomes, {label: "refused" for label in outcomes},
                   article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 4, before)
    usecase.expect(f"replay attack events ({security.replay_event}) logged", codes.count(security.replay_event),
                   len(outcomes), article=security.article)


def test_tampered_ciphertext_and_tag_refused_and_logged(meter, link_access, usecase):
    _keys(meter)
    security = meter.profile.security
    before = _security_log_now(meter, link_access)
    ciphering = meter.session.ciphering
    outcomes = {}
    for number, (label, index) in enumerate((("a ciphertext byte", -14), ("a tag byte", -1)), start=1):
        with usecase.step(f"1.{number}", HEAD_END, METER, f"a fresh ciphered GET clock.time with {label} changed"):
            tampered = _flip(ciphering.protect(CLOCK_TIME_GET), index)
            outcomes[label] = _served(meter.session.exchange_raw(tampered, f"GET with {label} changed"))
    usecase.expect("tampered requests served", outcomes, {label: False for label in outcomes},
                   article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 2, before)
    usecase.expect(f"decryption/authentication failure events ({security.decryption_failure_event}) logged",
                   codes.count(security.decryption_failure_event), len(outcomes), article=security.article)


def test_meter_invocation_counter_rises_across_associations(meter, link_access, usecase):
    """The meter's invocation counter must keep rising over every association with the same key: a
    counter that restarts at an association reuses GCM IVs (system title || counter) under that
    key, which exposes the keystream and the authentication key's hash key."""
    from smmc_bench.drivers.dlms.errors import SecurityFailure

    keys = _keys(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    counters: list[tuple[int | None, int | None]] = []
    problem = None
    for number in (1, 2, 3):
        with usecase.step(f"1.{number}", HEAD_END, METER, f"association {number} (SAP {sap}, HLS-GMAC, the same "
                                                          "keys): GET clock.time, release; note the meter's first "
                                                          "and last invocation counters"):
            session = link_access.session(sap, keys=keys)
            try:
                session.connect()
                session.get(8, "0.0.1.0.0.255", 2)
                counters.append((session.ciphering.first_server_counter, session.ciphering.last_server_counter))
            except SecurityFailure as exc:  # the bench's own check across associations refused a reply
                problem = exc.diagnosis
                break
            finally:
                _end(session)
    log.info("meter invocation counters (first, last) per association: %s", counters)
    rising = problem is None and all(later[0] is not None and earlier[1] is not None and later[0] > earlier[1]
                                     for earlier, later in zip(counters, counters[1:]))
    usecase.expect("each association's first meter invocation counter exceeds the previous association's last",
                   problem or (rising, counters), (True, counters), article=security.article)
    _right_client_works(meter, link_access, usecase, "2", security.article)


def test_request_under_another_system_title_refused_and_logged(meter, link_access, usecase):
    """general-glo-ciphering names the sender's system title: within the association, a request
    ciphered (with the right keys) under another client's title must be refused, not deciphered
    with the title it carries (another client's requests and counters would be served)."""
    from smmc_bench.drivers.dlms.security import CipheringContext

    keys = _keys(meter)
    security = meter.profile.security
    before = _security_log_now(meter, link_access)
    other_title = bytes(b ^ 0xFF for b in keys.system_title)
    other = dataclasses.replace(keys, system_title=other_title, general=True)
    with usecase.step("1", HEAD_END, METER, f"general-glo GET clock.time ciphered with the keys under system title "
                                            f"{other_title.hex()} (not the association's)"):
        request = CipheringContext(other).protect(CLOCK_TIME_GET)
        served = _served(meter.session.exchange_raw(request, "general-glo GET under another system title"))
    usecase.expect("a request under another system title served", served, False, article=security.article)
    codes = _served_again_then_logged(meter, link_access, usecase, 2, before)
    usecase.expect(f"decryption/authentication failure event ({security.decryption_failure_event}) logged",
                   security.decryption_failure_event in codes, True, article=security.article)


def test_unciphered_request_in_a_ciphered_association_refused(meter, link_access, usecase):
    _keys(meter)
    security = meter.profile.security
    link_access.resume()
    with usecase.step("1", HEAD_END, METER, "GET clock.time in clear within the ciphered association"):
        reply = meter.session.exchange_raw(CLOCK_TIME_GET, "GET clock.time in clear")
    usecase.expect("an unciphered request served", _served(reply), False, article=security.article)
    _right_client_works(meter, link_access, usecase, "2", security.article)


def _keys_and_new_ones(meter) -> tuple[HlsKeys, HlsKeys]:
    """The configured keys, and fresh random ones to transfer (wrapped with the master key, which the
    test skips without)."""
    keys = _keys(meter)
    if keys.master_key is None:
        pytest.skip("no master key (KEK) configured ([meter.security] master_key_env or master_key_file): "
                    "the bench cannot wrap new keys")
    changed = HlsKeys(Secret(os.urandom(16)), Secret(os.urandom(16)), keys.system_title, keys.policy, keys.general,
                      master_key=keys.master_key)
    return keys, changed


def _association_outcome(link_access, sap: int, keys: HlsKeys):
    """("accepted", the connected session) or ("refused", None). A meter that accepts the AARQ
    but whose AARE the bench cannot decipher (it ciphers with other keys) accepted it."""
    session = link_access.session(sap, keys=keys)
    try:
        session.connect()
        return "accepted", session
    except AssociationRejected:
        session.close()
        return "refused", None
    except DlmsError:
        session.close()
        if session.last_hls is not None and session.last_hls.meter_accepted:
            return "accepted", None
        raise


def _end(session) -> None:
    try:
        session.release()
    except DlmsError:
        pass
    session.close()


def _restore(link_access, sap: int, original: HlsKeys, changed: HlsKeys) -> str | None:
    """Put the original keys back if the meter holds the changed ones, or only one of them (a meter
    that took part of a transfer); None, or what went wrong."""
    from smmc_bench.cosem.security_setup import AUTHENTICATION_KEY, GLOBAL_UNICAST_ENCRYPTION_KEY, \
        global_key_transfer

    candidates = [changed,
                  dataclasses.replace(original, encryption_key=changed.encryption_key),
                  dataclasses.replace(original, authentication_key=changed.authentication_key)]
    try:
        for candidate in candidates:
            if candidate.encryption_key.reveal() == original.encryption_key.reveal() and \
                    candidate.authentication_key.reveal() == original.authentication_key.reveal():
                continue
            outcome, session = _association_outcome(link_access, sap, candidate)
            if session is None:  # the meter does not hold these keys
                continue
            try:
                global_key_transfer(session, original.master_key,
                                    {GLOBAL_UNICAST_ENCRYPTION_KEY: original.encryption_key,
                                     AUTHENTICATION_KEY: original.authentication_key})
            finally:
                _end(session)
            return None
    except DlmsError as exc:
        log.warning("restoring the original HLS keys failed: %s", exc)
        return f"restoring the original keys failed: {exc}"
    return None  # the meter holds none of the changed keys: nothing to put back


def test_global_key_transfer_takes_effect(meter, link_access, usecase):
    from smmc_bench.cosem.event_log import EventLog
    from smmc_bench.cosem.security_setup import AUTHENTICATION_KEY, GLOBAL_UNICAST_ENCRYPTION_KEY, \
        global_key_transfer

    keys, changed = _keys_and_new_ones(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    before = _security_log_now(meter, link_access)
    restore_problem = None
    try:
        with usecase.step("1", HEAD_END, METER, f"associate (SAP {sap}, the configured keys); ACTION "
                                                "global_key_transfer: new authentication and global unicast "
                                                "encryption keys, wrapped with the master key (RFC 3394)"):
            session = link_access.session(sap, keys=keys)
            session.connect()
            try:
                global_key_transfer(session, keys.master_key, {GLOBAL_UNICAST_ENCRYPTION_KEY: changed.encryption_key,
                                                               AUTHENTICATION_KEY: changed.authentication_key})
            finally:
                _end(session)
        with usecase.step("2", HEAD_END, METER, "AARQ with the old keys"):
            old_outcome, session = _association_outcome(link_access, sap, keys)
            if session is not None:
                _end(session)
        usecase.expect("association with the old keys after the key change", old_outcome, "refused",
                       article=security.article)
        with usecase.step("3", HEAD_END, METER, "AARQ with the new keys; GET clock.time and the security event "
                                                f"log {security.event_log}"):
            new_outcome, session = _association_outcome(link_access, sap, changed)
            codes = None
            if session is not None:
                try:
                    session.get(8, "0.0.1.0.0.255", 2)
                    codes = [event.code for event in EventLog(session, security.event_log).new_since(before)]
                finally:
                    _end(session)
        usecase.expect("association with the new keys after the key change", new_outcome, "accepted",
                       article=security.article)
        usecase.expect(f"key change event ({security.key_changed_event}) logged",
                       codes is not None and security.key_changed_event in codes, True, article=security.article)
    finally:
        with usecase.step("4", HEAD_END, METER, "with the new keys (if the meter holds them): ACTION "
                                                "global_key_transfer back to the original keys"):
            restore_problem = _restore(link_access, sap, keys, changed)
    usecase.expect("original keys restored", restore_problem, None, article=security.article)
    _right_client_works(meter, link_access, usecase, "5", security.article)


def test_refused_key_transfer_changes_no_key(meter, link_access, usecase):
    """A global key transfer is all or nothing: one whose second entry does not unwrap with the master
    key is refused and stores none of its keys (the first entry's key is not taken either)."""
    from smmc_bench.cosem.security_setup import AUTHENTICATION_KEY, GLOBAL_KEY_TRANSFER, \
        GLOBAL_UNICAST_ENCRYPTION_KEY, SECURITY_SETUP, SECURITY_SETUP_LN, wrapped_key_data
    from smmc_bench.drivers.dlms import DataType, Typed
    from smmc_bench.drivers.dlms.errors import ServiceError

    keys, changed = _keys_and_new_ones(meter)
    security = meter.profile.security
    sap = meter.profile.clients.management_sap
    wrong_kek = Secret(_flip(keys.master_key.reveal(), 0))
    good = wrapped_key_data(keys.master_key, {GLOBAL_UNICAST_ENCRYPTION_KEY: changed.encryption_key}).value[0]
    bad = wrapped_key_data(wrong_kek, {AUTHENTICATION_KEY: changed.authentication_key}).value[0]
    outcomes = {}
    try:
        with usecase.step("1", HEAD_END, METER, f"associate (SAP {sap}, the configured keys); ACTION "
                                                "global_key_transfer: a new global unicast encryption key "
                                                "wrapped with the master key, then a new authentication key "
                                                "wrapped with another key (does not unwrap)"):
            session = link_access.session(sap, keys=keys)
            session.connect()
            try:
                session.action(SECURITY_SETUP, SECURITY_SETUP_LN, GLOBAL_KEY_TRANSFER,
                               Typed(DataType.ARRAY, [good, bad]))
                outcomes["transfer with a bad second entry"] = "accepted"
            except ServiceError:
                outcomes["transfer with a bad second entry"] = "refused"
            finally:
                _end(session)
        with usecase.step("2", HEAD_END, METER, "AARQ with the configured keys; AARQ with the first entry's "
                                                "encryption key and the configured authentication key"):
            outcome, session = _association_outcome(link_access, sap, keys)
            if session is not None:
                _end(session)
            outcomes["association with the configured keys"] = outcome
            mixed = dataclasses.replace(keys, encryption_key=changed.encryption_key)
            outcome, session = _association_outcome(link_access, sap, mixed)
            if session is not None:
                _end(session)
            outcomes["association with the first entry's key"] = outcome
        usecase.expect("a refused key transfer changes no key", outcomes,
                       {"transfer with a bad second entry": "refused",
                        "association with the configured keys": "accepted",
                        "association with the first entry's key": "refused"}, article=security.article)
    finally:
        with usecase.step("3", HEAD_END, METER, "with any key the meter took: ACTION global_key_transfer back "
                                                "to the original keys"):
            restore_problem = _restore(link_access, sap, keys, changed)
    usecase.expect("original keys kept or restored", restore_problem, None, article=security.article)
    _right_client_works(meter, link_access, usecase, "4", security.article)


def test_public_client_cannot_change_the_keys(meter, link_access, usecase):
    from smmc_bench.cosem.security_setup import AUTHENTICATION_KEY, GLOBAL_UNICAST_ENCRYPTION_KEY, \
        global_key_transfer
    from smmc_bench.drivers.dlms.errors import ServiceError

    keys, changed = _keys_and_new_ones(meter)
    security = meter.profile.security
    clients = meter.profile.clients
    try:
        with usecase.step("1", HEAD_END, METER, f"associate as the public client (SAP {clients.public_sap}); "
                                                "ACTION global_key_transfer with new keys wrapped with the "
                                                "master key"):
            session = link_access.session(clients.public_sap)
            session.connect()
            try:
                global_key_transfer(session, keys.master_key, {GLOBAL_UNICAST_ENCRYPTION_KEY: changed.encryption_key,
                                                               AUTHENTICATION_KEY: changed.authentication_key})
                outcome = "accepted"
            except ServiceError:
                outcome = "refused"
            finally:
                _end(session)
        usecase.expect("global_key_transfer by the public client", outcome, "refused", article=security.article)
    finally:
        with usecase.step("2", HEAD_END, METER, "with the new keys (if the meter took them): ACTION "
                                                "global_key_transfer back to the original keys"):
            restore_problem = _restore(link_access, clients.management_sap, keys, changed)
    usecase.expect("original keys kept or restored", restore_problem, None, article=security.article)
    _right_client_works(meter, link_access, usecase, "3", security.article)
