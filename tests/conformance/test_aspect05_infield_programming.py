"""Aspect 5 (art. 4-11): in-field programming through the optical port.

Use case: a technician's hand-held unit signs on at the meter's optical port
(IEC 62056-21 mode E), the meter identifies itself within its reaction time
and switches to HDLC; the management client, authenticated, writes a
parameter and reads it back; the same write without the required
authentication (no authentication for the management client, or the public
client) is refused and changes nothing. The accepted write is logged (IDIS
event 47, parameters changed).
"""
from __future__ import annotations

import re

import pytest
from smmc_bench.cosem.parameter import Parameter
from smmc_bench.drivers.dlms.errors import AssociationRejected, DlmsError, ServiceError
from smmc_bench.safety.restore import restored

pytestmark = [pytest.mark.smmc_aspect(5), pytest.mark.smmc_ntd("4-11"), pytest.mark.smmc_links("optical")]

TECHNICIAN = "Hand-held unit (bench)"
METER = "Meter"


def test_optical_sign_on_identifies_the_meter(meter, link_info, usecase):
    expected = meter.profile.links.mode_e
    with usecase.step("1", TECHNICIAN, METER, "sign-on /?! at 300 Bd; identification; option select; HDLC"):
        ident = link_info.identification
    usecase.expect("identification received (mode E)", ident is not None, True, article="4-11")
    usecase.expect("maker (FLAG id)", ident.maker.upper(), expected.maker.upper(), article="4-11")
    usecase.expect("HDLC announced (\\2)", ident.hdlc, True, article="4-11")
    usecase.measure("baud rate offered for HDLC", ident.baud, low=expected.min_baud, unit="Bd", article="4-11")
    usecase.expect(f"identification matches {expected.ident_pattern!r}",
                   bool(re.fullmatch(expected.ident_pattern, ident.ident)), True, article="4-11")
    usecase.measure("reaction time to the sign-on", ident.reaction_time, limit=expected.reaction_time)


def test_parameter_written_through_the_optical_port_reads_back(meter, usecase):
    spec = meter.profile.links.programming
    parameter = Parameter(spec)
    wanted = parameter.test_value()
    with usecase.step("1", TECHNICIAN, METER, f"GET {parameter.name} (value before); GET standard event log"):
        before = parameter.read(meter.session)
        events_before = meter.standard_event_log.entries() if spec.event is not None else []
    usecase.expect(f"{parameter.name} differs from the value to write (else the test proves nothing)",
                   before != wanted, True, article="4-11")
    put_back = [(f"{parameter.name} back to {before!r}", lambda: parameter.write(meter.session, before))]
    with restored(f"meter {meter.id} parameter", put_back):
        with usecase.step("2", TECHNICIAN, METER, f"SET {parameter.name} = {wanted!r} (management, authenticated)"):
            parameter.write(meter.session, wanted)
        with usecase.step("3", TECHNICIAN, METER, f"GET {parameter.name}; GET standard event log"):
            after = parameter.read(meter.session)
            logged = [e.code for e in meter.standard_event_log.new_since(events_before)] \
                if spec.event is not None else []
        usecase.expect(f"{parameter.name} read back", after, wanted, article="4-11")
        if spec.event is not None:
            usecase.expect(f"event {spec.event} (parameters changed) logged", spec.event in logged, True,
                           article="4-11")
        if spec.invalid_value is not None:
            invalid = parameter.typed(spec.invalid_value).value
            with usecase.step("4", TECHNICIAN, METER, f"SET {parameter.name} = {invalid!r} (out of range); GET it"):
                try:
                    parameter.write(meter.session, invalid)
                    refused = ""
                except ServiceError as exc:
                    refused = exc.diagnosis
                kept = parameter.read(meter.session)
            usecase.expect(f"{parameter.name} = {invalid!r} refused", bool(refused), True, article="4-11")
            usecase.expect(f"{parameter.name} after the refused write", kept, wanted, article="4-11")


def test_write_refused_without_the_required_authentication(meter, link_access, usecase):
    parameter = Parameter(meter.profile.links.programming)
    wanted = parameter.test_value()
    clients = meter.profile.clients
    spec = meter.profile.links.programming
    with usecase.step("1", TECHNICIAN, METER, f"GET {parameter.name} (value before); GET standard event log"):
        before = parameter.read(meter.session)
        events_before = meter.standard_event_log.entries() if spec.event is not None else []
    with usecase.step("2", TECHNICIAN, METER, f"associate as the management client (SAP {clients.management_sap}) "
                                              f"without authentication; SET {parameter.name}"):
        unauthenticated = outcome_of_write(link_access.session(clients.management_sap), parameter, wanted)
    usecase.expect("management write without authentication", unauthenticated, "refused", article="4-11")
    with usecase.step("3", TECHNICIAN, METER, f"associate as the public client (SAP {clients.public_sap}); "
                                              f"SET {parameter.name}"):
        public = outcome_of_write(link_access.session(clients.public_sap), parameter, wanted)
    usecase.expect("public client write", public, "refused", article="4-11")
    with usecase.step("4", TECHNICIAN, METER, f"associate as management (authenticated); GET {parameter.name}; "
                                              "GET standard event log"):
        link_access.resume()
        after = parameter.read(meter.session)
        logged = [e.code for e in meter.standard_event_log.new_since(events_before)] if spec.event is not None else []
        if after != before:
            parameter.write(meter.session, before)  # leave the meter as found
    usecase.expect(f"{parameter.name} unchanged by the refused writes", after, before, article="4-11")
    if spec.event is not None:
        usecase.expect(f"event {spec.event} (parameters changed) logged for a refused write", spec.event in logged,
                       False, article="4-11")


def outcome_of_write(session, parameter: Parameter, value) -> str:
    """'refused' (association rejected, or the SET refused) or 'accepted'."""
    try:
        session.connect()
    except AssociationRejected:
        return "refused"
    try:
        parameter.write(session, value)
        return "accepted"
    except ServiceError:
        return "refused"
    finally:
        try:
            session.release()
        except DlmsError:
            pass
        session.close()
