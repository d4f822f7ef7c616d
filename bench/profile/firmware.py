"""Meter-profile section [firmware]: remote firmware update (aspect 9, arts 4-21 and 5-3-8).

The image transfer object (IC 18), what the meter expects in an image's header (the bench
builds its test images from this: no binaries in the repository), the events the update
logs and the figures it is judged by. Every default describes the bench's emulated meter;
every limit is provisional until a lab sets the official value.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from smmc_bench.profile.base import Limit, ObisCode, StrictModel
from smmc_bench.profile.base import provisional_limit as _limit

FIRMWARE_FEATURES: tuple[str, ...] = (
    "image_activation_schedule",  # a single-action schedule (IC 22) runs the activation at a set time
)


class FirmwareObjects(StrictModel):
    image_transfer: ObisCode = "0.0.44.0.0.255"
    # The active firmware version the update must change (IDIS: active firmware identifier).
    firmware_identifier: ObisCode = "1.0.0.2.0.255"
    activation_schedule: ObisCode = "0.0.15.0.2.255"  # IC 22, executes the activation script
    event_log: ObisCode = "0.0.99.98.0.255"  # where events 17, 18 and 51 go


class FirmwareEvents(StrictModel):
    ready_for_activation: int = Field(default=17, ge=0, le=255)
    activated: int = Field(default=18, ge=0, le=255)
    verification_failed: int = Field(default=51, ge=0, le=255)


class ImageHeader(StrictModel):
    """What the meter checks in an image before it may run it.

    `smmc-v1`: magic | format 1 (u8) | len (u8) + meter type | len (u8) + version | payload
    length (u32, big-endian) | payload | digest of everything before it. The firmware
    identifier reads the header's version once the image is active."""

    format: Literal["smmc-v1"] = "smmc-v1"
    magic: str = Field(default="SMFW", min_length=1, max_length=8)
    meter_type: str = Field(default="EMU-IDIS", min_length=1, max_length=64)
    digest: Literal["sha256"] = "sha256"


class FirmwareLimits(StrictModel):
    image_size: Limit = _limit(4096.0, "B", "4-21", "test parameter: size of the test images the bench builds")
    min_block_size: Limit = _limit(64.0, "B", "4-21", "smallest image_block_size the bench accepts (a block "
                                                      "must fit one APDU with room to spare)")
    max_block_size: Limit = _limit(960.0, "B", "4-21", "largest image_block_size the bench accepts (one ACTION "
                                                       "of the negotiated PDU size)")
    verification_time: Limit = _limit(60.0, "s", "5-3-8", "longest time the verification may answer "
                                                          "temporary-failure (status 2) before it ends")
    activation_time: Limit = _limit(60.0, "s", "5-3-8", "longest time from activate until the meter answers "
                                                        "with the new firmware identifier")
    scheduled_activation_delay: Limit = _limit(300.0, "s", "5-3-8", "test parameter: how far ahead of the "
                                                                    "meter's time the bench schedules the "
                                                                    "activation")
    scheduled_activation_tolerance: Limit = _limit(5.0, "s", "5-3-8", "a scheduled activation may come this "
                                                                      "early or late")
    supply_cut_length: Limit = _limit(10.0, "s", "5-3-8", "test parameter: the supply cut the bench injects "
                                                          "mid-transfer and after activation")
    energy_resolution: Limit = _limit(1.0, "Wh", "5-3-8", "largest change of the energy register across the "
                                                          "update with no load")

    @model_validator(mode="after")
    def _blocks(self) -> "FirmwareLimits":
        if self.min_block_size.value > self.max_block_size.value:
            raise ValueError("min_block_size must not exceed max_block_size")
        if self.image_size.value < 3 * self.max_block_size.value / 2 and self.image_size.value < 1024:
            raise ValueError("image_size must span several blocks (a transfer is cut midway)")
        return self


class FirmwareProfile(StrictModel):
    objects: FirmwareObjects = FirmwareObjects()
    events: FirmwareEvents = FirmwareEvents()
    image: ImageHeader = ImageHeader()
    limits: FirmwareLimits = FirmwareLimits()
