"""Aspect 12 (art. 5-1): customer account move.

Use case (Customer account move): the leaving customer's final reading is
captured by the end-of-billing script, the supply is disconnected, the
customer data rewritten for the new customer, and the supply reconnected. The
bench delivers a known load through it all and judges: the final reading
equals the energy its source delivered up to the move; the cumulative register
and the histories (billing rows, load profile, event logs) run on, nothing
reset; the breaker really opened and closed (source current); the steps are
logged (62, 47, 63).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import (
    MODES_WITH_DIRECT_RECONNECT,
    ControlState,
    restore_connected,
)
from smmc_bench.cosem.demand import DemandRegister, MaximumDemand
from smmc_bench.cosem.profile_generic import (
    BillingProfile,
    DeliveredEnergy,
    MeterTime,
    OctetStringData,
    ScriptTable,
    boundary_after,
    load_profile_of,
)
from smmc_bench.drivers.dlms import DataType, Typed
from smmc_bench.drivers.dlms.errors import AssociationRejected, ServiceError
from smmc_bench.plugin.supply import source_current_a
from smmc_bench.procedures import wait_until
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(12), pytest.mark.smmc_ntd("5-1"), pytest.mark.smmc_feature("account_move")]

CIS = "CIS"
HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"


@pytest.fixture
def account(meter, bench_clock):
    """The account-move objects; customer data and breaker (connected, original mode) put back after."""
    objects = meter.profile.readings.account_move.objects
    customer = OctetStringData(meter.session, objects.customer_data)
    original_data = customer.read()
    dc = meter.disconnect_control
    original_mode = dc.control_mode()
    try:
        yield customer
    finally:
        restore_all(f"meter {meter.id} account", [
            ("customer data", lambda: customer.write(original_data)),
            ("breaker reconnected", lambda: restore_connected(dc, meter.profile.disconnector.control_modes,
                                                              original_mode)),
        ])


def sample_through(delivered: DeliveredEnergy, ac_source, bench_clock, seconds: float, samples: int = 12) -> None:
    start = bench_clock.monotonic()
    for index in range(1, samples + 1):
        bench_clock.sleep(max(0.0, start + seconds * index / samples - bench_clock.monotonic()))
        delivered.sample(bench_clock.monotonic(), ac_source.measure().power_w)


def test_account_move_keeps_registers_and_history(meter, account, ac_source, load, bench_clock, usecase):
    move = meter.profile.readings.account_move
    objects, limits = move.objects, meter.profile.readings.limits
    supply = meter.profile.supply.limits
    modes = [m for m in MODES_WITH_DIRECT_RECONNECT if m in meter.profile.disconnector.control_modes]
    if not modes:
        pytest.skip("no control mode of the profile reconnects remotely: the new customer's reconnection "
                    "needs a person")
    dc, session = meter.disconnect_control, meter.session
    billing = BillingProfile(session, objects.billing_profile, meter.profile.objects.clock,
                             meter.profile.objects.active_energy_import, objects.billing_period_counter)
    script = ScriptTable(session, objects.billing_script_table)
    profile = load_profile_of(meter)
    accuracy, resolution = limits.energy_accuracy.value / 100, limits.energy_resolution.value
    new_customer = move.new_customer_data.encode()
    delivered = DeliveredEnergy()
    off, flowing = supply.current_off_threshold.value, supply.test_load_current.value * (
        1 - supply.load_current_tolerance.value / 100)

    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode {modes[0]}, connected, load "
                                            f"{supply.test_load_current.value:g} A; GET energy, billing profile, "
                                            "counter, load profile, event logs, customer data"):
        restore_connected(dc, meter.profile.disconnector.control_modes, modes[0])
        load.set_current(supply.test_load_current.value)
        load.on()
        if account.read() == new_customer:
            account.write(b"LEAVING-CUSTOMER")
        billing_before = billing.read()
        if not billing_before:  # a history to keep: close one billing period first (an earlier customer's)
            script.execute(objects.billing_script_id)
            billing_before = billing.read()
        capacity = billing.generic.profile_entries()
        counter_before = int(session.get(1, objects.billing_period_counter, 2))
        profile_before = profile.read()
        if not profile_before:  # a history to keep: wait for the load profile's next capture
            bench_clock.sleep(limits.capture_period.value + limits.capture_delay.value)
            profile_before = profile.read()
        disconnector_before = meter.disconnector_event_log.entries()
        standard_before = meter.standard_event_log.entries()
        start_value, unit = meter.active_energy_import.read()
        start_at = bench_clock.monotonic()
        delivered.sample(start_at, ac_source.measure().power_w)
    usecase.expect("energy register unit", unit, "Wh", article="5-1")
    with usecase.step("1", LOAD, METER, f"the leaving customer draws for {limits_s(move.usage_before_move)}"):
        sample_through(delivered, ac_source, bench_clock, move.usage_before_move.value)
    demand = meter.profile.tariffs.demand if meter.profile.has("demand") else None
    demand_reset = demand is not None and demand.parameters.reset_at_billing
    with usecase.step("2", HEAD_END, METER, f"ACTION script table execute({objects.billing_script_id}) (end of "
                                            "billing); GET billing profile, counter, energy"
                                            + (", maximum demand before and after" if demand_reset else "")):
        if demand_reset:
            maximum = MaximumDemand(session, demand.objects.maximum_demand)
            away_from_boundary(meter, bench_clock, DemandRegister(session, demand.objects.demand_register).period(),
                               demand.limits.update_delay.value)
            leaving_maximum = maximum.read()
        clock_before = meter.clock.read().time
        register_before_billing, _ = meter.active_energy_import.read()
        billed_at = bench_clock.monotonic()
        delivered.sample(billed_at, ac_source.measure().power_w)
        script.execute(objects.billing_script_id)
        if demand_reset:
            new_maximum = maximum.read()
        clock_after = meter.clock.read().time
        billing_after = billing.read()
        counter_after = int(session.get(1, objects.billing_period_counter, 2))
        register_after_billing, _ = meter.active_energy_import.read()
    kept = billing_before[1:] if len(billing_before) >= capacity else billing_before  # a full profile wraps
    added = billing_after[len(kept):] if billing_after[:len(kept)] == kept else None
    usecase.expect("billing rows before the move kept, in place", added is not None, True, article="5-1")
    usecase.expect("billing rows added by the script", len(added), 1, article="5-1")
    final = added[0]
    usecase.expect("billing period counter (object) advanced by one", counter_after,
                   (counter_before + 1) % int(move.billing_counter_modulus.value),
                   article="5-1")
    usecase.expect("billing row's counter", final.counter, counter_after, article="5-1")
    late = max(seconds_between(final.time, clock_after), seconds_between(clock_before, final.time), 0.0)
    usecase.measure("billing row stamp outside the script's time window", late, limit=move.billing_stamp_tolerance)
    if demand_reset:  # the leaving customer's maximum demand is billed with the move, not carried to the next one
        usecase.measure("maximum demand before the end of billing (the leaving customer's, W)",
                        leaving_maximum.value, low=flowing * ac_source.nominal_voltage / 2, unit="W", article="5-1")
        usecase.expect("maximum demand after the end of billing (reset for the new customer)", new_maximum.value,
                       0.0, article="5-1")
        if new_maximum.capture_time is not None:  # not specified, or the moment of the reset: never the old stamp
            outside = max(seconds_between(new_maximum.capture_time, clock_after),
                          seconds_between(clock_before, new_maximum.capture_time), 0.0)
            usecase.measure("maximum demand capture_time outside the script's time window", outside,
                            limit=move.billing_stamp_tolerance)
    up_to_move = delivered.wh_between(start_at, billed_at)
    usecase.measure("energy the source delivered before the move (Wh)", up_to_move,
                    low=flowing * 0.5 * move.usage_before_move.value / 3600 * 100, unit="Wh", article="5-1")
    allowed = accuracy * up_to_move + 2 * resolution
    usecase.measure(f"final reading {final.energy:g} - (start {start_value:g} + {up_to_move:.1f} Wh delivered)",
                    final.energy - start_value - up_to_move, low=-allowed, high=allowed, unit="Wh", article="5-1")
    # The row is the register at the capture: between the register's own reads around the script, to its
    # resolution (the source-based check above allows the class accuracy; this one does not need to).
    usecase.measure(f"final reading - register read just before the script (Wh; window "
                    f"{register_after_billing - register_before_billing:g} Wh to the read after it)",
                    final.energy - register_before_billing, low=-resolution,
                    high=register_after_billing - register_before_billing + resolution, unit="Wh", article="5-1")

    with usecase.step("3", HEAD_END, METER, "ACTION remote_disconnect (leaving customer); source measures"):
        delivered.sample(bench_clock.monotonic(), ac_source.measure().power_w)
        dc.remote_disconnect()
        stopped = wait_until(lambda: source_current_a(ac_source) < off, bench_clock, supply.current_off_time.value,
                             min(1.0, supply.current_off_time.value / 10))
        delivered.sample(bench_clock.monotonic(), ac_source.measure().power_w)
    usecase.expect("output_state after remote_disconnect", dc.output_state(), False, article="5-1")
    usecase.expect(f"source current fell under {off:g} A", stopped is not None, True, article="5-1")
    with usecase.step("4", HEAD_END, METER, f"SET customer data = {move.new_customer_data!r}; GET it back"):
        account.write(new_customer)
        usecase.expect("customer data read back", account.read(), new_customer, article="5-1")
        delivered.sample(bench_clock.monotonic(), ac_source.measure().power_w)
    with usecase.step("5", HEAD_END, METER, "ACTION remote_reconnect (new customer); source measures"):
        dc.remote_reconnect()
        usecase.expect(f"control_state after remote_reconnect in mode {modes[0]} (transition d)", dc.control_state(),
                       ControlState.CONNECTED, article="5-1")
        back = wait_until(lambda: source_current_a(ac_source) >= flowing, bench_clock, supply.current_on_time.value,
                          min(1.0, supply.current_on_time.value / 10))
        delivered.sample(bench_clock.monotonic(), ac_source.measure().power_w)
    usecase.expect("output_state after remote_reconnect", dc.output_state(), True, article="5-1")
    usecase.expect(f"source current back to at least {flowing:g} A", back is not None, True, article="5-1")
    with usecase.step("6", LOAD, METER, f"the new customer draws for {limits_s(move.usage_after_move)}; GET energy, "
                                        "load profile, event logs"):
        sample_through(delivered, ac_source, bench_clock, move.usage_after_move.value)
        end_value, _ = meter.active_energy_import.read()
        end_at = bench_clock.monotonic()
        delivered.sample(end_at, ac_source.measure().power_w)
        profile_after = profile.read()
        disconnector_added = meter.disconnector_event_log.new_since(disconnector_before)
        standard_after = meter.standard_event_log.entries()
    whole = delivered.wh_between(start_at, end_at)
    allowed = accuracy * whole + 2 * resolution
    usecase.measure(f"register {end_value - start_value:g} Wh since before the move - {whole:.1f} Wh delivered "
                    "(cumulative, not reset)", end_value - start_value - whole, low=-allowed, high=allowed,
                    unit="Wh", article="5-1")
    usecase.expect("the newest load-profile row from before the move still in the buffer",
                   bool(profile_before) and profile_before[-1] in profile_after, True, article="5-1")
    if standard_before:
        usecase.expect("the newest standard-log entry from before the move still logged",
                       standard_before[-1] in standard_after, True, article="5-1")
    codes = [e.code for e in disconnector_added]
    events = meter.profile.events
    usecase.expect(f"disconnector events of the move ({events.remote_disconnect}, {events.remote_reconnect})",
                   [c for c in codes if c in (events.remote_disconnect, events.remote_reconnect)],
                   [events.remote_disconnect, events.remote_reconnect], article="5-1")
    change = meter.profile.readings.parameter_change_event
    usecase.expect(f"event {change} (customer data changed) logged",
                   change in [e.code for e in meter.standard_event_log.new_since(standard_before)], True,
                   article="5-1")


def away_from_boundary(meter, bench_clock, period_s: int, update_delay_s: float) -> None:
    """If a demand period boundary is due within the next minute of meter time, wait until just after it, so that
    no period closes (and sets a new maximum) between the reads around the billing script."""
    clock = MeterTime(meter, bench_clock)
    due = boundary_after(clock.now(), period_s)
    if seconds_between(due, clock.now()) < max(60.0, 4 * update_delay_s):
        clock.sleep_until(due + timedelta(seconds=update_delay_s))


def limits_s(limit) -> str:
    return f"{limit.value:g} {limit.unit}"


def test_customer_data_refuses_what_it_cannot_hold(meter, account, link_access, usecase):
    """Wrong type, too long, or the public client: refused, the customer data unchanged, nothing logged."""
    objects = meter.profile.readings.account_move.objects
    change = meter.profile.readings.parameter_change_event
    with usecase.step("0", HEAD_END, METER, "GET customer data, standard event log"):
        before, log_before = account.read(), meter.standard_event_log.entries()
    attempts = [("visible-string", Typed(DataType.VISIBLE_STRING, b"NEW")),
                ("double-long-unsigned", Typed(DataType.DOUBLE_LONG_UNSIGNED, 2)),
                ("octet-string of 200 octets", Typed(DataType.OCTET_STRING, b"X" * 200))]
    for index, (what, value) in enumerate(attempts, start=1):
        with usecase.step(str(index), HEAD_END, METER, f"SET customer data = {what}; GET it"):
            try:
                meter.session.set(1, objects.customer_data, 2, value)
                refused = False
            except ServiceError:
                refused = True
            usecase.expect(f"customer data = {what} refused", refused, True, article="5-1")
            usecase.expect(f"customer data after {what}", account.read(), before, article="5-1")
    with usecase.step("p", "Customer client (bench, public SAP)", METER, "AARQ as the public client; SET customer "
                                                                         "data"):
        public = link_access.session(meter.profile.clients.public_sap)
        try:
            public.connect()
            public.set(1, objects.customer_data, 2, Typed(DataType.OCTET_STRING, b"INTRUDER"))
            refused = False
        except (ServiceError, AssociationRejected):  # no association, no write (aspect 3 judges associations)
            refused = True
        link_access.resume()
    usecase.expect("the public client's write refused", refused, True, article="5-1")
    usecase.expect("customer data after the public client's write", account.read(), before, article="5-1")
    usecase.expect(f"event {change} logged by refused writes",
                   [e.code for e in meter.standard_event_log.new_since(log_before) if e.code == change], [],
                   article="5-1")


def test_customer_data_holds_its_full_length(meter, account, usecase):
    """Customer data of exactly the longest length the profile gives is accepted, read back whole and logged
    as a parameter change; one octet more is refused with the data unchanged and nothing logged."""
    move = meter.profile.readings.account_move
    longest = move.customer_data_octets
    octets = int(longest.value)
    change = meter.profile.readings.parameter_change_event
    full = (move.new_customer_data.encode() * (octets // len(move.new_customer_data) + 1))[:octets]
    with usecase.step("0", HEAD_END, METER, "GET customer data, standard event log"):
        before, log_before = account.read(), meter.standard_event_log.entries()
    if before == full:
        full = full[::-1]
    with usecase.step("1", HEAD_END, METER, f"SET customer data = {octets} octets (the longest); GET it, standard "
                                            "event log"):
        try:
            account.write(full)
            refused = ""
        except ServiceError as exc:
            refused = exc.diagnosis or "refused"
        after, log_after = account.read(), meter.standard_event_log.entries()
    usecase.expect(f"customer data of {octets} octets refused", refused, "", article=longest.article)
    usecase.expect(f"customer data read back after SET of {octets} octets", after, full, article=longest.article)
    usecase.expect(f"event {change} logged for the write",
                   len([e for e in meter.standard_event_log.new_since(log_before) if e.code == change]), 1,
                   article="5-1")
    with usecase.step("2", HEAD_END, METER, f"SET customer data = {octets + 1} octets (one too many); GET it, "
                                            "standard event log"):
        try:
            account.write(full + b"X")
            refused = ""
        except ServiceError as exc:
            refused = exc.diagnosis or "refused"
        last = account.read()
        logged = [e.code for e in meter.standard_event_log.new_since(log_after) if e.code == change]
    usecase.expect(f"customer data of {octets + 1} octets refused", bool(refused), True, article=longest.article)
    usecase.expect(f"customer data after the refused {octets + 1} octets", last, after, article="5-1")
    usecase.expect(f"event {change} logged by the refused write", logged, [], article="5-1")


def test_unknown_script_runs_nothing(meter, bench_clock, usecase):
    """ACTION execute of a script the billing script table does not hold (Blue Book IC 9: a script is named by
    its identifier) closes no billing period: no billing row, the counter unchanged, whatever the reply; the
    billing script itself, run next, does close one (the bench sees a billing when there is one)."""
    objects = meter.profile.readings.account_move.objects
    session = meter.session
    billing = BillingProfile(session, objects.billing_profile, meter.profile.objects.clock,
                             meter.profile.objects.active_energy_import, objects.billing_period_counter)
    script = ScriptTable(session, objects.billing_script_table)
    with usecase.step("0", HEAD_END, METER, "GET script table scripts, billing profile, billing period counter"):
        held = script.script_ids()
        rows_before = billing.read()
        counter_before = int(session.get(1, objects.billing_period_counter, 2))
    usecase.expect(f"billing script {objects.billing_script_id} in the script table", objects.billing_script_id in held,
                   True, article="5-1")
    unknown = next(i for i in range(1, 0x10000) if i not in held)
    with usecase.step("1", HEAD_END, METER, f"ACTION script table execute({unknown}) (not in the table); GET billing "
                                            "profile, billing period counter"):
        try:
            script.execute(unknown)
            reply = "success"
        except ServiceError as exc:
            reply = exc.diagnosis or "refused"
        rows_after = billing.read()
        counter_after = int(session.get(1, objects.billing_period_counter, 2))
    usecase.expect(f"billing rows after execute({unknown}) (reply: {reply})",
                   [(r.time.isoformat(), r.counter) for r in rows_after],
                   [(r.time.isoformat(), r.counter) for r in rows_before], article="5-1")
    usecase.expect(f"billing period counter after execute({unknown})", counter_after, counter_before, article="5-1")
    with usecase.step("2", HEAD_END, METER, f"ACTION script table execute({objects.billing_script_id}) (end of "
                                            "billing); GET billing period counter, billing profile"):
        script.execute(objects.billing_script_id)
        counter_billed = int(session.get(1, objects.billing_period_counter, 2))
        newest = billing.read()[-1:]
    usecase.expect("billing period counter after the billing script", counter_billed,
                   (counter_after + 1) % int(meter.profile.readings.account_move.billing_counter_modulus.value),
                   article="5-1")
    usecase.expect("newest billing row's counter", [r.counter for r in newest], [counter_billed], article="5-1")


def test_billing_profile_wraps_oldest_first(meter, bench_clock, usecase):
    """A full billing profile (profile_entries rows) drops its oldest row for each new billing period, never the
    new one: the final reading of the newest period is the one a move or a bill needs."""
    move = meter.profile.readings.account_move
    objects = move.objects
    session = meter.session
    billing = BillingProfile(session, objects.billing_profile, meter.profile.objects.clock,
                             meter.profile.objects.active_energy_import, objects.billing_period_counter)
    script = ScriptTable(session, objects.billing_script_table)
    with usecase.step("0", HEAD_END, METER, "GET billing profile, entries_in_use, profile_entries, billing period "
                                            "counter"):
        before = billing.read()
        in_use, capacity = billing.generic.entries_in_use(), billing.generic.profile_entries()
        counter_before = int(session.get(1, objects.billing_period_counter, 2))
    usecase.expect("entries_in_use = rows in the billing profile", in_use, len(before), article="5-1")
    usecase.expect("entries_in_use <= profile_entries", in_use <= capacity, True, article="5-1")
    closes = capacity - len(before) + 2  # fill it, then two periods more: two rows must go, the oldest
    modulus = int(move.billing_counter_modulus.value)
    if closes > move.billing_wrap_closes.value:
        pytest.skip(f"filling profile_entries {capacity} takes {closes} billing periods, more than the profile's "
                    f"billing_wrap_closes {move.billing_wrap_closes.value:g}")
    with usecase.step("1", HEAD_END, METER, f"ACTION script table execute({objects.billing_script_id}) {closes} "
                                            "times (end of billing); GET billing profile, entries_in_use, counter"):
        clock_before = meter.clock.read().time
        for _ in range(closes):
            script.execute(objects.billing_script_id)
        clock_after = meter.clock.read().time
        after = billing.read()
        in_use_after = billing.generic.entries_in_use()
        counter_after = int(session.get(1, objects.billing_period_counter, 2))
    usecase.expect("billing period counter advanced by one per period", counter_after,
                   (counter_before + closes) % modulus, article="5-1")
    usecase.expect("entries_in_use once full", in_use_after, capacity, article="5-1")
    survivors = max(0, capacity - closes)  # the rows from before that must still be there, the newest of them
    usecase.expect("rows from before kept (the newest, the oldest dropped first), in place",
                   after[:survivors] == before[len(before) - survivors:], True, article="5-1")
    usecase.expect("counters of the newest rows (one per period closed, the last ones kept)",
                   [row.counter for row in after[survivors:]],
                   [(counter_before + k) % modulus for k in range(closes - (capacity - survivors) + 1, closes + 1)],
                   article="5-1")
    outside = [row.time.isoformat() for row in after[survivors:]
               if seconds_between(clock_before, row.time) > move.billing_stamp_tolerance.value
               or seconds_between(row.time, clock_after) > move.billing_stamp_tolerance.value]
    usecase.expect("new rows stamped outside the scripts' time window", outside, [], article="5-1")


def test_billing_period_counter_wraps_at_its_modulus(meter, bench_clock, usecase):
    """The billing period counter counts up to the profile's billing_counter_modulus - 1, then 0: the bench closes
    billing periods until it has gone round, reading the counter just before the wrap, at it and after it, and
    the counters of the newest billing rows (what a bill names the period by)."""
    move = meter.profile.readings.account_move
    objects = move.objects
    session = meter.session
    modulus = int(move.billing_counter_modulus.value)
    billing = BillingProfile(session, objects.billing_profile, meter.profile.objects.clock,
                             meter.profile.objects.active_energy_import, objects.billing_period_counter)
    script = ScriptTable(session, objects.billing_script_table)
    with usecase.step("0", HEAD_END, METER, "GET billing period counter, billing profile_entries"):
        start = int(session.get(1, objects.billing_period_counter, 2))
        capacity = billing.generic.profile_entries()
    usecase.measure("billing period counter", start, low=0, high=modulus - 1, unit="",
                    article=move.billing_counter_modulus.article)
    to_last = (modulus - 1 - start) % modulus  # closes that bring the counter to modulus - 1
    if to_last + 2 > move.billing_counter_closes.value:
        pytest.skip(f"going round the counter takes {to_last + 2} billing periods, more than the profile's "
                    f"billing_counter_closes {move.billing_counter_closes.value:g}")
    seen = []
    with usecase.step("1", HEAD_END, METER, f"ACTION script table execute({objects.billing_script_id}) {to_last} "
                                            f"times; GET counter; then twice more, GET counter after each"):
        for _ in range(to_last):
            script.execute(objects.billing_script_id)
        seen.append(int(session.get(1, objects.billing_period_counter, 2)))
        for _ in range(2):
            script.execute(objects.billing_script_id)
            seen.append(int(session.get(1, objects.billing_period_counter, 2)))
        newest = billing.read()[-min(3, capacity):]
    usecase.expect(f"billing period counter just before, at and after the wrap (from {start})", seen,
                   [modulus - 1, 0, 1], article=move.billing_counter_modulus.article)
    usecase.expect("counters of the newest billing rows", [row.counter for row in newest],
                   [modulus - 1, 0, 1][-len(newest):], article=move.billing_counter_modulus.article)
