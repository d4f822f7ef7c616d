"""Aspect 4 (art. 3-10): interface I1, meter -> customer display.

Use case (Customer display / HAN device pricing): the meter writes, every
period, a P1-style telegram on its local customer port: OBIS-coded lines with
its time, identity, energy, power, breaker state and the consumer message the
head-end left for the customer, closed by a CRC. The display (here the bench,
listening on the real serial port) shows them. The bench checks the telegram's
form and period on its own clock, compares each value with the meter's own
register (read over DLMS) and with what the AC source measured, sees a change
reach the display within the profile's time, and checks that the port takes no
command.
"""
from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta, timezone

import pytest
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.register import Register
from smmc_bench.cosem.tariffs import TouPlan
from smmc_bench.plugin.display import consumer_message, display  # noqa: F401 (fixtures)
from smmc_bench.plugin.supply import optional_load, source_current_a
from smmc_bench.plugin.tariffs import tou  # noqa: F401 (fixture)
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(4), pytest.mark.smmc_ntd("3-10"), pytest.mark.smmc_feature("display_p1")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
DISPLAY = "Display (bench, on the I1 port)"
AC_SOURCE = "AC source (bench)"
ARTICLE = "3-10"
CLOCK_STATUS_DST = 0x80  # Blue Book IC 8 clock_status bit 7: daylight saving active


@pytest.fixture
def connected(request, meter):
    """The breaker connected at the start, a known load drawing where the bench has one (values at zero
    would agree whatever the display showed), and the breaker put back connected, in its mode, after."""
    dc = meter.disconnect_control
    original_mode = dc.control_mode()
    restore_connected(dc, meter.profile.disconnector.control_modes, original_mode)
    load = optional_load(request)
    if load is not None:
        load.set_current(meter.profile.supply.limits.test_load_current.value)
        load.on()
    try:
        yield dc
    finally:
        restore_all(f"meter {meter.id} disconnect control", [
            ("breaker reconnected, control mode restored",
             lambda: restore_connected(dc, meter.profile.disconnector.control_modes, original_mode)),
        ])


def next_telegram(display, meter):
    """The next complete telegram (None if none came within the longest period, twice)."""
    limit = meter.profile.display.limits.telegram_period_max.value
    found = display.collect(1, 2 * limit)
    return found[0] if found else None


def telegram_time(text: str | None, deviation_min: int) -> datetime | None:
    """The telegram's 'YYMMDDhhmmssX' local time as UTC (deviation = UTC - local, Blue Book)."""
    if text is None or len(text) != 13 or text[-1] not in "SW":
        return None
    try:
        local = datetime.strptime(text[:12], "%y%m%d%H%M%S")
    except ValueError:
        return None
    return (local + timedelta(minutes=deviation_min)).replace(tzinfo=timezone.utc)


def number(telegram, obis: str) -> float:
    value = telegram.value(obis) if telegram else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def expect_telegram(usecase, telegram, what: str) -> None:
    usecase.expect(f"{what}: a telegram arrived", telegram is not None, True, article=ARTICLE)
    usecase.expect(f"{what}: framing and CRC problems", list(telegram.problems), [], article=ARTICLE)


def text_shown(telegram, lines) -> bytes | None:
    value = telegram.value(lines.text_message)
    try:
        return bytes.fromhex(value) if value else b""
    except ValueError:
        return None


def test_telegram_period_and_framing(meter, display, usecase):
    section = meter.profile.display
    limits, count = section.limits, section.parameters.telegrams_observed
    with usecase.step("1", METER, DISPLAY, f"listen for {count} telegrams on the I1 port"):
        display.discard()
        telegrams = display.collect(count, (count + 1) * limits.telegram_period_max.value)
    usecase.expect("telegrams received", len(telegrams), count, article=ARTICLE)
    for index, telegram in enumerate(telegrams):
        usecase.expect(f"telegram {index + 1}: framing and CRC problems", list(telegram.problems), [],
                       article=ARTICLE)
    periods = [b.received_at - a.received_at for a, b in zip(telegrams, telegrams[1:])]
    low, high = limits.telegram_period_min, limits.telegram_period_max
    usecase.measure("shortest time between telegrams", min(periods), low=low.value, high=high.value,
                    unit=low.unit, article=low.article)
    usecase.measure("longest time between telegrams", max(periods), low=low.value, high=high.value,
                    unit=high.unit, article=high.article)
    with usecase.step("2", HEAD_END, METER, "GET serial number (IC 1 attr 2)"):
        serial = meter.session.get(1, meter.profile.objects.serial_number, 2)
    shown = telegrams[-1].value(section.lines.equipment_id)
    usecase.expect("equipment identifier shown (hex of the serial number)",
                   shown.upper() if shown else shown, bytes(serial).hex().upper(), article=ARTICLE)


