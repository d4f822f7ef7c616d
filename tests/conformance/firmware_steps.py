"""Firmware update steps shared by aspect 9 (remote, over the management association) and aspect 5
(through the optical port): the profile's firmware objects, the test images, and each step of the
update (initiate, transfer, verify, activate) with the expectations it carries.

Each step takes the actor who drives it (the head-end for aspect 9, the technician's hand-held
unit for aspect 5); what the meter must do is the same.
"""
from __future__ import annotations

import itertools
import secrets
from contextlib import contextmanager
from typing import Iterator

from smmc_bench.cosem.event_log import EventLog
from smmc_bench.cosem.image_transfer import (
    ActivationSchedule,
    FirmwareImage,
    ImageTransfer,
    TransferStatus,
    build_test_image,
    send_blocks,
    verify_and_wait,
)
from smmc_bench.drivers.dlms.errors import DlmsError, ServiceError
from smmc_bench.procedures import reassociate, wait_until
from smmc_bench.safety.restore import restore_all

HEAD_END = "Head-end (bench)"
METER = "Meter"
_SEQUENCE = itertools.count(1)


class Firmware:
    """What one test holds: the profile's [firmware] section and the meter's objects for it."""

    def __init__(self, meter) -> None:
        self.meter = meter
        self.profile = meter.profile.firmware
        self.transfer = ImageTransfer(meter.session, self.profile.objects.image_transfer)
        self.schedule = ActivationSchedule(meter.session, self.profile.objects.activation_schedule)

    def identifier(self) -> bytes:
        value = self.meter.session.get(1, self.profile.objects.firmware_identifier, 2)
        return bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode()

    def events(self) -> EventLog:
        return EventLog(self.meter.session, self.profile.objects.event_log)

    def image(self, *, meter_type: str | None = None, corrupt: bool = False) -> FirmwareImage:
        """A fresh image whose version no meter runs yet."""
        version = f"SMMC-TEST-{next(_SEQUENCE)}-{secrets.token_hex(3).upper()}"
        return build_test_image(self.profile.image, meter_type, version, int(self.profile.limits.image_size.value),
                                corrupt=corrupt)


@contextmanager
def transfer_enabled(meter) -> Iterator["Firmware"]:
    """The meter's firmware objects, image transfer enabled for the test (and put back after)."""
    fw = Firmware(meter)
    enabled = fw.transfer.enabled()
    if not enabled:
        fw.transfer.set_enabled(True)
    try:
        yield fw
    finally:
        if not enabled:
            restore_all(f"meter {meter.id} image transfer", [("image_transfer_enabled false",
                                                               lambda: fw.transfer.set_enabled(False))])


class EnergyWatch:
    """The energy register across the update. With a bench load: something in the register first (a
    reset must show), then no load, so the register must not move. Without one the bench cannot stop
    the current: the register must then not go back (a reset still shows when it held energy)."""

    def __init__(self, meter, load, bench_clock) -> None:
        self.meter, self.quiet = meter, load is not None
        self.resolution = meter.profile.firmware.limits.energy_resolution
        if load is not None:
            if self.read() < 10 * self.resolution.value:
                load.set_current(meter.profile.supply.limits.test_load_current.value)
                load.on()
                bench_clock.sleep(900.0)
            load.off()

    def read(self) -> float:
        return self.meter.active_energy_import.read()[0]

    def judge(self, usecase, before: float, after: float) -> None:
        if self.quiet:
            usecase.measure("|energy register after - before the update| (no load)", abs(after - before),
                            limit=self.resolution)
        else:
            usecase.measure("energy register after - before the update (load not controlled: must not go back)",
                            after - before, low=-self.resolution.value, unit=self.resolution.unit,
                            article=self.resolution.article)


def block_size_within_limits(fw: Firmware, usecase) -> int:
    limits = fw.profile.limits
    size = fw.transfer.block_size()
    usecase.measure("image_block_size", size, low=limits.min_block_size.value, high=limits.max_block_size.value,
                    unit="B", article="4-21")
    return size


