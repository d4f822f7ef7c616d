"""Image transfer (IC 18) and the image activation schedule (IC 22) as the conformance tests see
them, and the test images the bench builds itself from the profile's [firmware.image] section.

A test image is made fresh by each test (no binaries in the repository): a header with the meter
type and the firmware version the profile's format declares, a deterministic payload, and the
digest. `corrupt` flips one payload octet after the digest was taken.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Callable

from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply, ServiceError, TemporaryFailure

IMAGE_TRANSFER = 18
SINGLE_ACTION_SCHEDULE = 22
FORMAT_VERSION = 1


class TransferStatus(IntEnum):
    NOT_INITIATED = 0
    INITIATED = 1
    VERIFICATION_INITIATED = 2
    VERIFICATION_SUCCESSFUL = 3
    VERIFICATION_FAILED = 4
    ACTIVATION_INITIATED = 5
    ACTIVATION_SUCCESSFUL = 6
    ACTIVATION_FAILED = 7


@dataclass(frozen=True)
class FirmwareImage:
    identifier: bytes  # image_identifier for image_transfer_initiate
    version: bytes  # what the firmware identifier must read once the image is active
    meter_type: bytes
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def blocks(self, block_size: int) -> list[bytes]:
        return [self.data[at:at + block_size] for at in range(0, len(self.data), block_size)]


def build_test_image(header, meter_type: str | None, version: str, size: int, *, corrupt: bool = False) -> FirmwareImage:
    """An image of about `size` octets in the profile's header format (`header`: the profile's
    [firmware.image]); `meter_type` None means the profile's own."""
    if header.format != "smmc-v1" or header.digest != "sha256":
        raise ValueError(f"the bench cannot build images of format {header.format!r} with digest {header.digest!r}")
    kind = (meter_type if meter_type is not None else header.meter_type).encode("ascii")
    ver = version.encode("ascii")
    head_len = len(header.magic) + 3 + len(kind) + len(ver) + 4
    payload_len = max(1, size - head_len - 32)
    seed = hashlib.sha256(ver + kind).digest()
    payload = (seed * (payload_len // len(seed) + 1))[:payload_len]
    body = (header.magic.encode("ascii") + bytes([FORMAT_VERSION, len(kind)]) + kind + bytes([len(ver)]) + ver
            + struct.pack(">I", payload_len) + payload)
    data = body + hashlib.sha256(body).digest()
    if corrupt:
        at = len(body) - payload_len // 2
        data = data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]
    return FirmwareImage(identifier=b"IMG-" + ver, version=ver, meter_type=kind, data=data)


class ImageTransfer:
    """IC 18 Image transfer."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def _get(self, attribute: int) -> Any:
        return self._session.get(IMAGE_TRANSFER, self.obis, attribute)

    def _action(self, method: int, parameter: Typed) -> Any:
        return self._session.action(IMAGE_TRANSFER, self.obis, method, parameter)

    def block_size(self) -> int:
        return int(self._get(2))

    def transferred_blocks(self) -> str:
        """Attribute 3 as a string of '0'/'1', block 0 first."""
        raw = self._get(3)
        if not isinstance(raw, str) or set(raw) - {"0", "1"}:
            raise MalformedReply(f"image transfer {self.obis} transferred blocks {raw!r} is not a bit-string")
        return raw

    def first_not_transferred(self) -> int:
        return int(self._get(4))

    def enabled(self) -> bool:
        return bool(self._get(5))

    def set_enabled(self, enabled: bool) -> None:
        self._session.set(IMAGE_TRANSFER, self.obis, 5, Typed(DataType.BOOLEAN, enabled))

    def status(self) -> int:
        return int(self._get(6))

    def to_activate_info(self) -> list[tuple[int, bytes, bytes]]:
        raw = self._get(7)
        try:
            return [(int(item[0]), bytes(item[1]), bytes(item[2])) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"image transfer {self.obis} image_to_activate_info {raw!r} is malformed "
                                 f"({exc})") from None

    def initiate(self, identifier: bytes, size: int) -> None:
        self._action(1, Typed(DataType.STRUCTURE, [Typed(DataType.OCTET_STRING, identifier),
                                                    Typed(DataType.DOUBLE_LONG_UNSIGNED, size)]))

    def transfer_block(self, number: int, value: bytes) -> None:
        self._action(2, Typed(DataType.STRUCTURE, [Typed(DataType.DOUBLE_LONG_UNSIGNED, number),
                                                    Typed(DataType.OCTET_STRING, value)]))

    def verify(self) -> None:
        self._action(3, Typed(DataType.INTEGER, 0))

    def activate(self) -> None:
        self._action(4, Typed(DataType.INTEGER, 0))


@dataclass(frozen=True)
class VerifyOutcome:
    answered_success: bool  # the method's own result
    temporary: bool  # it answered temporary-failure (verification still running: status polled)
    status: int  # attribute 6 once the verification ended (or the time ran out)
    diagnosis: str  # the refusal, if any
    waited_s: float

    @property
    def refusal(self) -> str:
        """The meter's refusal of the verification ('' when it accepted it or was still running)."""
        return "" if self.answered_success or self.temporary else self.diagnosis


def verify_and_wait(transfer: ImageTransfer, bench_clock, within_s: float, step_s: float = 1.0) -> VerifyOutcome:
    """Invoke verify; while it answers temporary-failure with status 2, poll the status (domain.md §8)."""
    start = bench_clock.monotonic()
    try:
        transfer.verify()
        answered, temporary, diagnosis = True, False, ""
    except TemporaryFailure as exc:
        answered, temporary, diagnosis = False, True, exc.diagnosis
    except ServiceError as exc:
        return VerifyOutcome(False, False, transfer.status(), exc.diagnosis, bench_clock.monotonic() - start)
    status = transfer.status()
    while status == TransferStatus.VERIFICATION_INITIATED and bench_clock.monotonic() - start < within_s:
        bench_clock.sleep(step_s)
        status = transfer.status()
    return VerifyOutcome(answered, temporary, status, diagnosis, bench_clock.monotonic() - start)


def send_blocks(transfer: ImageTransfer, image: FirmwareImage, block_size: int, numbers,
                on_block: Callable[[int], None] | None = None) -> list[int]:
    """Transfer the given block numbers; returns them in the order sent."""
    blocks = image.blocks(block_size)
    sent = []
    for number in numbers:
        transfer.transfer_block(number, blocks[number])
        sent.append(number)
        if on_block is not None:
            on_block(number)
    return sent


class ActivationSchedule:
    """IC 22 Single action schedule executing the image activation script."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def execution_time(self) -> list[tuple[bytes, bytes]]:
        raw = self._session.get(SINGLE_ACTION_SCHEDULE, self.obis, 4)
        return [(bytes(item[0]), bytes(item[1])) for item in raw]

    def set_execution_local(self, local: datetime) -> None:
        """Schedule the execution at `local`, the meter's local time (IC 22 time and date carry no
        deviation)."""
        time_raw = bytes([local.hour, local.minute, local.second, 0])
        date_raw = local.year.to_bytes(2, "big") + bytes([local.month, local.day, 0xFF])
        self._session.set(SINGLE_ACTION_SCHEDULE, self.obis, 4, Typed(DataType.ARRAY, [
            Typed(DataType.STRUCTURE, [Typed(DataType.OCTET_STRING, time_raw),
                                       Typed(DataType.OCTET_STRING, date_raw)])]))

    def clear(self) -> None:
        self._session.set(SINGLE_ACTION_SCHEDULE, self.obis, 4, Typed(DataType.ARRAY, []))


def meter_local_time(reading) -> datetime:
    """The meter's local wall time of a clock reading (the fields it sent, before the deviation)."""
    raw = reading.raw
    return datetime(raw.year, raw.month, raw.day, raw.hour, raw.minute, raw.second)
