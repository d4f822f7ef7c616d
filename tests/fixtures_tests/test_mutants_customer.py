"""Each customer-area mutant (aspect 4 I1 display, aspect 8 tariffs) differs from the conforming
meter in its one way.

Probes drive the telegram builder, the P1 port and the tariff objects directly, beside a conforming meter.
"""
from __future__ import annotations

import os
import re
import select
from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter
from smmc_bench.fixtures.meter.p1 import crc16

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
from smmc_bench.fixtures.meter import axdr, cosem_time
from smmc_bench.fixtures.meter.mutants import customer

CUSTOMER = sorted(m.name for m in customer.MUTANTS)
PROBED_MUTANTS = set(CUSTOMER)


def build(mutant: str | None) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), mutant=mutant)


def lines(telegram: bytes) -> dict[str, str]:
    return dict(re.findall(r"^(\d-\d:[\d.]+)\((.*)\)\r$", telegram.decode(), re.M))


def crc_ok(telegram: bytes) -> bool:
    body, _, tail = telegram.partition(b"!")
    return int(tail[:4], 16) == crc16(body + b"!")


def telegram_of(meter: EmulatedMeter) -> bytes:
    return meter.model.display_telegrams.telegram()


def test_every_customer_mutant_is_probed_here():
    assert CUSTOMER == sorted(PROBES), "a display mutant without a probe in this module"
    assert all(MUTANTS[name].aspect in (3, 4, 8) for name in CUSTOMER)


def probe_bad_crc(make):
    return crc_ok(telegram_of(make(None))) and not crc_ok(telegram_of(make("display-bad-crc")))


def _energy_after_an_hour(meter: EmulatedMeter) -> str:
    telegram_of(meter)
    meter.bench_clock.sleep(3600)
    return lines(telegram_of(meter))["1-0:1.8.0"]


def probe_energy_stale(make):
    good, bad = make(None), make("display-energy-stale")
    return (_energy_after_an_hour(good) == "000001.000*kWh"
            and _energy_after_an_hour(bad) == "000000.000*kWh")


def probe_energy_wrong_obis(make):
    good, bad = lines(telegram_of(make(None))), lines(telegram_of(make("display-energy-wrong-obis")))
    return "1-0:1.8.0" in good and "1-0:1.8.0" not in bad and "1-0:2.8.0" in bad


def probe_power_in_watts(make):
    good, bad = lines(telegram_of(make(None))), lines(telegram_of(make("display-power-in-watts")))
    return good["1-0:1.7.0"] == "01.000*kW" and bad["1-0:1.7.0"] == "1000.000*kW"


def _breaker_after_disconnect(meter: EmulatedMeter) -> str:
    meter.local_disconnect()
    assert not meter.state.output_state
    return lines(telegram_of(meter))["0-0:96.3.10"]


def probe_breaker_stale(make):
    return _breaker_after_disconnect(make(None)) == "0" and _breaker_after_disconnect(make("display-breaker-stale")) == "1"


def probe_time_in_utc(make):
    def shown(meter):
        text = lines(telegram_of(meter))["0-0:1.0.0"]
        return datetime.strptime(text[:12], "%y%m%d%H%M%S").replace(tzinfo=timezone.utc)

    good, bad = make(None), make("display-time-in-utc")
    local = good.clock.now() - timedelta(minutes=good.clock.time_zone)
    return abs((shown(good) - local).total_seconds()) <= 1 and abs((shown(bad) - local).total_seconds()) > 3000


def probe_no_blank_line(make):
    return telegram_of(make(None)).startswith(b"/EMU5EMU0000001\r\n\r\n") and \
        not telegram_of(make("display-no-blank-line")).startswith(b"/EMU5EMU0000001\r\n\r\n")


def _shows_message(meter: EmulatedMeter, wait_s: float = 0.0) -> bool:
    meter.model.consumer_message.text = b"hello"
    telegram_of(meter)
    meter.bench_clock.sleep(wait_s)
    return lines(telegram_of(meter))["0-0:96.13.0"] == b"hello".hex().upper()


def probe_message_ignored(make):
    return _shows_message(make(None)) and not _shows_message(make("display-message-ignored"), 60)


def probe_message_late(make):
    late = make("display-message-late")
    return _shows_message(make(None)) and not _shows_message(late, 1) and _shows_message(late, 31)


def _message_after_command(meter: EmulatedMeter) -> bytes:
    meter.model.display_telegrams.accept(b"0-0:96.13.0(" + b"INJECTED".hex().upper().encode() + b")\r\n")
    return meter.model.consumer_message.text


