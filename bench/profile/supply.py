"""Meter-profile section [supply]: what the supply-side tests (aspects 6, 7, 14, 15)
need to know of a meter model, and the figures they judge it by.

Every default describes the bench's emulated meter; every limit names its
Anexo article and is provisional until a lab sets the official value.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from smmc_bench.profile.base import Limit, ObisCode, StrictModel
from smmc_bench.profile.base import provisional_limit as _limit

SUPPLY_FEATURES: tuple[str, ...] = (
    "power_failure_log",  # IC 7 power-failure log with {time, duration} entries
    "alarm_register",  # alarm register 1 and its filter
    "alarm_push",  # alarm push setup (IC 40) pushing on power up
    "limiter_emergency_profile",  # limiter attributes 8-10
    "local_limiter",  # limits set through the optical port, local disconnection, button reconnects
)



class SupplyObjects(StrictModel):
    limiter: ObisCode = "0.0.17.0.0.255"
    power_failure_log: ObisCode = "1.0.99.97.0.255"
    power_failure_count: ObisCode = "0.0.96.7.21.255"
    long_power_failure_count: ObisCode = "0.0.96.7.9.255"
    # IC 3, seconds: the duration of the last long power failure (the power-failure log's duration column).
    long_power_failure_duration: ObisCode = "0.0.96.7.19.255"
    alarm_register: ObisCode = "0.0.97.98.0.255"
    alarm_filter: ObisCode = "0.0.97.98.10.255"
    alarm_push_setup: ObisCode = "0.4.25.9.0.255"
    instantaneous_voltage: ObisCode = "1.0.32.7.0.255"
    instantaneous_current: ObisCode = "1.0.31.7.0.255"
    instantaneous_active_power: ObisCode = "1.0.1.7.0.255"
    # Where the meter logs power down/up, and where the limiter's and breaker's local events go.
    power_event_log: ObisCode = "0.0.99.98.0.255"
    limiter_event_log: ObisCode = "0.0.99.98.2.255"



class SupplyEvents(StrictModel):
    power_down: int = 1
    power_up: int = 2
    manual_reconnect: int = 61
    local_disconnect: int = 64
    limiter_threshold_exceeded: int = 65
    limiter_threshold_ok: int = 66
    limiter_threshold_changed: int = 67
    local_reconnect: int = 69


class SupplyAlarms(StrictModel):
    # Alarm register 1 bit set at power up (DSMR/SMR layout: LSB = bit 0, power up = bit 2).
    power_up_bit: int = Field(default=2, ge=0, le=31)
    # DSMR/SMR: the register records every alarm and the filter only chooses what is pushed;
    # true for meters whose filter also keeps masked alarms out of the register.
    filter_masks_register: bool = False
    # A-XDR type of the alarm register and filter values.
    value_type: Literal["double_long_unsigned", "long64_unsigned"] = "double_long_unsigned"


class ShortInterruptions(StrictModel):
    """How the meter treats an interruption shorter than limits.short_interruption_threshold."""

    events_logged: bool = True  # events 1/2 still logged
    counted: bool = True  # the power-failure counter still counts it
    power_failure_log_entry: bool = False  # only long failures go to the power-failure log


class PowerFailureLogSettings(StrictModel):
    # What an entry's time names: the loss of supply ("start") or its return ("end", DSMR style).
    stamp: Literal["start", "end"] = "start"


class LimiterSettings(StrictModel):
    # A-XDR type of thresholds: the type of the monitored value (active power: double-long).
    threshold_type: Literal["double_long", "double_long_unsigned", "long_unsigned", "long64",
                            "long64_unsigned"] = "double_long"
    # The control mode aspect 15 runs in: one where a local trip waits for the button (transition e)
    # and the limiter cannot reconnect by itself (no transition h): modes 1-4.
    local_control_mode: int = Field(default=2, ge=1, le=4)
    emergency_profile_id: int = Field(default=1, ge=0, le=0xFFFF)


class SupplyLimits(StrictModel):
    # Aspect 7, art. 5-4: outages, events and alarms.
    outage_length: Limit = _limit(
        300.0, "s", "5-4", "test parameter: the outage the bench injects (longer than short_interruption_threshold)")
    short_interruption_threshold: Limit = _limit(
        180.0, "s", "5-4", "interruptions shorter than this are short (EN 50160: 3 min); the meter's boundary")
    short_interruption_length: Limit = _limit(
        10.0, "s", "5-4", "test parameter: the short interruption the bench injects")
    power_failure_duration_tolerance: Limit = _limit(
        2.0, "s", "5-4", "largest error of a power-failure entry's duration against the outage injected")
    restart_time: Limit = _limit(
        30.0, "s", "5-4", "longest time from restoration until the meter answers the head-end (OMS poll)")
    alarm_push_max_delay: Limit = _limit(
        60.0, "s", "5-4", "longest time from restoration until the alarm push reaches the head-end")
    restored_voltage_tolerance: Limit = _limit(
        5.0, "%", "5-4", "largest difference between the meter's voltage reading and the source's after restoration")
    # Aspects 14/15, art. 5-3: the limiter.
    limiter_threshold: Limit = _limit(
        3000.0, "W", "5-3", "test parameter: threshold_normal the bench writes (monitored value: active power)")
    limiter_emergency_threshold: Limit = _limit(
        1500.0, "W", "5-3", "test parameter: threshold_emergency the bench writes")
    limiter_min_over_threshold_duration: Limit = _limit(
        60.0, "s", "5-3", "test parameter: min_over_threshold_duration the bench writes")
    limiter_min_under_threshold_duration: Limit = _limit(
        30.0, "s", "5-3", "test parameter: min_under_threshold_duration the bench writes")
    overload_power: Limit = _limit(
        4500.0, "W", "5-3", "test parameter: load the bench draws to exceed limiter_threshold")
    underload_power: Limit = _limit(
        1100.0, "W", "5-3", "test parameter: load the bench draws to stay under both thresholds")
    short_overload_length: Limit = _limit(
        20.0, "s", "5-3", "test parameter: an overload shorter than min_over_threshold_duration")
    limiter_trip_tolerance: Limit = _limit(
        5.0, "s", "5-3", "how long after min_over_threshold_duration the breaker may open and the current stop")
    limiter_reconnect_tolerance: Limit = _limit(
        5.0, "s", "5-3", "how long after min_under_threshold_duration event 66 and the reconnection may come")
    emergency_activation_delay: Limit = _limit(
        120.0, "s", "5-3", "test parameter: how far ahead of the meter's time the emergency profile starts")
    emergency_duration: Limit = _limit(
        600.0, "s", "5-3", "test parameter: emergency_duration the bench writes")
    emergency_switch_tolerance: Limit = _limit(
        2.0, "s", "5-3", "largest delay of threshold_active switching at emergency activation and expiry")
    # Aspect 6 at the supply, art. 3-3.
    test_load_current: Limit = _limit(
        5.0, "A", "3-3", "test parameter: load current the bench draws through the meter")
    current_off_threshold: Limit = _limit(
        0.1, "A", "3-3", "source current below this counts as no load current (source measurement floor)")
    current_off_time: Limit = _limit(
        10.0, "s", "3-3", "longest time from remote_disconnect until the source current is below the threshold")
    current_on_time: Limit = _limit(
        10.0, "s", "3-3", "longest time from a reconnection until the load current flows again")
    load_current_tolerance: Limit = _limit(
        10.0, "%", "3-3", "largest shortfall of the source current against the load drawn, when connected")
    energy_observation_time: Limit = _limit(
        900.0, "s", "3-3", "test parameter: how long the bench integrates the source power against the register")
    energy_register_tolerance: Limit = _limit(
        1.0, "%", "3-3", "largest difference between the register's energy and the energy the source delivered "
        "(class 1 meter; the register's 1 Wh resolution is added)")


class SupplyProfile(StrictModel):
    objects: SupplyObjects = SupplyObjects()
    events: SupplyEvents = SupplyEvents()
    alarms: SupplyAlarms = SupplyAlarms()
    short_interruptions: ShortInterruptions = ShortInterruptions()
    power_failure_log: PowerFailureLogSettings = PowerFailureLogSettings()
    limiter: LimiterSettings = LimiterSettings()
    limits: SupplyLimits = SupplyLimits()
