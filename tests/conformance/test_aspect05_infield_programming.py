"""Aspect 5 (art. 4-11): in-field programming through the optical port.

Use case: a technician's hand-held unit signs on at the meter's optical port
(IEC 62056-21 mode E), the meter identifies itself within its reaction time
and switches to HDLC; the management client, authenticated, writes a
parameter and reads it back; the same write without the required
authentication (no authentication for the management client, or the public
client) is refused and changes nothing. The accepted write is logged (IDIS
event 47, parameters changed).

Firmware through the optical port: the same update as aspect 9 (initiate, transfer, verify,
activate through the image transfer object, the firmware identifier changing only on activation,
events 17/18, a corrupted image failing verification and never activated), driven by the hand-held
unit as the authenticated management client; and only so: with a wrong password, without
authentication or as the public client, initiate and block transfer are refused and change
nothing (the transfer in progress, the firmware identifier and the event log as they were).
"""
from __future__ import annotations

import re
from typing import Iterator

import pytest
from smmc_bench.conformance.firmware_steps import (
    EnergyWatch,
    Firmware,
    activate_and_wait,
    block_size_within_limits,
    expect_update_events,
    initiate,
    transfer_all,
    transfer_enabled,
    verify_ok,
)
from smmc_bench.cosem.image_transfer import (
    FirmwareImage,
    ImageTransfer,
    TransferStatus,
    send_blocks,
    verify_and_wait,
)
from smmc_bench.cosem.parameter import Parameter
from smmc_bench.drivers.dlms.errors import AssociationRejected, DlmsError, ServiceError
from smmc_bench.drivers.secret import Secret
from smmc_bench.plugin.supply import optional_load
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


# -- firmware through the optical port (art. 4-11, the flow of aspect 9) ---------------------------------

@pytest.fixture
def firmware(meter) -> Iterator[Firmware]:
    """The meter's firmware objects, image transfer enabled for the test (and put back after)."""
    with transfer_enabled(meter) as fw:
        yield fw


@pytest.fixture
def quiet_energy(meter, request, bench_clock) -> EnergyWatch:
    return EnergyWatch(meter, optional_load(request), bench_clock)


