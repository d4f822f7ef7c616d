"""Meter-profile section [readings]: the load profile (aspect 2, arts 3-3 and 4-10) and its
remote programming (aspect 10, arts 4-21 and 5-3).

Every default describes the bench's emulated meter; a figure the public Anexo text
does not give is provisional until a lab sets the official value here.
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from smmc_bench.profile.base import Limit, ObisCode, StrictModel

READINGS_FEATURES: tuple[str, ...] = (
    "load_profile_entries_writable",  # profile_entries (IC 7 attr 8) can be written: the wrap test sets it small
    "account_move",  # billing profile, end-of-billing script and customer data (aspect 12)
    "single_action_schedule",  # IC 22 running the end-of-billing script at its execution time (aspect 10)
    "register_monitor",  # IC 21 on instantaneous power whose upward crossing pushes to the head-end (aspect 10)
    "daily_values",  # IC 7 daily values at the meter's local midnight (aspect 2, the MDM's 24-hour export)
)


def _limit(value: float, unit: str, article: str, note: str) -> Limit:
    return Limit(value=value, unit=unit, article=article, provisional=True, note=note)


class ReadingsObjects(StrictModel):
    load_profile: ObisCode = "1.0.99.1.0.255"
    profile_status: ObisCode = "0.0.96.10.1.255"  # AMR profile status, captured beside clock and energy
    daily_values: ObisCode = "1.0.99.2.0.255"  # {clock, status, A+} at local midnight


class StatusBits(StrictModel):
    """Which bit of the AMR profile status stands for what (IDIS: bit 7, bit 5, bit 1)."""

    power_down: int = 0x80
    clock_adjusted: int = 0x20
    clock_invalid: int = 0x02

    @field_validator("power_down", "clock_adjusted", "clock_invalid")
    @classmethod
    def _one_bit(cls, value: int) -> int:
        if not (0 < value <= 0x80 and value & (value - 1) == 0):
            raise ValueError(f"a status bit is one of 0x01..0x80 (got {value:#x})")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> "StatusBits":
        if len({self.power_down, self.clock_adjusted, self.clock_invalid}) != 3:
            raise ValueError("power_down, clock_adjusted and clock_invalid must be different bits")
        return self

    def all(self) -> int:
        return self.power_down | self.clock_adjusted | self.clock_invalid


class ReadingsParameters(StrictModel):
    # The known load the bench draws, changed every load_step_s (mid-interval) through these currents.
    load_currents_a: list[float] = Field(default=[2.0, 5.0, 8.0], min_length=2)
    range_windows_h: list[int] = Field(default=[4, 24], min_length=1)
    invalid_capture_periods: list[int] = Field(default=[7, 1000, 86401], min_length=1,
                                               description="values the meter must refuse for capture_period")

    @field_validator("load_currents_a")
    @classmethod
    def _distinct_loads(cls, currents: list[float]) -> list[float]:
        if any(a == b for a, b in zip(currents, currents[1:])) or min(currents) <= 0:
            raise ValueError("load currents must be positive and each differ from the next (a shifted interval "
                             "must show)")
        return currents


class ReadingsLimits(StrictModel):
    capture_period: Limit = _limit(900.0, "s", "4-10", "load profile capture period (15 min)")
    scenario_duration: Limit = _limit(86400.0, "s", "4-10", "test parameter: meter time the load-profile "
                                                            "scenario runs (the 24 h export to the MDM)")
    load_step: Limit = _limit(3600.0, "s", "4-10", "test parameter: how long each load current is drawn")
    energy_accuracy: Limit = _limit(1.0, "%", "3-3", "class accuracy: interval, register and delivered energy "
                                                     "agree within this share (class 1, IEC 62053-21)")
    energy_resolution: Limit = _limit(1.0, "Wh", "3-3", "resolution of one energy value (register or column)")
    outage_length: Limit = _limit(300.0, "s", "4-10", "test parameter: outage injected at the source, "
                                                      "inside one interval")
    clock_adjustment: Limit = _limit(60.0, "s", "4-10", "test parameter: clock shift inside one interval")
    capture_delay: Limit = _limit(5.0, "s", "4-10", "longest time after a boundary until its row is in the "
                                                    "buffer")
    programmed_capture_period: Limit = _limit(300.0, "s", "4-21", "test parameter: capture period the bench "
                                                                  "writes (must divide the default one)")
    programmed_periods_watched: Limit = _limit(3.0, "periods", "4-21", "test parameter: new-period rows the "
                                                                      "bench checks after the write")
    wrapped_profile_entries: Limit = _limit(4.0, "rows", "4-10", "test parameter: profile_entries the bench "
                                                               "writes to see the buffer wrap")

    daily_days: Limit = _limit(3.0, "days", "4-10", "test parameter: days of known load the bench drives and "
                                                   "judges the daily values over (an outage on the second)")
    daily_entries: Limit = _limit(62.0, "days", "4-10", "fewest days the daily values keep (profile_entries "
                                                       "at least this: two months, the MDM's re-read window)")
    daily_wrap_days: Limit = _limit(70.0, "days", "4-10", "test parameter: most days the bench steps the clock "
                                                         "through to fill the daily values and see them wrap "
                                                         "(a larger profile_entries is skipped)")
    daily_time_zone_step: Limit = _limit(60.0, "min", "4-10", "test parameter: how far the bench moves the time "
                                                             "zone's deviation to see the daily capture follow "
                                                             "local midnight")

    @model_validator(mode="after")
    def _periods(self) -> "ReadingsLimits":
        period, programmed = self.capture_period.value, self.programmed_capture_period.value
        if period <= 0 or programmed <= 0 or period % programmed or period == programmed:
            raise ValueError("programmed_capture_period must divide capture_period and differ from it")
        if self.outage_length.value >= period / 2 or self.clock_adjustment.value >= period / 4:
            raise ValueError("outage_length must be under half and clock_adjustment under a quarter of the "
                             "capture period (each stays inside one interval)")
        return self


class AccountObjects(StrictModel):
    """Aspect 12 (account move, art. 5-1): what the move runs and rewrites."""

    billing_profile: ObisCode = "0.0.98.1.0.255"  # {clock, A+ energy, billing period counter}
    billing_script_table: ObisCode = "0.0.10.0.1.255"
    billing_script_id: int = Field(default=1, ge=0, le=0xFFFF)
    billing_period_counter: ObisCode = "0.0.0.1.0.255"
    customer_data: ObisCode = "0.0.96.1.10.255"  # octet string naming the customer at this supply point


class AccountMove(StrictModel):
    objects: AccountObjects = AccountObjects()
    new_customer_data: str = Field(default="CUSTOMER-0002", min_length=1, max_length=32)
    customer_data_octets: Limit = _limit(32.0, "octets", "5-1", "longest customer data the meter must hold "
                                                                 "(the bench writes exactly this many octets, "
                                                                 "then one more that must be refused)")
    usage_before_move: Limit = _limit(3600.0, "s", "5-1", "test parameter: the leaving customer's consumption "
                                                         "the bench delivers before the move")
    usage_after_move: Limit = _limit(900.0, "s", "5-1", "test parameter: the new customer's consumption the "
                                                        "bench delivers after the move")
    billing_stamp_tolerance: Limit = _limit(5.0, "s", "5-1", "largest difference between the billing row's "
                                                             "stamp and the meter time of the script's execution")
    billing_counter_modulus: Limit = _limit(256.0, "periods", "5-1", "the billing period counter counts 0 .. this "
                                                                     "- 1, then 0 again (an IC 1 unsigned: 256; a "
                                                                     "meter numbering VZ as OBIS value group F, "
                                                                     "0..99, declares 100)")
    billing_counter_closes: Limit = _limit(300.0, "periods", "5-1", "test parameter: most billing periods the "
                                                                    "bench closes to see the billing period counter "
                                                                    "wrap (more is skipped)")
    billing_wrap_closes: Limit = _limit(40.0, "periods", "5-1", "test parameter: most billing periods the bench "
                                                                "closes to fill the billing profile and see it wrap "
                                                                "(a larger profile_entries is skipped)")


class ScheduledObjects(StrictModel):
    single_action_schedule: ObisCode = "0.0.15.0.0.255"  # end of billing: runs the billing script
    register_monitor: ObisCode = "0.0.16.1.0.255"  # thresholds on instantaneous active power
    push_script_table: ObisCode = "0.0.10.0.108.255"  # the monitor's action_up: script 1 pushes the alarm push


class ScheduledProgramming(StrictModel):
    """Aspect 10 (arts 4-21, 5-3): a scheduled action, register-monitor thresholds and push destinations,
    each written remotely, read back and taking effect when it should."""

    objects: ScheduledObjects = ScheduledObjects()
    monitor_script_selector: int = Field(default=1, ge=1, le=0xFFFF,
                                         description="push script the monitor's action_up names")
    schedule_lead: Limit = _limit(600.0, "s", "4-21", "test parameter: how far ahead of the write the bench "
                                                      "sets the scheduled action's execution time")
    schedule_tolerance: Limit = _limit(5.0, "s", "4-21", "a scheduled action may run this early or late "
                                                         "against its execution time (meter clock)")
    monitor_threshold: Limit = _limit(1500.0, "W", "5-3", "test parameter: register-monitor threshold the "
                                                          "bench writes on instantaneous active power")
    monitor_margin: Limit = _limit(3.0, "%", "5-3", "test parameter: the bench's load sits this share below, "
                                                    "then above, the threshold: a crossing by this much must run "
                                                    "the action (IC 21 has no hysteresis), so no more than the "
                                                    "meter's power accuracy (class 1) plus the load's setting "
                                                    "accuracy, with room to spare")
    monitor_action_delay: Limit = _limit(30.0, "s", "5-3", "longest time from the threshold crossing until its "
                                                           "action's push reaches the head-end")
    push_delay: Limit = _limit(30.0, "s", "4-21", "longest time from a push request until the push reaches its "
                                                  "destination")
    invalid_monitor_thresholds: list[int] = Field(default=[-1], description="threshold values the meter must "
                                                                            "refuse (a negative power)")

    @model_validator(mode="after")
    def _window(self) -> "ScheduledProgramming":
        if self.schedule_lead.value <= 4 * self.schedule_tolerance.value:
            raise ValueError("schedule_lead must exceed four times schedule_tolerance (before and after samples)")
        if not 0 < self.monitor_margin.value < 50:
            raise ValueError("monitor_margin must be between 0 and 50 %")
        return self


class ReadingsProfile(StrictModel):
    objects: ReadingsObjects = ReadingsObjects()
    status_bits: StatusBits = StatusBits()
    parameters: ReadingsParameters = ReadingsParameters()
    limits: ReadingsLimits = ReadingsLimits()
    account_move: AccountMove = AccountMove()
    scheduled: ScheduledProgramming = ScheduledProgramming()
    parameter_change_event: int = Field(default=47, ge=0, le=255,
                                        description="event logged when the capture period is written (IDIS 47)")
