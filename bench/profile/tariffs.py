"""Meter-profile section [tariffs]: time-of-use tariffs (aspect 8, arts 4-17-6 and 4-10-8).

Every default describes the bench's emulated meter; every limit is provisional
until a lab sets the official value.
"""
from __future__ import annotations

from pydantic import Field
from smmc_bench.profile.base import Limit, ObisCode, StrictModel
from smmc_bench.profile.base import provisional_limit as _limit

TARIFF_FEATURES: tuple[str, ...] = (
    "tou_calendar",  # activity calendar (IC 20), special days (IC 11), tariff registers 1-0:1.8.t
)


class TariffObjects(StrictModel):
    activity_calendar: ObisCode = "0.0.13.0.0.255"
    special_days: ObisCode = "0.0.11.0.0.255"
    tariff_indicator: ObisCode = "0.0.96.14.0.255"
    tariff_script_table: ObisCode = "0.0.10.0.100.255"
    # Import energy per tariff, tariff t at index t-1 (the script selector of a day action).
    tariff_registers: list[ObisCode] = Field(
        default=["1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.1.8.3.255", "1.0.1.8.4.255"], min_length=2)
    # Where event 9 (TOU activated) goes.
    tou_event_log: ObisCode = "0.0.99.98.0.255"


class TariffEvents(StrictModel):
    tou_activated: int = 9


class TariffLimits(StrictModel):
    switch_tolerance: Limit = _limit(60.0, "s", "4-17-6", "a tariff switch or calendar activation may come "
                                                          "this early or late against the reference time")
    tariff_energy_tolerance: Limit = _limit(1.0, "%", "4-10-8", "energy in a tariff register vs the energy the "
                                                                "bench delivered in that tariff's hours")
    tariff_energy_floor: Limit = _limit(2.0, "Wh", "4-10-8", "absolute allowance on top of the relative one "
                                                             "(register resolution)")


class TariffParameters(StrictModel):
    activation_delay_s: float = Field(default=3600.0, gt=0, description="from writing the passive calendar "
                                                                         "to its activation time")
    scenario_days: int = Field(default=7, ge=1, description="simulated days of the tariff energy scenario")


class TariffProfile(StrictModel):
    objects: TariffObjects = TariffObjects()
    events: TariffEvents = TariffEvents()
    limits: TariffLimits = TariffLimits()
    parameters: TariffParameters = TariffParameters()
