"""The emulated meter's firmware update (IC 18, IC 22) and each firmware mutant, probed on the model directly;
the optical-port mutants (aspect 5) through the meter's service layer as each port builds it."""
from __future__ import annotations

import hashlib
import struct
from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.cosem.image_transfer import ImageTransfer as ImageTransferView
from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings
from smmc_bench.drivers.dlms.errors import AssociationRejected, ServiceError
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.links.serve import session_factory
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, default_lls_password
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.firmware import INITIAL_FIRMWARE, TransferStatus
from smmc_bench.fixtures.meter.mutants import MUTANTS
from smmc_bench.fixtures.meter.mutants import firmware as firmware_mutants

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)


def image(version: bytes = b"FW-2", meter_type: bytes = b"EMU-IDIS", payload_size: int = 1000,
          corrupt: bool = False) -> bytes:
    """Built here independently of both the emulator's parser and the bench's builder."""
    payload = bytes(i * 7 % 251 for i in range(payload_size))
    body = (b"SMFW" + bytes([1, len(meter_type)]) + meter_type + bytes([len(version)]) + version
            + struct.pack(">I", len(payload)) + payload)
    data = body + hashlib.sha256(body).digest()
    if corrupt:
        data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    return data


class Probe:
    def __init__(self, mutant: str | None) -> None:
        self.bench = VirtualClock(START)
        self.meter = EmulatedMeter(clock=self.bench, mutant=mutant)
        self.model = self.meter.model
        self.transfer = self.model.firmware.transfer

    def call(self, method: int, parameter) -> str:
        """'' on success, else the refusal's result name."""
        try:
            with self.model.lock:
                self.transfer.invoke(method, parameter)
            return ""
        except CosemError as exc:
            return exc.result.name

    def initiate(self, data: bytes) -> str:
        return self.call(1, axdr.structure(axdr.octet_string(b"ID"), axdr.double_long_unsigned(len(data))))

    def block(self, data: bytes, number: int) -> str:
        size = self.transfer.block_size
        return self.call(2, axdr.structure(axdr.double_long_unsigned(number),
                                           axdr.octet_string(data[number * size:(number + 1) * size])))

    def blocks(self, data: bytes, numbers) -> None:
        for number in numbers:
            assert self.block(data, number) == ""

    def count(self, data: bytes) -> int:
        return -(-len(data) // self.transfer.block_size)

    def load(self, data: bytes) -> None:
        assert self.initiate(data) == ""
        self.blocks(data, range(self.count(data)))

    def verify(self) -> str:
        return self.call(3, axdr.integer(0))

    def activate(self) -> str:
        return self.call(4, axdr.integer(0))

    def identifier(self) -> bytes:
        return self.model.firmware_identifier.get(2).value

    def status(self) -> int:
        return int(self.transfer.get(6).value)

    def first(self) -> int:
        return int(self.transfer.get(4).value)

    def codes(self) -> list[int]:
        return self.model.standard_log.codes()

    def power_cycle(self) -> None:
        self.meter.set_supply(0.0)
        self.bench.sleep(10)
        self.meter.set_supply(230.0)


def updated(mutant):
    p = Probe(mutant)
    data = image()
    p.load(data)
    return p.verify(), p.activate(), p.identifier(), p.status(), p.codes()


def corrupted(mutant):
    p = Probe(mutant)
    p.load(image(corrupt=True))
    return p.verify(), p.status(), p.activate(), p.identifier(), p.codes()


def other_type(mutant):
    p = Probe(mutant)
    p.load(image(meter_type=b"OTHER"))
    return p.verify(), p.status(), p.identifier()


def resumed_after_association(mutant):
    p = Probe(mutant)
    data = image()
    p.initiate(data)
    p.blocks(data, range(3))
    p.model.association_opened()
    return p.status(), p.first()


def resumed_after_power_cycle(mutant):
    p = Probe(mutant)
    data = image()
    p.initiate(data)
    p.blocks(data, range(3))
    p.power_cycle()
    return p.status(), p.first()


def energy_across_activation(mutant):
    p = Probe(mutant)
    p.meter.set_load_demand(5.0)
    p.bench.sleep(3600)
    p.meter.set_load_demand(0.0)
    before = p.model.energy.wh
    p.load(image())
    p.verify()
    p.activate()
    return before > 0, p.model.energy.wh - before


def identifier_after_power_cycle(mutant):
    p = Probe(mutant)
    p.load(image())
    p.verify()
    p.activate()
    p.power_cycle()
    return p.identifier()


def block_after_failed_verification(mutant):
    p = Probe(mutant)
    data = image(corrupt=True)
    p.load(data)
    p.verify()
    bits = p.transfer.get(3).value
    return p.block(data, 0) != "", p.transfer.get(3).value == bits


def scheduled(mutant):
    """The identifier 5 s before and 5 s after an activation scheduled 300 s ahead."""
    p = Probe(mutant)
    p.meter.start()
    try:
        p.load(image())
        p.verify()
        local = (p.model.clock.now() - timedelta(minutes=p.model.clock.time_zone)).replace(tzinfo=None, microsecond=0)
        due = local + timedelta(seconds=300)
        schedule = p.model.firmware.schedule
        with p.model.lock:
            schedule.set(4, axdr.array([axdr.structure(
                axdr.octet_string(bytes([due.hour, due.minute, due.second, 0])),
                axdr.octet_string(due.year.to_bytes(2, "big") + bytes([due.month, due.day, 0xFF])))]))
        p.bench.sleep(295)
        early = p.identifier()
        p.bench.sleep(10)
        return early, p.identifier()
    finally:
        p.meter.stop()


class PortTransport:
    """The bench's DLMS session straight onto the meter's service layer for one port, as that port's
    link server builds it (no link below: the port's own defects are the subject)."""

    peer = "in-process"

    def __init__(self, handler) -> None:
        self._handler, self._client, self._reply = handler, 0, b""

    def open(self, client_address: int, server_address: int) -> None:
        self._client = client_address

    def send(self, apdu: bytes) -> bytes:
        self._reply = self._handler.handle(self._client, bytes(apdu))
        return bytes(apdu)

    def receive(self, timeout: float) -> tuple[bytes, bytes]:
        return self._reply, self._reply

    def close(self) -> None:
        pass


IMAGE_TRANSFER_OBIS = "0.0.44.0.0.255"


def port_session(meter: EmulatedMeter, port: str, client_sap: int) -> DlmsSession:
    password = Secret(default_lls_password()) if client_sap == 1 else None
    settings = SessionSettings(client_sap, 1, Authentication.LOW if password else Authentication.NONE, password,
                               timeout=1.0)
    return DlmsSession(PortTransport(session_factory(meter, port=port)()), settings)


def outcome(call) -> str:
    try:
        call()
        return "accepted"
    except ServiceError:
        return "refused"


def public_transfer_by_port(mutant):
    """What the public client's initiate and first block get, through the optical port and the wrapper."""
    seen = {}
    for port in ("optical", "wrapper"):
        meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant)
        data = image()
        session = port_session(meter, port, 16)
        try:
            session.connect()
        except AssociationRejected:
            seen[port] = "association refused"
            continue
        transfer = ImageTransferView(session, IMAGE_TRANSFER_OBIS)
        initiated = outcome(lambda: transfer.initiate(b"ID", len(data)))
        block = outcome(lambda: transfer.transfer_block(0, data[:meter.model.firmware.transfer.block_size]))
        session.close()
        seen[port] = (initiated, block, meter.model.firmware.transfer.status)
    return seen


