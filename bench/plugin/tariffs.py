"""pytest fixtures for time-of-use tests (aspects 8 and 4).

- `tou`: the meter's tariff objects (activity calendar, special days, tariff
  indicator and registers); the active calendar and the test's special day are
  put back after the test.
- `demand`: the demand register and maximum demand; the demand period is put back after the test.
"""
from __future__ import annotations

import pytest
from smmc_bench.cosem.demand import DemandRegister, MaximumDemand
from smmc_bench.cosem.register import Register
from smmc_bench.cosem.tariffs import (
    ActivityCalendar,
    SpecialDays,
    TariffIndicator,
    typed_calendar,
)
from smmc_bench.safety.restore import restore_all

SPECIAL_INDEX = 4242


class Tou:
    def __init__(self, meter) -> None:
        section = meter.profile.tariffs
        self.section = section
        self.calendar = ActivityCalendar(meter.session, section.objects.activity_calendar)
        self.special_days = SpecialDays(meter.session, section.objects.special_days)
        self.indicator = TariffIndicator(meter.session, section.objects.tariff_indicator)
        self.registers = [Register(meter.session, o) for o in section.objects.tariff_registers]

    def energies(self) -> list[float]:
        return [r.read()[0] for r in self.registers]


@pytest.fixture
def tou(meter):
    """The tariff objects; the active calendar and the special days are put back after the test."""
    objects = Tou(meter)
    saved = objects.calendar.raw_active()
    try:
        yield objects
    finally:
        def restore_calendar():
            objects.calendar.write_passive_typed(*typed_calendar(*saved))
            objects.calendar.activate_passive_calendar()
            if objects.calendar.active_name() != bytes(saved[0]):
                raise AssertionError("the original calendar did not become active again")

        restore_all(f"meter {meter.id} activity calendar", [
            ("special day removed", lambda: objects.special_days.delete(SPECIAL_INDEX)),
            ("original calendar active", restore_calendar),
        ])


class DemandObjects:
    def __init__(self, meter) -> None:
        section = meter.profile.tariffs.demand
        self.section = section
        self.register = DemandRegister(meter.session, section.objects.demand_register)
        self.maximum = MaximumDemand(meter.session, section.objects.maximum_demand)


@pytest.fixture
def demand(meter):
    """The demand register and maximum demand; the demand period is put back after the test."""
    objects = DemandObjects(meter)
    saved = objects.register.period()
    try:
        yield objects
    finally:
        def restore_period():
            objects.register.set_period(saved)
            if objects.register.period() != saved:
                raise AssertionError(f"demand period reads {objects.register.period()} s, not {saved} s")

        restore_all(f"meter {meter.id} demand", [("demand period", restore_period)])
