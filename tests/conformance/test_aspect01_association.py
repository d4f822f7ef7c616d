"""Aspect 1 (art. 4-4): establishing and releasing the application association.

Use case: the head-end proposes an association (AARQ: logical-name referencing,
no ciphering, the bench's client and its authentication) and the meter accepts
it with an AARE whose fields say what was agreed: result accepted, result-
source-diagnostic null, the proposed application context, the proposed
mechanism (when it names one), a conformance block within what was proposed
and a server max PDU size. The meter then honours what it agreed: a granted
block transfer is carried out and no answer exceeds the client's max PDU size.
At the end the head-end releases the association (RLRQ, reason normal) and the
meter answers with a well-formed RLRE (reason normal, or none given).

This module is where the AARE and the RLRE are the subject: elsewhere the bench
tolerates a malformed release (rule 7 of the method), here it FAILs.
"""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import Authentication
from smmc_bench.drivers.dlms.names import context_label, mechanism_label

pytestmark = [pytest.mark.smmc_aspect(1), pytest.mark.smmc_ntd("4-4")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
LN_REFERENCING = 1
LN_WITH_CIPHERING = 3
CONFORMANCE_BLOCK_TRANSFER_WITH_GET = 1 << 12   # bit 11 of the Green Book's conformance BIT STRING
CONFORMANCE_GET = 1 << 4                        # bit 19
# Small enough that the object list cannot come in one APDU: the meter must use blocks or refuse.
SMALL_CLIENT_PDU = 128
# The smallest server-max-receive-pdu-size of the xDLMS InitiateResponse (Green Book: 12 or more).
MIN_SERVER_PDU = 12


def _own_client(meter, link_access, *, max_pdu: int = 1024):
    settings = meter.session.settings
    return link_access.session(settings.client_sap, max_pdu=max_pdu,
                               authenticate=settings.authentication != Authentication.NONE)


def test_association_is_accepted_as_proposed(meter, link_access, usecase):
    mechanism = int(meter.session.settings.authentication)
    session = _own_client(meter, link_access)
    with usecase.step("1", HEAD_END, METER, f"AARQ (LN referencing, {mechanism_label(mechanism)}) → AARE"):
        session.connect()
        aare = session.last_aare
    usecase.expect("AARE result", aare.result, 0, article="4-4")
    usecase.expect("AARE result-source-diagnostic", (aare.diagnostic_source, aare.diagnostic),
                   ("acse-service-user", 0), article="4-4")
    # HLS-GMAC ciphers every APDU: its context is LN referencing with ciphering (3).
    context = LN_WITH_CIPHERING if mechanism == Authentication.HIGH_GMAC else LN_REFERENCING
    usecase.expect("AARE application-context-name", context_label(aare.application_context),
                   context_label(context), article="4-4")
    if aare.mechanism is not None:  # optional in the AARE; when given it must be the one asked for
        usecase.expect("AARE mechanism-name", mechanism_label(aare.mechanism), mechanism_label(mechanism),
                       article="4-4")
    granted, proposed = aare.initiate.conformance, session.proposed_conformance
    usecase.expect("conformance granted beyond the proposal (bits)", f"{granted & ~proposed:024b}",
                   f"{0:024b}", article="4-4")
    usecase.expect("GET granted", bool(granted & CONFORMANCE_GET), True, article="4-4")
    usecase.measure("server max-receive-pdu-size", aare.initiate.server_max_receive_pdu_size,
                    low=MIN_SERVER_PDU, high=0xFFFF, unit="B", article="4-4")
    # No RLRQ here: the release is judged by its own test below (link_access closes the link).


def test_meter_keeps_to_the_negotiated_pdu_size_and_block_transfer(meter, link_access, usecase):
    session = _own_client(meter, link_access, max_pdu=SMALL_CLIENT_PDU)
    with usecase.step("1", HEAD_END, METER, f"AARQ with client max-receive-pdu-size {SMALL_CLIENT_PDU} → AARE"):
        session.connect()
        blocks = bool(session.last_aare.initiate.conformance & CONFORMANCE_BLOCK_TRANSFER_WITH_GET)
    if not blocks:
        pytest.skip("the meter does not grant block-transfer-with-get: a long answer may be refused")
    # A reply longer than the client's PDU is a MalformedReply (FAIL); a refusal a ServiceError (FAIL).
    with usecase.step("2", HEAD_END, METER, "GET association LN object_list (longer than the client's PDU)"):
        entries = session.object_list()
    usecase.expect("object_list read by block transfer within the client's PDU size", bool(entries), True,
                   article="4-4")


def test_release_is_answered_by_a_well_formed_rlre(meter, link_access, usecase):
    session = _own_client(meter, link_access)
    with usecase.step("1", HEAD_END, METER, "AARQ → AARE accepted"):
        session.connect()
    # A malformed RLRE raises MalformedReply here (FAIL, bytes in the trace); no RLRE at all is an ERROR.
    with usecase.step("2", HEAD_END, METER, "RLRQ (reason normal) → RLRE"):
        reason = session.release(strict=True)
    usecase.expect("RLRE reason (normal, or not given)", "normal" if reason in (0, None) else f"reason {reason}",
                   "normal", article="4-4")
    with usecase.step("3", HEAD_END, METER, "AARQ again on a new connection → AARE accepted"):
        session.close()
        session.connect()
    usecase.expect("association after a release", session.is_associated, True, article="4-4")
    session.release()