def probe_accepts_command(make):
    return _message_after_command(make(None)) == b"" and _message_after_command(make("display-accepts-command")) == b"INJECTED"


def _period(meter: EmulatedMeter) -> float:
    return meter.display._period()


def probe_period_too_long(make):
    return _period(make(None)) == 1.0 and _period(make("display-period-too-long")) > 1.5


def probe_period_too_short(make):
    return _period(make(None)) == 1.0 and _period(make("display-period-too-short")) < 0.5


# -- aspect 8 -------------------------------------------------------------------------------
# START is Monday 2025-03-10 12:00 UTC = 08:00 local (deviation 240): the default calendar's tariff 2.
def build8(mutant: str | None) -> EmulatedMeter:
    meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant, initial_clock_offset=0.0)
    meter.model.tariffs.reschedule()
    return meter


def _flat_passive(meter: EmulatedMeter, tariff: int, activation_utc) -> None:
    calendar = meter.model.tariffs.calendar
    with meter.model.lock:
        calendar.set(6, axdr.octet_string(b"NEW"))
        calendar.set(7, axdr.array([axdr.structure(axdr.octet_string(b"S"), axdr.octet_string(
            bytes.fromhex("ffff0101ff000000ff8000ff")), axdr.octet_string(b"W"))]))
        calendar.set(8, axdr.array([axdr.structure(axdr.octet_string(b"W"), *[axdr.unsigned(1)] * 7)]))
        calendar.set(9, axdr.array([axdr.structure(axdr.unsigned(1), axdr.array([axdr.structure(
            axdr.octet_string(bytes([0, 0, 0, 0xFF])), axdr.octet_string(bytes([0, 0, 10, 0, 100, 255])),
            axdr.long_unsigned(tariff))]))]))
        calendar.set(10, axdr.octet_string(cosem_time.encode(activation_utc, 240)))


def _activated_at(meter: EmulatedMeter) -> float | None:
    """Bench hours from now (writing a calendar due in 2 h) until the calendar name changes."""
    _flat_passive(meter, 3, START + timedelta(hours=2))
    for quarter in range(0, 4 * 50):
        if meter.model.tariffs.calendar.active[0] == b"NEW":
            return quarter / 4
        meter.bench_clock.sleep(900)
    return None


def probe_activated_day_late(make):
    return _activated_at(build8(None)) == 2.0 and _activated_at(build8("calendar-activated-day-late")) == 26.0


def probe_activated_day_early(make):
    return _activated_at(build8(None)) == 2.0 and _activated_at(build8("calendar-activated-day-early")) == 0.0


def probe_never_activates(make):
    return _activated_at(build8(None)) == 2.0 and _activated_at(build8("calendar-passive-never-activates")) is None


def _event_9(meter: EmulatedMeter) -> bool:
    _activated_at(meter)
    return 9 in [code for _, code in meter.model.standard_log.entries]


def probe_activation_not_logged(make):
    return _event_9(build8(None)) and not _event_9(build8("calendar-activation-not-logged"))


def _tariff_on_special_day(meter: EmulatedMeter) -> int:
    special = meter.model.tariffs.special_days
    with meter.model.lock:
        special.invoke(1, axdr.structure(axdr.long_unsigned(1), axdr.octet_string(bytes([0x07, 0xE9, 3, 11, 2])),
                                         axdr.unsigned(2)))
    meter.bench_clock.sleep(86400)  # Tuesday 08:00 local, a special day
    return meter.model.tariffs.current


def probe_special_day_ignored(make):
    return _tariff_on_special_day(build8(None)) == 4 and _tariff_on_special_day(build8("special-day-ignored")) == 2


def _tariff_after_switch(meter: EmulatedMeter, minutes: float) -> int:
    meter.bench_clock.sleep(10 * 3600 + minutes * 60)  # the 18:00 local switch to tariff 3, +/- minutes
    return meter.model.tariffs.current


def probe_switch_late(make):
    return (_tariff_after_switch(build8(None), 5) == 3
            and _tariff_after_switch(build8("tariff-switch-late"), 5) == 2)


def probe_switch_early(make):
    return (_tariff_after_switch(build8(None), -5) == 2
            and _tariff_after_switch(build8("tariff-switch-early"), -5) == 3)


def _registers_after_an_hour(meter: EmulatedMeter) -> list[int]:
    meter.bench_clock.sleep(3600)
    with meter.model.lock:
        return [r.get(2).value for r in meter.model.tariffs.registers]


