"""Aspect 9 (arts 4-21, 5-3-8): remote firmware update.

Use case (Remote Meter Firmware Update): the head-end transfers an image in blocks through the
image transfer object (IC 18), has the meter verify it and activates it, at once or at a time a
single-action schedule sets. The bench builds its own test images from the profile's
[firmware.image] header format (meter type, version, digest) and judges: the firmware identifier
reads the new version only after activation, and still after a power cycle; events 17/18 (or 51)
are logged; a corrupted image, or one for another meter type, fails verification and can be
neither activated nor change anything; a transfer cut by a dropped association or a supply cut
resumes from `image_first_not_transferred_block_number`, not from block 0; the energy register
is untouched by the whole update (no load flows meanwhile, so it must not move).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import pytest
from smmc_bench.conformance import firmware_steps
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
    TransferStatus,
    meter_local_time,
    send_blocks,
    verify_and_wait,
)
from smmc_bench.drivers.dlms.errors import DlmsError, ServiceError
from smmc_bench.plugin.supply import optional_load
from smmc_bench.procedures import reassociate
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(9), pytest.mark.smmc_ntd("5-3-8"), pytest.mark.smmc_feature("image_transfer")]

HEAD_END = firmware_steps.HEAD_END
METER = firmware_steps.METER
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"


@pytest.fixture
def firmware(meter) -> Iterator[Firmware]:
    """The meter's firmware objects, image transfer enabled for the test (and put back after)."""
    with transfer_enabled(meter) as fw:
        yield fw


@pytest.fixture
def quiet_energy(meter, request, bench_clock) -> EnergyWatch:
    return EnergyWatch(meter, optional_load(request), bench_clock)