def test_values_equal_meter_registers_and_bench(meter, display, connected, ac_source, bench_clock, usecase):
    section = meter.profile.display
    lines, limits = section.lines, section.limits
    energy_register = meter.active_energy_import
    power_register = Register(meter.session, meter.profile.supply.objects.instantaneous_active_power)
    with usecase.step("1", HEAD_END, METER, "GET clock time, time_zone; GET active energy import"):
        deviation = meter.clock.time_zone()
        clock_before = meter.clock.read()
        time_before = clock_before.time
        energy_before, _ = energy_register.read()
        display.discard()
    with usecase.step("2", METER, DISPLAY, "next telegram"):
        telegram = next_telegram(display, meter)
    with usecase.step("3", HEAD_END, METER, "GET active energy import, active power; GET clock time"):
        energy_after, _ = energy_register.read()
        power_meter, _ = power_register.read()
        clock_after = meter.clock.read()
        time_after = clock_after.time
    with usecase.step("4", HEAD_END, AC_SOURCE, "MEAS power, current"):
        reading = ac_source.measure()
    expect_telegram(usecase, telegram, "values")
    usecase.expect("energy unit", telegram.unit(lines.energy_import), lines.energy_unit, article=ARTICLE)
    usecase.expect("power unit", telegram.unit(lines.power_import), lines.power_unit, article=ARTICLE)
    shown_wh = number(telegram, lines.energy_import) * 1000
    usecase.measure("telegram energy below the register read before it (Wh)", energy_before - shown_wh,
                    high=0.5, unit="Wh", article=ARTICLE)
    usecase.measure("telegram energy above the register read after it (Wh)", shown_wh - energy_after,
                    high=0.5, unit="Wh", article=ARTICLE)
    shown_w = number(telegram, lines.power_import) * 1000
    usecase.measure("telegram power vs AC source power (W)", abs(shown_w - reading.power_w),
                    limit=limits.power_tolerance)
    usecase.measure("telegram power vs the meter's power register (W)", abs(shown_w - power_meter),
                    limit=limits.power_tolerance)
    shown_time = telegram_time(telegram.value(lines.timestamp), deviation)
    usecase.expect("telegram time is a valid YYMMDDhhmmssX", shown_time is not None, True, article=ARTICLE)
    outside = max((time_before - shown_time).total_seconds() - 1.0,  # the telegram drops sub-seconds
                  (shown_time - time_after).total_seconds(), 0.0)
    usecase.measure("telegram time outside the meter clock's reads", outside, limit=limits.timestamp_tolerance)
    dst = {bool(r.status & CLOCK_STATUS_DST) for r in (clock_before, clock_after)}
    if len(dst) == 1:  # no DST change between the reads: the season letter must say what the clock says
        season = (telegram.value(lines.timestamp) or "")[-1:]
        usecase.expect("telegram season letter (S = DST active, W = not) vs clock_status bit 7", season,
                       "S" if dst.pop() else "W", article=ARTICLE)
    usecase.expect("breaker state shown", telegram.value(lines.breaker_state), "1", article=ARTICLE)
    usecase.measure("source current with the breaker shown closed (A)", reading.current_a,
                    low=limits.open_breaker_current.value, unit="A", article=ARTICLE)

    window = section.parameters.energy_window_s
    with usecase.step("5", METER, DISPLAY, f"telegrams {window:g} s apart; AC source power at both ends"):
        power_start = ac_source.measure().power_w
        first = next_telegram(display, meter)
        bench_clock.sleep(window)
        display.discard()
        last = next_telegram(display, meter)
        power_end = ac_source.measure().power_w
    expect_telegram(usecase, first, "window start")
    expect_telegram(usecase, last, "window end")
    delivered_wh = (power_start + power_end) / 2 * (last.received_at - first.received_at) / 3600
    shown_delta_wh = (number(last, lines.energy_import) - number(first, lines.energy_import)) * 1000
    usecase.measure("telegram energy delta vs energy the source delivered (Wh)",
                    abs(shown_delta_wh - delivered_wh), limit=limits.energy_tolerance)


