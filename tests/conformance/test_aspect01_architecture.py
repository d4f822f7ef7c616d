"""Aspect 1 (arts. 3-2, 4-4): architecture of the meter's communication.

Use case: the head-end reaches the meter over every path the installation
declares (the suite runs each test over each path) (optical port, RS-485 bus, serial device server, remote port,
gateway), associates on each, and finds in the association's object list the
objects the profile makes mandatory, with the right interface class and
version; the association carries the authentication mechanism the profile
requires for the client, and the HDLC setup object reports the port the
profile describes.
"""
from __future__ import annotations

import pytest
from smmc_bench.cosem.association import AssociationView
from smmc_bench.cosem.hdlc_setup import HdlcSetupView
from smmc_bench.drivers.dlms.errors import AssociationRejected
from smmc_bench.drivers.secret import Secret
from smmc_bench.plugin.links import serial_number
from smmc_bench.profile.links import MECHANISM_IDS

pytestmark = [pytest.mark.smmc_aspect(1), pytest.mark.smmc_ntd("4-4")]

HEAD_END = "Head-end (bench)"
METER = "Meter"


@pytest.mark.smmc_ntd("3-2")
@pytest.mark.smmc_links("rs485", "gateway")
def test_shared_path_reaches_its_own_meter(meter, bench_station, link_info, usecase):
    """On a shared medium (an RS-485 bus, a gateway) a path can reach another meter than the one
    it names. (That every declared path associates, every test shows: each runs over each path.)"""
    with usecase.step("1", HEAD_END, METER, f"associate over {link_info.description}; GET serial number"):
        serial = serial_number(meter)
    known = meter.station_meter.identity.get("serial_number")
    usecase.expect("serial number over this path = serial number at the start of the run", serial, known,
                   article="3-2")
    with usecase.step("2", HEAD_END, HEAD_END, "compare with the other meters of the installation"):
        others = sorted(m.id for m in bench_station.meters.values()
                        if m.id != meter.id and m.identity.get("serial_number") == serial)
    usecase.expect("meters reached as this one by another declared path", others, [], article="3-2")


def test_object_list_holds_mandatory_objects(meter, usecase):
    mandatory = meter.profile.links.mandatory_objects
    with usecase.step("1", HEAD_END, METER, "GET association LN object_list"):
        listed = {entry.logical_name: (entry.class_id, entry.version) for entry in meter.session.object_list()}
    for item in mandatory:
        usecase.expect(f"{item.describe()} in the object list (class, version)", listed.get(item.obis),
                       (item.class_id, item.version), article="4-4")


def test_association_uses_the_required_authentication(meter, usecase):
    profile = meter.profile
    sap = meter.session.settings.client_sap
    management = sap == profile.clients.management_sap
    required = profile.links.association.management_mechanism if management else \
        profile.links.association.public_mechanism
    association = AssociationView(meter.session, profile.objects.association)
    with usecase.step("1", HEAD_END, METER, f"associate over {meter.link.describe()} (done by the bench)"):
        pass
    with usecase.step("2", HEAD_END, METER, "GET association authentication_mechanism_name and partners"):
        mechanism = association.mechanism()
        partners = association.partners()
    usecase.expect(f"authentication mechanism of the {'management' if management else 'public'} client "
                   f"(id; {required} = {MECHANISM_IDS[required]})", mechanism, MECHANISM_IDS[required],
                   article="4-4")
    usecase.expect("client SAP in associated_partners_id", partners[0], sap, article="4-4")


@pytest.mark.smmc_feature("hdlc")
def test_hdlc_setup_matches_profile(meter, link_info, usecase):
    expected = meter.profile.links.hdlc.setup
    view = HdlcSetupView(meter.session, expected.obis)
    wanted = expected.expected()
    with usecase.step("1", HEAD_END, METER, f"GET HDLC setup {expected.obis} attributes"):
        reported = view.read({name: number for name, (number, _) in wanted.items()})
    for name, (_, value) in wanted.items():
        usecase.expect(f"HDLC setup {name}", reported[name], value, article="4-4")
    negotiated = link_info.negotiated
    if negotiated is None:
        return  # this path has no HDLC layer: the port is described, not used
    with usecase.step("2", HEAD_END, HEAD_END, "compare what this connection negotiated with the setup object"):
        limits = view.read({"max_info_field_length_transmit": 5, "max_info_field_length_receive": 6,
                            "window_size_transmit": 3, "window_size_receive": 4})
    usecase.measure("negotiated max information field, meter to bench", negotiated.max_info_rx,
                    high=limits["max_info_field_length_transmit"], unit="B", article="4-4")
    usecase.measure("negotiated max information field, bench to meter", negotiated.max_info_tx,
                    high=limits["max_info_field_length_receive"], unit="B", article="4-4")
    usecase.measure("negotiated window, meter to bench", negotiated.window_rx,
                    high=limits["window_size_transmit"], unit="frames", article="4-4")


def wrong_passwords(right: bytes) -> dict[str, bytes]:
    """Wrong LLS passwords a careless comparison lets through, named without their bytes."""
    flipped = right[:-1] + bytes([right[-1] ^ 0x01]) if right else b"x"
    wrong = {"the right one with its last byte changed": flipped, "an empty password": b""}
    if len(right) > 1:
        wrong["the right one less its last byte (a prefix)"] = right[:-1]
    if len(right) > 8:
        wrong["the right first 8 bytes, then others"] = right[:8] + bytes(b ^ 0x55 for b in right[8:])
    wrong["the right one with a byte added (a longer password)"] = right + b"0"
    return wrong


def test_wrong_password_refused_and_the_right_one_still_works(meter, link_access, usecase):
    clients = meter.profile.clients
    right = meter.station_meter.password
    if right is None or meter.session.settings.client_sap != clients.management_sap:
        pytest.skip("the bench associates without a password here: nothing to present wrongly")
    outcomes: dict[str, str] = {}
    for number, (label, wrong) in enumerate(wrong_passwords(right.reveal()).items(), start=1):
        with usecase.step(f"1.{number}", HEAD_END, METER, f"AARQ management client (SAP {clients.management_sap}), "
                                                         f"LLS with {label}"):
            session = link_access.session(clients.management_sap, password=Secret(wrong))
            try:
                session.connect()
                outcomes[label] = "accepted"
            except AssociationRejected as exc:
                outcomes[label] = "refused"
                usecase.expect(f"{label}: AARE result", exc.result, 1, article="4-4")  # rejected-permanent
                # acse-service-user diagnostic 13: authentication-failure (IEC 62056-5-3), not another reason
                usecase.expect(f"{label}: AARE diagnostic (source, value)", (exc.source, exc.diagnostic),
                               ("acse-service-user", 13), article="4-4")
            finally:
                session.close()
    refused_all = {label: "refused" for label in outcomes}
    usecase.expect("associations with a wrong LLS password", outcomes, refused_all, article="4-4")
    with usecase.step("2", HEAD_END, METER, "AARQ with the right password; GET clock.time"):
        link_access.resume()
        meter.clock.read()
    usecase.expect("the right password associates after the refusals", meter.session.is_associated, True,
                   article="4-4")