def initiate(fw: Firmware, image: FirmwareImage, usecase, step: str, actor: str = HEAD_END) -> None:
    with usecase.step(step, actor, METER, f"ACTION image_transfer_initiate({image.identifier!r}, {image.size}); "
                                             "GET status, first not transferred block, transferred blocks"):
        fw.transfer.initiate(image.identifier, image.size)
        status, first, bits = fw.transfer.status(), fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks()
    usecase.expect("image_transfer_status after initiate", status, TransferStatus.INITIATED, article="4-21")
    usecase.expect("image_first_not_transferred_block_number after initiate", first, 0, article="4-21")
    usecase.expect("blocks marked transferred after initiate", bits.count("1"), 0, article="4-21")


def transfer_all(fw: Firmware, image: FirmwareImage, block_size: int, usecase, step: str, start: int = 0,
                 actor: str = HEAD_END) -> list[int]:
    count = len(image.blocks(block_size))
    with usecase.step(step, actor, METER, f"ACTION image_block_transfer blocks {start}..{count - 1}; GET "
                                             "first not transferred block, transferred blocks"):
        sent = send_blocks(fw.transfer, image, block_size, range(start, count))
        first, bits = fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks()
    usecase.expect("image_first_not_transferred_block_number after the last block", first, count, article="4-21")
    usecase.expect("transferred blocks bit-string (block 0 first)", bits[:count], "1" * count, article="4-21")
    return sent


def verify_ok(fw: Firmware, image: FirmwareImage, bench_clock, usecase, step: str,
              actor: str = HEAD_END) -> None:
    with usecase.step(step, actor, METER, "ACTION image_verify (poll the status while it runs); GET "
                                             "image_to_activate_info"):
        outcome = verify_and_wait(fw.transfer, bench_clock, fw.profile.limits.verification_time.value)
        info = fw.transfer.to_activate_info()
    usecase.expect("image_transfer_status after verifying a good image", outcome.status,
                   TransferStatus.VERIFICATION_SUCCESSFUL, article="5-3-8")
    usecase.expect("image_verify of a good image refused (diagnosis)", outcome.refusal, "", article="5-3-8")
    usecase.expect("image_to_activate_info (size, identification)", [(s, i) for s, i, _ in info],
                   [(image.size, image.identifier)], article="5-3-8")


def activate_and_wait(fw: Firmware, image: FirmwareImage, bench_clock, usecase, step: str,
                      actor: str = HEAD_END) -> bytes:
    """Activate; the meter may reboot: associate again and wait for the identifier to change."""
    limits = fw.profile.limits
    session = fw.meter.session
    with usecase.step(step, actor, METER, "ACTION image_activate; associate again if the meter restarts; GET "
                                             "the firmware identifier until it changes"):
        try:
            fw.transfer.activate()  # a refusal (ServiceError) is the meter's: FAIL
        except ServiceError:
            raise
        except DlmsError:  # no answer: the meter restarted before it answered
            pass
        seen = {}

        def identifier_is_new() -> bool:
            try:
                seen["id"] = fw.identifier()
            except DlmsError:
                reassociate(session, bench_clock, limits.activation_time.value)
                return False
            return seen["id"] == image.version

        waited = wait_until(identifier_is_new, bench_clock, limits.activation_time.value)
    usecase.expect("firmware identifier after activation", seen.get("id"), image.version, article="4-21")
    usecase.measure("time from activate to the new firmware identifier", waited if waited is not None else float("nan"),
                    limit=limits.activation_time)
    return seen["id"]


def expect_update_events(fw: Firmware, added, usecase, *, verified: bool, activated: bool) -> None:
    events = fw.profile.events
    codes = [e.code for e in added if e.code in (events.ready_for_activation, events.activated,
                                                 events.verification_failed)]
    expected = ([events.ready_for_activation] if verified else [events.verification_failed]) + \
        ([events.activated] if activated else [])
    usecase.expect(f"firmware events logged in {fw.profile.objects.event_log}", codes, expected, article="5-3-8")