@pytest.mark.smmc_feature("image_transfer")
def test_firmware_update_through_the_optical_port(meter, firmware, quiet_energy, bench_clock, usecase):
    fw = firmware
    image = fw.image()
    with usecase.step("0", TECHNICIAN, METER, "GET firmware identifier, image_block_size, event log, energy "
                                              "register (no load)"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
        before = fw.events().entries()
        energy_before = quiet_energy.read()
    usecase.expect("test image version differs from the running firmware", old != image.version, True,
                   article="4-11")
    initiate(fw, image, usecase, "1", actor=TECHNICIAN)
    transfer_all(fw, image, block_size, usecase, "2", actor=TECHNICIAN)
    verify_ok(fw, image, bench_clock, usecase, "3", actor=TECHNICIAN)
    usecase.expect("firmware identifier after verification, before activation", fw.identifier(), old,
                   article="4-11")
    activate_and_wait(fw, image, bench_clock, usecase, "4", actor=TECHNICIAN)
    with usecase.step("5", TECHNICIAN, METER, "GET image_transfer_status, event log, energy register"):
        status = fw.transfer.status()
        added = fw.events().new_since(before)
        energy_after = quiet_energy.read()
    usecase.expect("image_transfer_status after activation", status, TransferStatus.ACTIVATION_SUCCESSFUL,
                   article="4-11")
    expect_update_events(fw, added, usecase, verified=True, activated=True)
    quiet_energy.judge(usecase, energy_before, energy_after)


@pytest.mark.smmc_feature("image_transfer")
def test_corrupted_image_through_the_optical_port_is_never_activated(meter, firmware, bench_clock, usecase):
    fw = firmware
    image = fw.image(corrupt=True)
    with usecase.step("0", TECHNICIAN, METER, "GET firmware identifier, image_block_size, event log; a corrupted "
                                              "test image (one payload octet changed after its digest)"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
        before = fw.events().entries()
    initiate(fw, image, usecase, "1", actor=TECHNICIAN)
    transfer_all(fw, image, block_size, usecase, "2", actor=TECHNICIAN)
    with usecase.step("3", TECHNICIAN, METER, "ACTION image_verify (poll the status while it runs)"):
        outcome = verify_and_wait(fw.transfer, bench_clock, fw.profile.limits.verification_time.value)
    usecase.expect("image_verify of a corrupted image answered success", outcome.answered_success, False,
                   article="4-11")
    usecase.expect("image_transfer_status after verifying a corrupted image", outcome.status,
                   TransferStatus.VERIFICATION_FAILED, article="4-11")
    with usecase.step("4", TECHNICIAN, METER, "ACTION image_activate through the optical port (must be refused); "
                                              "GET firmware identifier, status, event log"):
        try:
            fw.transfer.activate()
            refused = ""
        except ServiceError as exc:
            refused = exc.diagnosis
        identifier = fw.identifier()
        status = fw.transfer.status()
        added = fw.events().new_since(before)
    usecase.expect("image_activate of a corrupted image refused", bool(refused), True, article="4-11")
    usecase.expect("firmware identifier unchanged", identifier, old, article="4-11")
    usecase.expect("image_transfer_status after the refused activation", status, TransferStatus.VERIFICATION_FAILED,
                   article="4-11")
    expect_update_events(fw, added, usecase, verified=False, activated=False)


REFUSED = "refused"


def firmware_attempt(session, fw: Firmware, other: FirmwareImage, image: FirmwareImage, block_size: int,
                     block: int) -> dict[str, str]:
    """Over `session` (not yet associated): initiate `other`, then transfer block `block` of `image`.
    Each outcome: 'refused' (the association, or the ACTION, refused) or 'accepted'."""
    try:
        session.connect()
    except AssociationRejected:
        return {"association": REFUSED, "image_transfer_initiate": REFUSED, "image_block_transfer": REFUSED}
    transfer = ImageTransfer(session, fw.profile.objects.image_transfer)
    seen = {"association": "accepted"}
    try:
        for name, call in (("image_transfer_initiate", lambda: transfer.initiate(other.identifier, other.size)),
                           ("image_block_transfer",
                            lambda: transfer.transfer_block(block, image.blocks(block_size)[block]))):
            try:
                call()
                seen[name] = "accepted"
            except ServiceError:
                seen[name] = REFUSED
    finally:
        try:
            session.release()
        except DlmsError:
            pass
        session.close()
    return seen


@pytest.mark.smmc_feature("image_transfer")
def test_firmware_transfer_refused_without_the_required_authentication(meter, firmware, link_access, usecase):
    fw = firmware
    clients = meter.profile.clients
    right = meter.station_meter.password
    if right is None or meter.session.settings.client_sap != clients.management_sap:
        pytest.skip("the bench associates without a password here: it cannot tell the required authentication "
                    "from none")
    image, other = fw.image(), fw.image()
    with usecase.step("1", TECHNICIAN, METER, "management client (authenticated): GET firmware identifier, "
                                              "image_block_size, event log"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
        events_before = fw.events().entries()
    count = len(image.blocks(block_size))
    half = max(1, count // 2)
    initiate(fw, image, usecase, "2", actor=TECHNICIAN)
    with usecase.step("3", TECHNICIAN, METER, f"ACTION image_block_transfer blocks 0..{half - 1} of {count} (a "
                                              "transfer in progress the refused clients must not touch); GET "
                                              "status, first not transferred block, transferred blocks"):
        send_blocks(fw.transfer, image, block_size, range(half))
        baseline = (fw.transfer.status(), fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks())
    usecase.expect("first not transferred block before the refused attempts", baseline[1], half, article="4-11")
    wrong = bytes(b ^ 0x5A for b in right.reveal()) or b"wrong"
    attempts = (
        ("4", f"management client (SAP {clients.management_sap}) with a wrong LLS password",
         lambda: link_access.session(clients.management_sap, password=Secret(wrong))),
        ("5", f"management client (SAP {clients.management_sap}) without authentication",
         lambda: link_access.session(clients.management_sap)),
        ("6", f"public client (SAP {clients.public_sap})", lambda: link_access.session(clients.public_sap)),
    )
    for step, who, open_session in attempts:
        with usecase.step(step, TECHNICIAN, METER, f"associate as the {who}; ACTION image_transfer_initiate (another "
                                                   f"image); ACTION image_block_transfer block {half}"):
            seen = firmware_attempt(open_session(), fw, other, image, block_size, half)
        for name in ("image_transfer_initiate", "image_block_transfer"):
            usecase.expect(f"{name} as the {who} (association {seen['association']})", seen[name], REFUSED,
                           article="4-11")
    with usecase.step("7", TECHNICIAN, METER, "associate as management (authenticated); GET status, first not "
                                              "transferred block, transferred blocks, firmware identifier, event log"):
        link_access.resume()
        after = (fw.transfer.status(), fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks())
        identifier = fw.identifier()
        added = fw.events().new_since(events_before)
    usecase.expect("transfer in progress unchanged by the refused attempts (status, first not transferred, "
                   "transferred blocks)", after, baseline, article="4-11")
    usecase.expect("firmware identifier unchanged", identifier, old, article="4-11")
    events = fw.profile.events
    usecase.expect("firmware events logged by the refused attempts",
                   [e.code for e in added if e.code in (events.ready_for_activation, events.activated,
                                                        events.verification_failed)], [], article="4-11")