def test_transfer_verify_activate_changes_the_firmware_identifier(meter, firmware, quiet_energy, bench_clock,
                                                                   usecase):
    fw = firmware
    image = fw.image()
    with usecase.step("0", HEAD_END, METER, "GET firmware identifier, image_block_size, event log, energy register "
                                            "(no load)"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
        before = fw.events().entries()
        energy_before = quiet_energy.read()
    usecase.expect("test image version differs from the running firmware", old != image.version, True,
                   article="4-21")
    initiate(fw, image, usecase, "1")
    transfer_all(fw, image, block_size, usecase, "2")
    verify_ok(fw, image, bench_clock, usecase, "3")
    usecase.expect("firmware identifier after verification, before activation", fw.identifier(), old,
                   article="4-21")
    activate_and_wait(fw, image, bench_clock, usecase, "4")
    with usecase.step("5", HEAD_END, METER, "GET image_transfer_status, event log, energy register"):
        status = fw.transfer.status()
        added = fw.events().new_since(before)
        energy_after = quiet_energy.read()
    usecase.expect("image_transfer_status after activation", status, TransferStatus.ACTIVATION_SUCCESSFUL,
                   article="5-3-8")
    expect_update_events(fw, added, usecase, verified=True, activated=True)
    quiet_energy.judge(usecase, energy_before, energy_after)


@pytest.mark.parametrize("defect", ["corrupted", "other meter type"])
def test_bad_image_fails_verification_and_changes_nothing(meter, firmware, quiet_energy, bench_clock, usecase,
                                                          defect):
    fw = firmware
    if defect == "corrupted":
        image = fw.image(corrupt=True)
    else:
        image = fw.image(meter_type=fw.profile.image.meter_type + "-OTHER")
    with usecase.step("0", HEAD_END, METER, f"GET firmware identifier; a {defect} test image"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
    # Precondition: a good image verified and not activated, so that what the failed verification leaves in
    # image_to_activate_info shows (it must not still offer the image verified before).
    good = fw.image()
    initiate(fw, good, usecase, "0.1")
    transfer_all(fw, good, block_size, usecase, "0.2")
    verify_ok(fw, good, bench_clock, usecase, "0.3")
    with usecase.step("0.4", HEAD_END, METER, "GET event log, energy"):
        before = fw.events().entries()
        energy_before = quiet_energy.read()
    initiate(fw, image, usecase, "1")
    transfer_all(fw, image, block_size, usecase, "2")
    with usecase.step("3", HEAD_END, METER, "ACTION image_verify (poll the status while it runs); GET "
                                            "image_to_activate_info"):
        outcome = verify_and_wait(fw.transfer, bench_clock, fw.profile.limits.verification_time.value)
        info = fw.transfer.to_activate_info()
    usecase.expect(f"image_verify of a {defect} image answered success", outcome.answered_success, False,
                   article="5-3-8")
    usecase.expect(f"image_transfer_status after verifying a {defect} image", outcome.status,
                   TransferStatus.VERIFICATION_FAILED, article="5-3-8")
    usecase.expect("image_to_activate_info entries naming the image verified before or this one (none is ready "
                   "for activation)", [i for _, i, _ in info if i in (good.identifier, image.identifier)], [],
                   article="5-3-8")
    with usecase.step("4", HEAD_END, METER, "ACTION image_activate (must be refused); GET firmware identifier, "
                                            "status"):
        try:
            fw.transfer.activate()
            refused = ""
        except ServiceError as exc:
            refused = exc.diagnosis
        identifier = fw.identifier()
        status = fw.transfer.status()
    usecase.expect(f"image_activate of a {defect} image refused", bool(refused), True, article="5-3-8")
    usecase.expect("firmware identifier unchanged", identifier, old, article="5-3-8")
    usecase.expect("image_transfer_status after the refused activation", status, TransferStatus.VERIFICATION_FAILED,
                   article="5-3-8")
    with usecase.step("5", HEAD_END, METER, "ACTION image_block_transfer block 0 without an initiate (must be "
                                            "discarded); GET transferred blocks"):
        bits_before = fw.transfer.transferred_blocks()
        first_before = fw.transfer.first_not_transferred()
        try:
            fw.transfer.transfer_block(0, image.blocks(block_size)[0])
            discarded = False
        except ServiceError:
            discarded = True
        bits_after, first_after = fw.transfer.transferred_blocks(), fw.transfer.first_not_transferred()
    usecase.expect("a block outside an initiated transfer refused", discarded, True, article="4-21")
    usecase.expect("transferred blocks and first not transferred unchanged by it", (bits_after, first_after),
                   (bits_before, first_before), article="4-21")
    with usecase.step("6", HEAD_END, METER, "GET event log, energy register"):
        added = fw.events().new_since(before)
        energy_after = quiet_energy.read()
    expect_update_events(fw, added, usecase, verified=False, activated=False)
    quiet_energy.judge(usecase, energy_before, energy_after)


def test_block_sent_again_replaces_the_first_copy(meter, firmware, bench_clock, usecase):
    """A block the head-end sends again in the same transfer (a garbled copy repaired) replaces the first copy: the
    image verified is the one whose blocks were sent last. A meter may instead refuse the repeat, saying so; what
    it may not do is answer success and keep the garbled copy."""
    fw = firmware
    image = fw.image()
    with usecase.step("0", HEAD_END, METER, "GET image_block_size"):
        block_size = block_size_within_limits(fw, usecase)
    blocks = image.blocks(block_size)
    repaired = len(blocks) // 2
    garbled = bytes([blocks[repaired][0] ^ 0x5A]) + blocks[repaired][1:]
    initiate(fw, image, usecase, "1")
    with usecase.step("2", HEAD_END, METER, f"ACTION image_block_transfer block {repaired} with one octet garbled, "
                                            f"then blocks 0..{len(blocks) - 1} of the image (block {repaired} again, "
                                            "correct)"):
        fw.transfer.transfer_block(repaired, garbled)
        refused = ""
        for number, block in enumerate(blocks):
            try:
                fw.transfer.transfer_block(number, block)
            except ServiceError as exc:
                if number != repaired:
                    raise
                refused = exc.diagnosis or "refused"
        first, bits = fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks()
    usecase.expect("image_first_not_transferred_block_number after the last block", first, len(blocks),
                   article="4-21")
    usecase.expect("transferred blocks bit-string (block 0 first)", bits[:len(blocks)], "1" * len(blocks),
                   article="4-21")
    with usecase.step("3", HEAD_END, METER, "ACTION image_verify (poll the status while it runs); GET "
                                            "image_to_activate_info") as step:
        outcome = verify_and_wait(fw.transfer, bench_clock, fw.profile.limits.verification_time.value)
        info = fw.transfer.to_activate_info()
        step.information += f" (the repeat of block {repaired} was " + (f"refused: {refused})" if refused
                                                                      else "accepted)")
    if refused:  # the meter said it kept the first copy: the garbled image must then fail verification
        usecase.expect(f"image_transfer_status with the garbled block {repaired} kept (repeat refused)",
                       outcome.status, TransferStatus.VERIFICATION_FAILED, article="5-3-8")
        return
    usecase.expect(f"image_transfer_status after block {repaired} was sent again, correct", outcome.status,
                   TransferStatus.VERIFICATION_SUCCESSFUL, article="5-3-8")
    usecase.expect("image_to_activate_info (size, identification)", [(s, i) for s, i, _ in info],
                   [(image.size, image.identifier)], article="5-3-8")


def cut_by_dropping_the_association(meter, bench_clock, ac_source) -> str:
    meter.session.close()
    meter.session.connect()
    return "association dropped (transport closed) and opened again"


def cut_by_supply_loss(meter, bench_clock, ac_source) -> str:
    seconds = meter.profile.firmware.limits.supply_cut_length.value
    result = ac_source.dropout(seconds, bench_clock)
    reassociate(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
    return f"supply cut for {seconds:g} s at the AC source [{result.describe()}], associated again"


@pytest.mark.parametrize("cut", [cut_by_dropping_the_association, cut_by_supply_loss],
                         ids=["association dropped", "supply cut"])
def test_cut_transfer_resumes_from_first_not_transferred_block(meter, firmware, request, bench_clock, usecase, cut):
    fw = firmware
    ac_source = request.getfixturevalue("ac_source") if cut is cut_by_supply_loss else None
    image = fw.image()
    with usecase.step("0", HEAD_END, METER, "GET firmware identifier, image_block_size"):
        old = fw.identifier()
        block_size = block_size_within_limits(fw, usecase)
    count = len(image.blocks(block_size))
    if count < 4:
        pytest.fail(f"profile: image_size {fw.profile.limits.image_size.value:g} B in blocks of {block_size} B gives "
                    f"{count} blocks; the test needs at least 4 (a lost block with a transferred one after it)")
    half = count // 2
    initiate(fw, image, usecase, "1")
    with usecase.step("2", HEAD_END, METER, f"ACTION image_block_transfer blocks 0..{half - 1} and {half + 1} of "
                                            f"{count} (block {half} lost on the way)"):
        send_blocks(fw.transfer, image, block_size, [*range(half), half + 1])
    with usecase.step("3", AC_SOURCE if ac_source else HEAD_END, METER, "the transfer is cut") as step:
        step.information += f": {cut(meter, bench_clock, ac_source)}"
    with usecase.step("4", HEAD_END, METER, "GET image_transfer_status, first not transferred block, transferred "
                                            "blocks (a resuming client does not initiate while status is 1)"):
        status = fw.transfer.status()
        first = fw.transfer.first_not_transferred()
        bits = fw.transfer.transferred_blocks()
    usecase.expect("image_transfer_status after the cut", status, TransferStatus.INITIATED, article="4-21")
    usecase.expect("image_first_not_transferred_block_number after the cut (the lost block, not the count "
                   "received)", first, half, article="4-21")
    usecase.expect("transferred blocks after the cut", bits[:count], "1" * half + "01" + "0" * (count - half - 2),
                   article="4-21")
    missing = [n for n in range(first, count) if bits[n:n + 1] != "1"]
    with usecase.step("5", HEAD_END, METER, f"ACTION image_block_transfer the blocks the bit-string shows missing "
                                            f"({len(missing)} from {first}); GET first not transferred block, "
                                            "transferred blocks"):
        sent = send_blocks(fw.transfer, image, block_size, missing)
        first_after, bits_after = fw.transfer.first_not_transferred(), fw.transfer.transferred_blocks()
    usecase.expect("blocks sent after the cut", len(sent), count - half - 1, article="4-21")
    usecase.expect("image_first_not_transferred_block_number after the missing blocks", first_after, count,
                   article="4-21")
    usecase.expect("transferred blocks bit-string (block 0 first)", bits_after[:count], "1" * count, article="4-21")
    verify_ok(fw, image, bench_clock, usecase, "6")
    identifier = activate_and_wait(fw, image, bench_clock, usecase, "7")
    usecase.expect("firmware identifier changed from the old one", identifier != old, True, article="4-21")


def test_activated_firmware_survives_a_power_cycle(meter, firmware, ac_source, bench_clock, usecase):
    fw = firmware
    image = fw.image()
    with usecase.step("0", HEAD_END, METER, "GET image_block_size"):
        block_size = block_size_within_limits(fw, usecase)
    initiate(fw, image, usecase, "1")
    transfer_all(fw, image, block_size, usecase, "2")
    verify_ok(fw, image, bench_clock, usecase, "3")
    activate_and_wait(fw, image, bench_clock, usecase, "4")
    seconds = fw.profile.limits.supply_cut_length.value
    with usecase.step("5", AC_SOURCE, METER, f"supply cut for {seconds:g} s, restored; associate again; GET "
                                             "firmware identifier") as step:
        result = ac_source.dropout(seconds, bench_clock)
        step.information += f" [{result.describe()}]"
        reassociate(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
        identifier = fw.identifier()
    usecase.expect("firmware identifier after the power cycle", identifier, image.version, article="4-21")


@pytest.mark.smmc_feature("image_activation_schedule")
def test_scheduled_activation_runs_at_its_time_not_before(meter, firmware, bench_clock, usecase):
    fw = firmware
    limits = fw.profile.limits
    tolerance = limits.scheduled_activation_tolerance.value
    delay = limits.scheduled_activation_delay.value
    image = fw.image()
    try:
        with usecase.step("0", HEAD_END, METER, "GET firmware identifier, image_block_size, event log"):
            old = fw.identifier()
            block_size = block_size_within_limits(fw, usecase)
            before = fw.events().entries()
        initiate(fw, image, usecase, "1")
        transfer_all(fw, image, block_size, usecase, "2")
        verify_ok(fw, image, bench_clock, usecase, "3")
        with usecase.step("4", HEAD_END, METER, f"GET clock; SET activation schedule execution_time = meter local "
                                                f"time + {delay:g} s"):
            start = bench_clock.monotonic()
            due_local = meter_local_time(meter.clock.read()) + timedelta(seconds=delay)
            due_local = due_local.replace(microsecond=0) + timedelta(seconds=1)
            fw.schedule.set_execution_local(due_local)
            due_in = delay + 1
        with usecase.step("5", HEAD_END, METER, f"GET firmware identifier {tolerance:g} s before the due time"):
            bench_clock.sleep(max(0.0, start + due_in - tolerance - bench_clock.monotonic()))
            early = fw.identifier()
        usecase.expect(f"firmware identifier {tolerance:g} s before the scheduled activation", early, old,
                       article="5-3-8")
        with usecase.step("6", HEAD_END, METER, f"GET firmware identifier {tolerance:g} s after the due time"):
            bench_clock.sleep(max(0.0, start + due_in + tolerance - bench_clock.monotonic()))
            try:
                late = fw.identifier()
            except DlmsError:  # restarted with the new firmware
                reassociate(meter.session, bench_clock, limits.activation_time.value)
                late = fw.identifier()
            added = fw.events().new_since(before)
        usecase.expect(f"firmware identifier {tolerance:g} s after the scheduled activation", late, image.version,
                       article="5-3-8")
        expect_update_events(fw, added, usecase, verified=True, activated=True)
    finally:
        restore_all(f"meter {meter.id} activation schedule", [("execution_time cleared", fw.schedule.clear)])
