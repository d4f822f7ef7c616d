"""Aspect 3 (arts 2-1-11, 2-1-17): customer access to the meter's data.

Use case (Customer portal / local access): the customer's client (the public
client the profile declares) reads what the Anexo makes available: energy,
tariff registers, instantaneous values, time, events and messages. Every write
or method call on the meter's settings is refused with nothing changed, and the
access rights the customer's association reports in its object list agree with
what it really allows (probed, not trusted).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.drivers.dlms import CosemDateTime, DataType, Typed
from smmc_bench.drivers.dlms.errors import ServiceError
from smmc_bench.profile.customer import parse_entry
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(3), pytest.mark.smmc_ntd("2-1-11")]

CUSTOMER = "Customer client (bench, public SAP)"
HEAD_END = "Head-end (bench)"
METER = "Meter"
ARTICLE = "2-1-17"
READ_BIT, WRITE_BIT = 1, 2


@pytest.fixture
def breaker_kept(meter, link_access):
    """Whatever the customer's client managed to do, the breaker ends connected in its mode."""
    original_mode = meter.disconnect_control.control_mode()
    try:
        yield
    finally:
        link_access.resume()
        restore_all(f"meter {meter.id} breaker", [("reconnected", lambda: restore_connected(
            meter.disconnect_control, meter.profile.disconnector.control_modes, original_mode))])


def customer_session(meter, link_access):
    session = link_access.session(meter.profile.clients.public_sap)
    session.connect()
    return session


def reported_rights(session) -> dict[tuple[int, str], object]:
    return {(entry.class_id, entry.logical_name): entry for entry in session.object_list()}


def refused(call) -> bool:
    try:
        call()
    except ServiceError:
        return True
    return False


# Attributes written with their own type (a wrong type would be refused for that reason alone, and
# a meter that lets the public client write would still pass): the value read before is written back.
TYPED_PROBES = {(70, 4): DataType.ENUM, (8, 3): DataType.LONG, (71, 3): DataType.DOUBLE_LONG,
                (71, 4): DataType.DOUBLE_LONG, (1, 2): DataType.DOUBLE_LONG_UNSIGNED}
CLOCK_PROBE_OFFSET = timedelta(days=1)  # far from any true time: a refused SET that still applied shows


def probe_value(class_id: int, attribute: int, now: datetime, before) -> Typed:
    """A value of the attribute's type to try writing."""
    if class_id == 8 and attribute == 2:
        return Typed(DataType.OCTET_STRING, CosemDateTime.from_datetime(now + CLOCK_PROBE_OFFSET, 0).to_bytes())
    if class_id == 3:
        return Typed(DataType.DOUBLE_LONG_UNSIGNED, 0)
    if (class_id, attribute) in TYPED_PROBES and isinstance(before, int) and not isinstance(before, bool):
        return Typed(TYPED_PROBES[(class_id, attribute)], before)
    return Typed(DataType.OCTET_STRING, b"CUSTOMER")


def test_customer_reads_what_the_anexo_grants(meter, link_access, usecase):
    access = meter.profile.customer.access
    with usecase.step("1", CUSTOMER, METER, f"AARQ as the public client (SAP {meter.profile.clients.public_sap}); "
                                            "GET object list"):
        session = customer_session(meter, link_access)
        rights = reported_rights(session)
    for entry in access.readable:
        class_id, obis, attribute = parse_entry(entry)
        with usecase.step("2", CUSTOMER, METER, f"GET {class_id}/{obis} attr {attribute}"):
            denied = refused(lambda: session.get(class_id, obis, attribute))
        usecase.expect(f"{entry} read refused", denied, False, article="2-1-11")
        listed = rights.get((class_id, obis))
        usecase.expect(f"{entry} in the customer's object list", listed is not None, True, article=ARTICLE)
        usecase.expect(f"{entry} reported readable", bool(listed.attribute_access.get(attribute, 0) & READ_BIT),
                       True, article=ARTICLE)


def test_customer_cannot_change_anything(meter, link_access, breaker_kept, bench_clock, usecase):
    access = meter.profile.customer.access
    with usecase.step("0", HEAD_END, METER, "GET the values the customer will try to change"):
        before = {entry: meter.session.get(*parse_entry(entry)) for entry in access.refused_writes}
        output_before = meter.disconnect_control.output_state()
    with usecase.step("1", CUSTOMER, METER, "AARQ as the public client; GET object list"):
        session = customer_session(meter, link_access)
        rights = reported_rights(session)
    for entry in access.refused_writes:
        class_id, obis, attribute = parse_entry(entry)
        with usecase.step("2", CUSTOMER, METER, f"SET {class_id}/{obis} attr {attribute}"):
            denied = refused(lambda: session.set(class_id, obis, attribute,
                                                 probe_value(class_id, attribute, bench_clock.now(), before[entry])))
        usecase.expect(f"SET {entry} refused", denied, True, article=ARTICLE)
        listed = rights.get((class_id, obis))
        reported_writable = bool(listed and listed.attribute_access.get(attribute, 0) & WRITE_BIT)
        usecase.expect(f"{entry} reported writable", reported_writable, not denied, article=ARTICLE)
    for entry in access.refused_methods:
        class_id, obis, method = parse_entry(entry)
        with usecase.step("3", CUSTOMER, METER, f"ACTION {class_id}/{obis} method {method}"):
            denied = refused(lambda: session.action(class_id, obis, method, Typed(DataType.INTEGER, 0)))
        usecase.expect(f"ACTION {entry} refused", denied, True, article=ARTICLE)
        listed = rights.get((class_id, obis))
        usecase.expect(f"{entry} reported callable", bool(listed and listed.method_access.get(method, 0)),
                       not denied, article=ARTICLE)
    with usecase.step("4", HEAD_END, METER, "GET the same values again (nothing changed)"):
        link_access.resume()
        for entry, value in before.items():
            now = meter.session.get(*parse_entry(entry))
            if parse_entry(entry)[:3:2] == (8, 2):
                # Time moves by itself: the clock must not be near the probe time written a day ahead.
                meter_time = CosemDateTime.from_bytes(now).to_datetime() if isinstance(now, bytes) else now.to_datetime()
                ahead = abs(seconds_between(meter_time, bench_clock.now() + CLOCK_PROBE_OFFSET))
                usecase.expect(f"{entry} not set to the refused value (s from it > 3600)", ahead > 3600, True,
                               article=ARTICLE)
                continue
            if parse_entry(entry)[0] == 3:
                continue  # energy moves by itself: its refusal above is the evidence
            usecase.expect(f"{entry} unchanged", now, value, article=ARTICLE)
        usecase.expect("output_state unchanged", meter.disconnect_control.output_state(), output_before,
                       article=ARTICLE)