def probe_registers_swapped(make):
    good, bad = _registers_after_an_hour(build8(None)), _registers_after_an_hour(build8("tariff-registers-swapped"))
    return good[1] >= 999 and good[2] == 0 and bad[2] >= 999 and bad[1] == 0


def _tariff_shown_at_18h(meter: EmulatedMeter) -> str:
    meter.model.tariffs.reschedule()
    telegram_of(meter)  # 08:00 local: tariff 2
    meter.bench_clock.sleep(10 * 3600 + 60)
    return lines(telegram_of(meter))["0-0:96.14.0"]


def probe_tariff_stale(make):
    return (_tariff_shown_at_18h(build8(None)) == "0003"
            and _tariff_shown_at_18h(build8("display-tariff-stale")) == "0002")


# -- aspect 3 -------------------------------------------------------------------------------
def _public(meter: EmulatedMeter):
    return meter.clients[16].access


def probe_public_write(make):
    good, bad = make(None), make("public-can-write-message")
    obj = good.model.consumer_message
    return (_public(good).attribute_access(obj, 2) == 1
            and _public(bad).attribute_access(bad.model.consumer_message, 2) == 3)


def probe_public_disconnect(make):
    good, bad = make(None), make("public-can-disconnect")
    return (not _public(good).method_allowed(good.disconnect_control, 1)
            and _public(bad).method_allowed(bad.disconnect_control, 1))


def probe_public_tariffs(make):
    good, bad = make(None), make("public-cannot-read-tariffs")
    return (_public(good).attribute_access(good.model.tariffs.registers[0], 2) == 1
            and _public(bad).attribute_access(bad.model.tariffs.registers[0], 2) == 0)


def probe_public_rights_list(make):
    from smmc_bench.fixtures.meter.association import listed_attribute_access
    good, bad = make(None), make("public-rights-list-lies")
    return (listed_attribute_access(_public(good), good.model.clock, 2) == 1
            and listed_attribute_access(_public(bad), bad.model.clock, 2) == 3
            and _public(bad).attribute_access(bad.model.clock, 2) == 1)


PROBES = {
    "public-rights-list-lies": probe_public_rights_list,
    "public-can-write-message": probe_public_write,
    "public-can-disconnect": probe_public_disconnect,
    "public-cannot-read-tariffs": probe_public_tariffs,
    "display-tariff-stale": probe_tariff_stale,
    "calendar-activated-day-late": probe_activated_day_late,
    "calendar-activated-day-early": probe_activated_day_early,
    "calendar-passive-never-activates": probe_never_activates,
    "calendar-activation-not-logged": probe_activation_not_logged,
    "special-day-ignored": probe_special_day_ignored,
    "tariff-switch-late": probe_switch_late,
    "tariff-switch-early": probe_switch_early,
    "tariff-registers-swapped": probe_registers_swapped,
    "display-bad-crc": probe_bad_crc,
    "display-energy-stale": probe_energy_stale,
    "display-energy-wrong-obis": probe_energy_wrong_obis,
    "display-power-in-watts": probe_power_in_watts,
    "display-breaker-stale": probe_breaker_stale,
    "display-time-in-utc": probe_time_in_utc,
    "display-no-blank-line": probe_no_blank_line,
    "display-message-ignored": probe_message_ignored,
    "display-message-late": probe_message_late,
    "display-accepts-command": probe_accepts_command,
    "display-period-too-long": probe_period_too_long,
    "display-period-too-short": probe_period_too_short,
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_mutant_differs_in_its_one_way(name):
    assert PROBES[name](build), f"{name}: the probe does not tell it from the conforming meter"


def test_period_mutants_write_at_their_period_on_the_pty():
    """The period hooks are what the served port really uses (bench time between writes)."""
    for mutant, expected in ((None, 1.0), ("display-period-too-long", 10.0)):
        meter = build(mutant)
        meter.start()
        try:
            reader = os.open(meter.display_port, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                arrivals = []
                for _ in range(400):
                    meter.bench_clock.sleep(0.1)
                    ready, _, _ = select.select([reader], [], [], 0.005)
                    if ready and os.read(reader, 65536):
                        arrivals.append(meter.bench_clock.monotonic())
                    if len(arrivals) >= 3:
                        break
                gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
                assert gaps and all(abs(g - expected) < 0.35 for g in gaps), (mutant, gaps)
            finally:
                os.close(reader)
        finally:
            meter.stop()
