"""Meter-profile section [tariffs]: time-of-use tariffs (aspect 8, arts 4-17-6 and 4-10-8).

Every default describes the bench's emulated meter; every limit is provisional
until a lab sets the official value.
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from smmc_bench.profile.base import Limit, ObisCode, StrictModel
from smmc_bench.profile.base import provisional_limit as _limit

TARIFF_FEATURES: tuple[str, ...] = (
    "tou_calendar",  # activity calendar (IC 20), special days (IC 11), tariff registers 1-0:1.8.t
    "demand",  # demand register (IC 5) and maximum demand (IC 4) of active power import
    "register_activation",  # IC 6: the active mask names the tariff register being booked
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
    register_activation: ObisCode = "0.0.14.0.1.255"  # IC 6, its masks activate the tariff registers


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
    switch_margin_s: float = Field(default=600.0, gt=0, description="how long before each tariff switch the "
                                   "bench last reads the tariff registers: the energy metered from then until "
                                   "the switch must be booked to the old tariff (several switch tolerances, so "
                                   "energy booked to the wrong side of the switch exceeds what its timing allows)")


class DemandObjects(StrictModel):
    demand_register: ObisCode = "1.0.1.4.0.255"  # IC 5, block demand of active power import
    maximum_demand: ObisCode = "1.0.1.6.0.255"  # IC 4, its largest period average and the period's end


class DemandLimits(StrictModel):
    demand_accuracy: Limit = _limit(1.0, "%", "4-10-8", "a period average vs the energy the bench delivered in "
                                                        "that period / the period (class 1, IEC 62053-21)")
    demand_floor: Limit = _limit(0.2, "W", "4-10-8", "absolute allowance on top of the relative one (resolution)")
    boundary_tolerance: Limit = _limit(2.0, "s", "4-17-6", "how far from a period boundary the bench reads "
                                                           "(twice this before it): the meter's clock against the "
                                                           "bench's view of it. The stamps themselves "
                                                           "(capture_time, start_time_current, the maximum's "
                                                           "capture time) are the boundary, to the second")
    update_delay: Limit = _limit(5.0, "s", "4-17-6", "after a period boundary the meter has this long to show the "
                                                     "new period average (the bench reads then)")
    shortest_period: Limit = _limit(60.0, "s", "4-17-6", "shortest demand period the meter accepts (the lower end "
                                                         "of the range it must take, both ends included)")
    longest_period: Limit = _limit(3600.0, "s", "4-17-6", "longest demand period the meter accepts (the upper end "
                                                          "of the range it must take: one hour, included)")


class DemandParameters(StrictModel):
    period_s: int = Field(default=900, gt=0, le=86400, description="the demand period the meter runs by default")
    new_period_s: int = Field(default=300, gt=0, le=86400, description="a period the bench writes and expects "
                                                                       "accepted (must divide the default one)")
    refused_periods_s: list[int] = Field(default=[0, 7, 7200], min_length=1,
                                         description="periods the meter must refuse (out of range)")
    reset_at_billing: bool = Field(default=True, description="the end of billing resets the maximum demand")
    # One list per demand period of (fraction of the period, current A) steps the load takes; the
    # first step at fraction 0. A short peak inside a period tells its average from its peak; a low
    # step (0.3 A: 16.5 Wh in 15 min at 220 V) needs the energy finer than the register's whole Wh.
    load_steps: list[list[tuple[float, float]]] = Field(
        default=[[(0.0, 4.0)], [(0.0, 6.0)], [(0.0, 1.0), (0.75, 12.0)], [(0.0, 0.3)]], min_length=2)

    @field_validator("load_steps")
    @classmethod
    def _steps(cls, steps: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for schedule in steps:
            fractions = [f for f, _ in schedule]
            if not schedule or fractions[0] != 0.0 or fractions != sorted(set(fractions)) or fractions[-1] >= 1.0:
                raise ValueError("each period's steps start at fraction 0 and rise strictly below 1")
            if any(amps < 0 for _, amps in schedule):
                raise ValueError("load currents are not negative")
        return steps


class DemandProfile(StrictModel):
    objects: DemandObjects = DemandObjects()
    limits: DemandLimits = DemandLimits()
    parameters: DemandParameters = DemandParameters()

    @model_validator(mode="after")
    def _range(self) -> "DemandProfile":
        low, high = self.limits.shortest_period.value, self.limits.longest_period.value
        inside = [p for p in (self.parameters.period_s, self.parameters.new_period_s) if not low <= p <= high]
        if not 0 < low <= high or inside:
            raise ValueError(f"demand shortest_period {low:g} s .. longest_period {high:g} s must be a range holding "
                             f"period_s and new_period_s (outside: {inside})")
        wrong = [p for p in self.parameters.refused_periods_s if p in (low, high)]
        if wrong:
            raise ValueError(f"refused_periods_s {wrong} are the ends of the range the meter must accept")
        return self


class TariffProfile(StrictModel):
    objects: TariffObjects = TariffObjects()
    events: TariffEvents = TariffEvents()
    limits: TariffLimits = TariffLimits()
    parameters: TariffParameters = TariffParameters()
    demand: DemandProfile = DemandProfile()  # demand and maximum demand (feature "demand")