def unverified_activation_by_port(mutant):
    """A corrupted image, verification failed: image_activate through each port, and what then runs."""
    seen = {}
    for port in ("optical", "wrapper"):
        meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant)
        data = image(corrupt=True)
        session = port_session(meter, port, 1)
        session.connect()
        transfer = ImageTransferView(session, IMAGE_TRANSFER_OBIS)
        size = transfer.block_size()
        transfer.initiate(b"ID", len(data))
        for number in range(-(-len(data) // size)):
            transfer.transfer_block(number, data[number * size:(number + 1) * size])
        verified = outcome(transfer.verify)
        activated = outcome(transfer.activate)
        session.close()
        seen[port] = (verified, activated, meter.model.firmware.running_identifier())
    return seen


def update_events_by_port(mutant):
    """A good image loaded, verified and activated through each port: the events logged."""
    seen = {}
    for port in ("optical", "wrapper"):
        meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant)
        data = image()
        session = port_session(meter, port, 1)
        session.connect()
        transfer = ImageTransferView(session, IMAGE_TRANSFER_OBIS)
        size = transfer.block_size()
        transfer.initiate(b"ID", len(data))
        for number in range(-(-len(data) // size)):
            transfer.transfer_block(number, data[number * size:(number + 1) * size])
        transfer.verify()
        transfer.activate()
        session.close()
        seen[port] = (meter.model.firmware.running_identifier(), meter.model.standard_log.codes())
    return seen


PROBES = {
    "fw-accepts-corrupted-image": corrupted,
    "fw-activates-unverified": corrupted,
    "fw-identifier-unchanged": updated,
    "fw-resume-restarts-from-zero": resumed_after_association,
    "fw-transfer-lost-on-power-cycle": resumed_after_power_cycle,
    "fw-accepts-other-meter-type": other_type,
    "fw-verify-answers-success-on-failure": corrupted,
    "fw-status-reports-verified-on-failure": corrupted,
    "fw-update-events-missing": updated,
    "fw-verification-failure-not-logged": corrupted,
    "fw-energy-reset-on-activation": energy_across_activation,
    "fw-activation-lost-on-power-cycle": identifier_after_power_cycle,
    "fw-block-before-initiate-accepted": block_after_failed_verification,
    "fw-scheduled-activation-early": scheduled,
    "fw-scheduled-activation-ignored": scheduled,
    "fw-optical-public-transfer": public_transfer_by_port,
    "fw-optical-activates-unverified": unverified_activation_by_port,
    "fw-optical-update-not-logged": update_events_by_port,
}
OPTICAL_PORT_MUTANTS = {"fw-optical-public-transfer", "fw-optical-activates-unverified",
                        "fw-optical-update-not-logged"}
PROBED_MUTANTS = set(PROBES)


def test_every_firmware_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in firmware_mutants.MUTANTS}
    assert len(PROBED_MUTANTS) >= 10
    assert all(MUTANTS[name].aspect == (5 if name in OPTICAL_PORT_MUTANTS else 9) for name in PROBED_MUTANTS)


def test_conforming_update():
    assert updated(None) == ("", "", b"FW-2", TransferStatus.ACTIVATION_SUCCESSFUL, [17, 18])
    assert corrupted(None) == ("OTHER_REASON", TransferStatus.VERIFICATION_FAILED, "TEMPORARY_FAILURE",
                               INITIAL_FIRMWARE, [51])
    assert other_type(None) == ("OTHER_REASON", TransferStatus.VERIFICATION_FAILED, INITIAL_FIRMWARE)
    assert resumed_after_association(None) == (TransferStatus.INITIATED, 3)
    assert resumed_after_power_cycle(None) == (TransferStatus.INITIATED, 3)
    assert energy_across_activation(None) == (True, 0)
    assert identifier_after_power_cycle(None) == b"FW-2"
    assert block_after_failed_verification(None) == (True, True)
    assert scheduled(None) == (INITIAL_FIRMWARE, b"FW-2")
    refused = ("refused", "refused", TransferStatus.NOT_INITIATED)
    assert public_transfer_by_port(None) == {"optical": refused, "wrapper": refused}
    unverified = ("refused", "refused", INITIAL_FIRMWARE)
    assert unverified_activation_by_port(None) == {"optical": unverified, "wrapper": unverified}
    assert update_events_by_port(None) == {"optical": (b"FW-2", [17, 18]), "wrapper": (b"FW-2", [17, 18])}


def test_optical_port_mutants_misbehave_on_the_optical_port_only():
    assert public_transfer_by_port("fw-optical-public-transfer") == {
        "optical": ("accepted", "accepted", TransferStatus.INITIATED),
        "wrapper": ("refused", "refused", TransferStatus.NOT_INITIATED)}
    assert unverified_activation_by_port("fw-optical-activates-unverified") == {
        "optical": ("refused", "accepted", b"FW-2"), "wrapper": ("refused", "refused", INITIAL_FIRMWARE)}
    assert update_events_by_port("fw-optical-update-not-logged") == {
        "optical": (b"FW-2", []), "wrapper": (b"FW-2", [17, 18])}


def test_blocks_before_initiate_are_refused_and_initiate_resets():
    p = Probe(None)
    data = image()
    assert p.block(data, 0) == "TEMPORARY_FAILURE"
    assert p.initiate(data) == "" and p.first() == 0
    p.blocks(data, range(2))
    assert p.initiate(data) == "" and p.first() == 0 and "1" not in p.transfer.get(3).value


def test_verify_with_blocks_missing_fails():
    p = Probe(None)
    data = image()
    p.initiate(data)
    p.blocks(data, range(2))
    assert p.verify() == "OTHER_REASON" and p.status() == TransferStatus.VERIFICATION_FAILED


@pytest.mark.parametrize("name", sorted(PROBES))
def test_firmware_mutant_differs_from_conforming_meter(name):
    observe = PROBES[name]
    assert observe(name) != observe(None)
