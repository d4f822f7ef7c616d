"""Meter-profile section [display]: the I1 local customer interface (aspect 4, art. 3-10).

A DSMR 5 P1-style telegram on a serial line: which OBIS lines carry which value,
how often a telegram comes and how soon a change shows. Every default describes
the bench's emulated meter; every limit is provisional until a lab sets the
official value.
"""
from __future__ import annotations

from pydantic import Field
from smmc_bench.profile.base import Limit, ObisCode, StrictModel, provisional_limit

DISPLAY_FEATURES: tuple[str, ...] = (
    "display_p1",  # I1 is a P1-style telegram on a serial port (DSMR 5 shape, CRC16)
)

ARTICLE = "3-10"


def _limit(value: float, unit: str, note: str) -> Limit:
    return provisional_limit(value, unit, ARTICLE, note)


class DisplayObjects(StrictModel):
    """COSEM objects the display's values come from (read and written over DLMS)."""

    consumer_message_text: ObisCode = "0.0.96.13.0.255"


class DisplayLines(StrictModel):
    """OBIS codes as the telegram writes them (reduced ID code, DSMR style)."""

    timestamp: str = "0-0:1.0.0"
    equipment_id: str = "0-0:96.1.1"
    energy_import: str = "1-0:1.8.0"
    power_import: str = "1-0:1.7.0"
    breaker_state: str = "0-0:96.3.10"
    text_message: str = "0-0:96.13.0"
    tariff_indicator: str = "0-0:96.14.0"
    # Import energy per tariff, tariff t at index t-1 (as the profile's tariff registers).
    tariff_energy: list[str] = ["1-0:1.8.1", "1-0:1.8.2", "1-0:1.8.3", "1-0:1.8.4"]
    energy_unit: str = "kWh"
    power_unit: str = "kW"


class DisplayLimits(StrictModel):
    telegram_period_min: Limit = _limit(0.5, "s", "shortest time between two telegrams (DSMR 5: 1 s)")
    telegram_period_max: Limit = _limit(1.5, "s", "longest time between two telegrams (DSMR 5: 1 s)")
    change_latency: Limit = _limit(5.0, "s", "from a change in the meter (message written, breaker opened) "
                                             "to the first telegram that shows it")
    power_tolerance: Limit = _limit(20.0, "W", "telegram power vs the AC source's measured power")
    energy_tolerance: Limit = _limit(2.0, "Wh", "telegram energy delta vs the energy the AC source delivered")
    timestamp_tolerance: Limit = _limit(2.0, "s", "telegram time vs the meter's clock read over DLMS")
    open_breaker_current: Limit = _limit(0.01, "A", "largest source current with the breaker shown open")


class DisplayParameters(StrictModel):
    baudrate: int = Field(default=115200, gt=0)
    telegrams_observed: int = Field(default=6, ge=3)
    energy_window_s: float = Field(default=60.0, gt=0, description="bench seconds the energy is compared over")
    sample_step_s: float = Field(default=0.1, gt=0, description="bench seconds between looks at the port")
    # The consumer message the bench writes: as long as the meter must show whole (DSMR P1 5: up to 1024
    # characters), so a display that cuts messages short is seen.
    message_length: int = Field(default=200, ge=8, le=1024)


class DisplayProfile(StrictModel):
    objects: DisplayObjects = DisplayObjects()
    lines: DisplayLines = DisplayLines()
    limits: DisplayLimits = DisplayLimits()
    parameters: DisplayParameters = DisplayParameters()
