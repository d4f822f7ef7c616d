"""The [readings] meter-profile section: defaults that describe the emulated meter, and the
figures a lab could mistype refused with a message naming them."""
from __future__ import annotations

import pytest
from pydantic import ValidationError
from smmc_bench.profile.meter import load_profile
from smmc_bench.profile.readings import (
    ReadingsLimits,
    ReadingsParameters,
    ReadingsProfile,
    StatusBits,
)


def test_emulated_profile_declares_the_load_profile_and_account_move():
    profile = load_profile("emulated-idis")
    assert profile.has("load_profile") and profile.has("account_move")
    readings = profile.readings
    assert readings.limits.capture_period.value == 900 and readings.limits.capture_period.article == "4-10"
    assert readings.status_bits.all() == 0x80 | 0x20 | 0x02
    assert readings.account_move.objects.billing_profile == "0.0.98.1.0.255"


def test_every_readings_limit_names_its_article():
    limits = ReadingsProfile().limits
    for name in type(limits).model_fields:
        assert getattr(limits, name).article, name


@pytest.mark.parametrize("bits", [{"power_down": 0x81}, {"clock_adjusted": 0x80}, {"clock_invalid": 0}])
def test_status_bits_are_single_and_distinct(bits):
    with pytest.raises(ValidationError):
        StatusBits(**bits)


def test_programmed_period_must_divide_the_capture_period_and_differ():
    base = ReadingsLimits().capture_period.model_dump()
    for programmed in (900.0, 420.0):
        with pytest.raises(ValidationError, match="programmed_capture_period"):
            ReadingsLimits(programmed_capture_period={**base, "value": programmed, "article": "4-21"})


def test_events_stay_inside_one_interval():
    base = ReadingsLimits().outage_length.model_dump()
    with pytest.raises(ValidationError, match="inside one interval"):
        ReadingsLimits(outage_length={**base, "value": 600.0})


def test_load_steps_must_change_the_load():
    with pytest.raises(ValidationError, match="differ from the next"):
        ReadingsParameters(load_currents_a=[5.0, 5.0])