def test_changes_reach_the_display_in_time(meter, display, consumer_message, connected, ac_source, bench_clock,
                                           usecase):
    section = meter.profile.display
    lines, limits = section.lines, section.limits
    latency = limits.change_latency
    marker = b"SMMC " + secrets.token_hex(4).encode() + b" "
    text = (marker * (section.parameters.message_length // len(marker) + 1))[:section.parameters.message_length]
    with usecase.step("1", HEAD_END, METER, f"SET consumer message {section.objects.consumer_message_text} attr 2"):
        display.discard()
        before = display.collect(2, 3 * limits.telegram_period_max.value)
        consumer_message.write(text)
        written_at = bench_clock.monotonic()
    usecase.expect("message shown before it was written", any(text_shown(t, lines) == text for t in before),
                   False, article=ARTICLE)
    with usecase.step("2", METER, DISPLAY, "telegrams until the message shows"):
        shown = display.until(lambda t: text_shown(t, lines) == text, 2 * latency.value)
    usecase.measure("time for the consumer message to reach the display",
                    (shown.received_at - written_at) if shown else bench_clock.monotonic() - written_at,
                    limit=latency)
    expect_telegram(usecase, shown, "message telegram")
    usecase.expect("message read back over DLMS", consumer_message.read(), text, article=ARTICLE)

    dc = connected
    modes = [m for m in meter.profile.disconnector.control_modes if m != 0]
    if not modes:
        return  # no remote disconnection to show: the message part above is the test
    with usecase.step("3", HEAD_END, METER, f"SET control_mode {modes[0]}; ACTION remote_disconnect"):
        restore_connected(dc, meter.profile.disconnector.control_modes, modes[0])
        display.discard()
        dc.remote_disconnect()
        opened_at = bench_clock.monotonic()
    with usecase.step("4", METER, DISPLAY, "telegrams until the breaker shows open"):
        open_shown = display.until(lambda t: t.value(lines.breaker_state) == "0", 2 * latency.value)
        current = source_current_a(ac_source)
    usecase.measure("time for the open breaker to reach the display",
                    (open_shown.received_at - opened_at) if open_shown else bench_clock.monotonic() - opened_at,
                    limit=latency)
    usecase.measure("source current with the breaker shown open (A)", current, limit=limits.open_breaker_current)
    if open_shown:
        # With no current flowing the display must not keep the power measured before the breaker opened.
        usecase.measure("power shown with the breaker open (W)", number(open_shown, lines.power_import) * 1000,
                        limit=limits.power_tolerance)
    with usecase.step("5", HEAD_END, METER, "ACTION remote_reconnect (back to connected)"):
        restore_connected(dc, meter.profile.disconnector.control_modes, modes[0])
        closed_at = bench_clock.monotonic()
        closed_shown = display.until(lambda t: t.value(lines.breaker_state) == "1", 2 * latency.value)
    usecase.measure("time for the closed breaker to reach the display",
                    (closed_shown.received_at - closed_at) if closed_shown else bench_clock.monotonic() - closed_at,
                    limit=latency)


def test_display_port_accepts_no_command(meter, display, consumer_message, connected, ac_source, bench_clock,
                                        usecase):
    section = meter.profile.display
    lines, limits = section.lines, section.limits
    with usecase.step("1", HEAD_END, METER, "SET consumer message (a known text)"):
        known = b"SMMC " + secrets.token_hex(4).encode()
        consumer_message.write(known)
        display.discard()
        before = display.until(lambda t: text_shown(t, lines) == known, 2 * limits.change_latency.value)
    expect_telegram(usecase, before, "before the commands")
    injected = b"INJECTED"
    commands = [
        b"/?!\r\n",  # an IEC 62056-21 sign-on
        f"{lines.text_message}({injected.hex().upper()})\r\n".encode(),
        f"{lines.breaker_state}(0)\r\n".encode(),
        b"\x06050\r\n",  # an acknowledgement asking for another baud rate
    ]
    with usecase.step("2", DISPLAY, METER, "write commands on the I1 port"):
        for command in commands:
            display.write(command)
        bench_clock.sleep(3 * limits.telegram_period_max.value)
        display.discard()
        after = display.collect(2, 3 * limits.telegram_period_max.value)
    usecase.expect("telegrams still arrive", len(after), 2, article=ARTICLE)
    for telegram in after:
        usecase.expect("framing and CRC problems after the commands", list(telegram.problems), [],
                       article=ARTICLE)
        usecase.expect("message shown after the commands", text_shown(telegram, lines), known, article=ARTICLE)
        usecase.expect("breaker state shown after the commands", telegram.value(lines.breaker_state), "1",
                       article=ARTICLE)
    with usecase.step("3", HEAD_END, METER, "GET consumer message, output_state; MEAS current"):
        usecase.expect("message read over DLMS", consumer_message.read(), known, article=ARTICLE)
        usecase.expect("output_state", meter.disconnect_control.output_state(), True, article=ARTICLE)
        usecase.measure("source current (A)", source_current_a(ac_source),
                        low=limits.open_breaker_current.value, unit="A", article=ARTICLE)


@pytest.mark.smmc_feature("tou_calendar")
def test_tariff_switch_reaches_the_display(meter, display, tou, bench_clock, usecase):
    section = meter.profile.display
    lines, latency = section.lines, section.limits.change_latency
    script_table = meter.profile.tariffs.objects.tariff_script_table

    def flat(tariff: int) -> TouPlan:
        return TouPlan(b"D" + secrets.token_hex(3).encode(), {1: [(time(0), tariff)], 2: [(time(0), tariff)]},
                       (1, 1, 1, 1, 1, 2, 2), script_table)

    def shows(tariff: int):
        return lambda t: t.value(lines.tariff_indicator) == f"{tariff:04d}"

    with usecase.step("0", HEAD_END, METER, "precondition: SET passive flat tariff-1 calendar; "
                                            "ACTION activate_passive_calendar"):
        tou.calendar.write_passive(flat(1))
        tou.calendar.activate_passive_calendar()
        display.discard()
        first = display.until(shows(1), 2 * latency.value)
    expect_telegram(usecase, first, "tariff 1 shown")
    with usecase.step("1", HEAD_END, METER, "GET tariff registers around the next telegram"):
        display.discard()
        before = tou.energies()
        telegram = next_telegram(display, meter)
        after = tou.energies()
    expect_telegram(usecase, telegram, "tariff registers")
    for index, code in enumerate(lines.tariff_energy):
        shown_wh = number(telegram, code) * 1000
        usecase.measure(f"{code} outside the register reads around it (Wh)",
                        max(before[index] - shown_wh, shown_wh - after[index], 0.0), high=0.5, unit="Wh",
                        article=ARTICLE)
    with usecase.step("2", HEAD_END, METER, "SET passive flat tariff-3 calendar; ACTION activate_passive_calendar"):
        display.discard()
        tou.calendar.write_passive(flat(3))
        tou.calendar.activate_passive_calendar()
        switched_at = bench_clock.monotonic()
    with usecase.step("3", METER, DISPLAY, "telegrams until tariff 3 shows"):
        shown = display.until(shows(3), 2 * latency.value)
    usecase.measure("time for the tariff switch to reach the display",
                    (shown.received_at - switched_at) if shown else bench_clock.monotonic() - switched_at,
                    limit=latency)
    usecase.expect("tariff indicator read over DLMS", tou.indicator.read(), 3, article=ARTICLE)
