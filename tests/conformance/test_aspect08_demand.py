"""Aspect 8 (arts 4-17-6, 4-10-8): demand and maximum demand.

Use case (Demand management): the utility bills capacity by the largest average power a
customer draws over a demand period. The meter averages the energy it meters over fixed
periods of its clock (demand register, IC 5) and keeps the largest average with the end
of its period (maximum demand, IC 4), cleared by its reset and, when the profile says
so, by the end of billing. The bench steps a known load through several periods and
judges each period average against the energy its AC source delivered in that period /
the period, the period boundaries on both sides, the maximum against the largest average
it applied (not the short peak inside a period), the period written effective from the
next boundary and not before, and out-of-range periods refused with nothing changed.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.profile_generic import DeliveredEnergy, MeterTime, ScriptTable, boundary_after
from smmc_bench.drivers.dlms import DataType, Typed
from smmc_bench.drivers.dlms.errors import AssociationRejected, ServiceError
from smmc_bench.plugin.tariffs import demand  # noqa: F401 (fixture)

pytestmark = [pytest.mark.smmc_aspect(8), pytest.mark.smmc_ntd("4-17-6"), pytest.mark.smmc_feature("demand")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"
CUSTOMER = "Customer client (bench, public SAP)"
DEMAND_REGISTER, PERIOD = 5, 8
HALFWAY = 0.5  # the fraction of a period at which the bench reads current_average_value


def parameter_changes(meter, before) -> list:
    code = meter.profile.readings.parameter_change_event
    return [e for e in meter.standard_event_log.new_since(before) if e.code == code]


def power(ac_source) -> float:
    return float(ac_source.measure().power_w)


def prepare(meter, bench_clock) -> MeterTime:
    """Meter clock on the reference time, breaker connected; the meter's time as the bench sees it."""
    meter.clock.write(bench_clock.now(), meter.clock.time_zone())
    if meter.profile.has("disconnector"):
        dc = meter.disconnect_control
        restore_connected(dc, meter.profile.disconnector.control_modes, dc.control_mode())
    return MeterTime(meter, bench_clock)


class Periods:
    """Drives the load through demand periods and keeps what the source delivered in each."""

    def __init__(self, clock: MeterTime, ac_source, load, bench_clock, first: datetime, period: int) -> None:
        self.clock, self.ac_source, self.load, self.bench = clock, ac_source, load, bench_clock
        self.period = period
        self.delivered = DeliveredEnergy()
        self.bench_at: dict[datetime, float] = {}
        self.last_s = 0.0
        self.peak_w = 0.0
        self.end(first)
        self.peak_w = power(ac_source)

    def sample(self) -> float:
        watts = power(self.ac_source)
        self.last_s = self.bench.monotonic()
        self.delivered.sample(self.last_s, watts)
        return watts

    def step(self, amps: float) -> None:
        self.sample()
        self.load.set_current(amps)
        self.peak_w = max(self.peak_w, self.sample())

    def reach(self, moment: datetime) -> None:
        self.clock.sleep_until(moment)
        self.sample()

    def end(self, moment: datetime) -> None:
        """Reach a boundary; the source's sample there marks it."""
        self.clock.sleep_until(moment)
        self.sample()
        self.bench_at[moment] = self.last_s

    def average_w(self, begin: datetime, end: datetime) -> float:
        """The energy the source delivered in the period / the period (W)."""
        return self.delivered.wh_between(self.bench_at[begin], self.bench_at[end]) * 3600.0 / self.period


def judge_average(usecase, limits, what: str, meter_w: float, bench_w: float) -> None:
    allowed = abs(bench_w) * limits.demand_accuracy.value / 100 + limits.demand_floor.value
    usecase.measure(f"{what}: meter {meter_w:.1f} W - bench {bench_w:.1f} W", abs(meter_w - bench_w),
                    high=allowed, unit="W", article="4-10-8")


def judge_current_average(usecase, limits, demand, scale: float, periods: Periods, begin: datetime,
                          what: str) -> None:
    """current_average_value is the energy since the period began / the period's length (it grows through
    the period): judged against what the source delivered from the period's start to just before and just
    after the GET, so the read's own duration is on the meter's side."""
    delivered_before = periods.delivered.wh_between(periods.bench_at[begin], periods.last_s)
    meter_w = demand.register.current_average(scale)
    periods.sample()
    delivered_after = periods.delivered.wh_between(periods.bench_at[begin], periods.last_s)
    low_w, high_w = (wh * 3600.0 / periods.period for wh in (delivered_before, delivered_after))
    allowed = high_w * limits.demand_accuracy.value / 100 + limits.demand_floor.value
    usecase.measure(f"{what}: meter (bench {low_w:.1f}..{high_w:.1f} W = energy since the period began / the "
                    "period)", meter_w, low=low_w - allowed, high=high_w + allowed, unit="W", article="4-10-8")


def judge_stamp(usecase, what: str, stamp: datetime | None, boundary: datetime) -> None:
    """A period's stamp is its boundary on the meter's own clock, to the second: the boundary_tolerance is how
    far from a boundary the bench reads (the meter's clock against the bench's view of it), not a licence for
    the stamp. A stamp before the boundary names a moment the period had not yet ended."""
    usecase.expect(f"{what} set", stamp is not None, True, article="4-17-6")
    if stamp is not None:
        usecase.measure(f"{what} - the boundary {boundary:%H:%M:%S}", seconds_between(stamp, boundary),
                        low=0.0, high=0.0, unit="s", article="4-17-6")

def judge_new_period_from(usecase, demand, clock, end: datetime, new: int, settle: float, tolerance: float) -> None:
    """The period written takes effect at the running period's end: a capture at `end`, none inside the
    first new period, the next one new period later. Reads after `end`, just before and after the new period."""
    clock.sleep_until(end + timedelta(seconds=settle))
    at_end = demand.register.read()
    clock.sleep_until(end + timedelta(seconds=new - 2 * tolerance))
    inside = demand.register.read()
    clock.sleep_until(end + timedelta(seconds=new + settle))
    next_one = demand.register.read()
    judge_stamp(usecase, "capture_time at the old period's end", at_end.capture_time, end)
    judge_stamp(usecase, "capture_time inside the first new period", inside.capture_time, end)
    judge_stamp(usecase, f"capture_time one new period ({new} s) later", next_one.capture_time,
                end + timedelta(seconds=new))


def judge_reset_stamp(usecase, meter, what: str, stamp: datetime | None, moment: datetime, *,
                      unspecified_allowed: bool) -> None:
    """A stamp a reset sets: the moment of the reset on the meter's clock (IC 5: 'capture_time and
    start_time_current are set to the time of the execution of reset'); an IC 4 register may instead leave
    it not specified (nothing captured since). Never the stamp of what the reset cleared."""
    if stamp is None:
        usecase.expect(f"{what}: not specified (allowed: {unspecified_allowed})", unspecified_allowed, True,
                       article="4-17-6")
        return
    usecase.measure(f"|{what} - the moment of the reset {moment:%H:%M:%S}|", abs(seconds_between(stamp, moment)),
                    limit=meter.limits.event_timestamp_tolerance)


def test_demand_averages_the_power_delivered_over_each_period(meter, demand, ac_source, load, bench_clock, usecase):
    limits, parameters = demand.section.limits, demand.section.parameters
    period, steps = parameters.period_s, parameters.load_steps
    settle, tolerance = limits.update_delay.value, limits.boundary_tolerance.value
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock to the reference time; breaker connected; "
                                            f"GET demand period; ACTION maximum demand reset; load draws "
                                            f"{steps[0][0][1]:g} A"):
        clock = prepare(meter, bench_clock)
        running_period = demand.register.period()
        scale, _ = demand.register.scale()
        demand.maximum.reset()
        cleared = demand.maximum.read()
        load.set_current(steps[0][0][1])
        load.on()
    usecase.expect("demand period (s)", running_period, period, article="4-17-6")
    usecase.expect("maximum demand after its reset", cleared.value, 0.0, article="4-17-6")
    first = boundary_after(clock.now() + timedelta(seconds=settle), period)
    periods = Periods(clock, ac_source, load, bench_clock, first, period)
    averages: list[tuple[datetime, float]] = []
    with usecase.step("1", LOAD, METER, f"{len(steps)} demand periods of {period} s from {first:%H:%M} (meter "
                                        f"time), load steps {steps}; GET current_average_value half way through "
                                        "each period, the demand register just before and just after each "
                                        "boundary"):
        for k, schedule in enumerate(steps):
            begin = first + timedelta(seconds=period * k)
            end = begin + timedelta(seconds=period)
            what = f"period {k + 1} ({begin:%H:%M}-{end:%H:%M})"
            halfway_read = False
            for fraction, amps in [*schedule[1:], (1.0, None)]:
                if not halfway_read and fraction > HALFWAY:
                    periods.reach(begin + timedelta(seconds=period * HALFWAY))
                    judge_current_average(usecase, limits, demand, scale, periods, begin,
                                          f"{what}: current_average_value half way")
                    halfway_read = True
                if amps is not None:
                    periods.reach(begin + timedelta(seconds=period * fraction))
                    periods.step(amps)
            periods.reach(end - timedelta(seconds=2 * tolerance))
            before = demand.register.read()
            periods.end(end)
            if k + 1 < len(steps):
                periods.step(steps[k + 1][0][1])  # at the boundary: the next period's load from its start
            bench_clock.sleep(settle)
            after = demand.register.read()
            periods.sample()
            bench_w = periods.average_w(begin, end)
            averages.append((end, bench_w))
            judge_stamp(usecase, f"{what}: capture_time just before its end", before.capture_time, begin)
            judge_stamp(usecase, f"{what}: capture_time after its end", after.capture_time, end)
            judge_stamp(usecase, f"{what}: start_time_current after its end", after.start_time_current, end)
            judge_average(usecase, limits, f"{what}: last_average_value", after.last_average, bench_w)
    usecase.record_series("period average, bench (x: period)", "W", [(k + 1, w) for k, (_, w) in enumerate(averages)])
    with usecase.step("2", HEAD_END, METER, "GET maximum demand (value, capture_time)"):
        maximum = demand.maximum.read()
    peak_end, peak_w = max(averages, key=lambda item: item[1])
    usecase.measure("highest instantaneous power the bench applied (W)", periods.peak_w, low=peak_w, unit="W",
                    article="4-10-8")
    judge_average(usecase, limits, "maximum demand vs the largest period average", maximum.value, peak_w)
    judge_stamp(usecase, "maximum demand capture_time (its period's end)", maximum.capture_time, peak_end)
    with usecase.step("3", HEAD_END, METER, "ACTION maximum demand reset (IC 4 method 1); GET maximum demand"):
        asked = clock.now()
        demand.maximum.reset()
        answered = clock.now()
        cleared = demand.maximum.read()
    usecase.expect("maximum demand after its reset", cleared.value, 0.0, article="4-17-6")
    judge_reset_stamp(usecase, meter, "maximum demand capture_time after its reset", cleared.capture_time,
                      asked + (answered - asked) / 2, unspecified_allowed=True)


def test_demand_period_written_takes_effect_at_the_next_boundary(meter, demand, bench_clock, usecase):
    limits, parameters = demand.section.limits, demand.section.parameters
    period, new = parameters.period_s, parameters.new_period_s
    settle, tolerance = limits.update_delay.value, limits.boundary_tolerance.value
    if period % new or new >= period:
        pytest.fail(f"profile: new_period_s {new} must divide period_s {period} and be shorter (a boundary of the "
                    "new period then falls inside the running one)")
    with usecase.step("0", HEAD_END, METER, "precondition: SET clock to the reference time; GET demand period"):
        clock = prepare(meter, bench_clock)
        usecase.expect("demand period (s)", demand.register.period(), period, article="4-17-6")
    begin = boundary_after(clock.now() + timedelta(seconds=settle), period)
    end = begin + timedelta(seconds=period)
    with usecase.step("1", HEAD_END, METER, f"in the period {begin:%H:%M}-{end:%H:%M}: GET standard event log; "
                                            f"SET period {new} s; GET period, standard event log"):
        clock.sleep_until(begin + timedelta(seconds=settle))
        log_before = meter.standard_event_log.entries()
        written_at = clock.now()
        demand.register.set_period(new)
        read_back = demand.register.period()
        logged = parameter_changes(meter, log_before)
    usecase.expect("demand period read back (s)", read_back, new, article="4-17-6")
    event = meter.profile.readings.parameter_change_event
    usecase.expect(f"event {event} (parameters changed) logged for the write", len(logged), 1, article="4-21")
    if logged:
        usecase.measure(f"|event {event} stamp - moment of the write|", abs(seconds_between(logged[0].time, written_at)),
                        limit=meter.limits.event_timestamp_tolerance)
    with usecase.step("2", HEAD_END, METER, "just before the running period's end: GET capture_time"):
        clock.sleep_until(end - timedelta(seconds=2 * tolerance))
        early = demand.register.read()
    judge_stamp(usecase, "capture_time before the old period's end (no boundary of the new period yet)",
                early.capture_time, begin)
    with usecase.step("3", HEAD_END, METER, "after the running period's end, then after one new period"):
        judge_new_period_from(usecase, demand, clock, end, new, settle, tolerance)


def test_out_of_range_demand_periods_are_refused(meter, demand, usecase):
    for step, wrong in enumerate(demand.section.parameters.refused_periods_s, start=1):
        before, log_before = demand.register.period(), meter.standard_event_log.entries()
        with usecase.step(str(step), HEAD_END, METER, f"SET demand period {wrong} s (out of range); GET period, "
                                                      "standard event log"):
            try:
                demand.register.set_period(wrong)
                refused = False
            except ServiceError:
                refused = True
            after = demand.register.period()
            logged = parameter_changes(meter, log_before)
        usecase.expect(f"period {wrong} s refused", refused, True, article="4-17-6")
        usecase.expect(f"period unchanged after SET {wrong} s (s)", after, before, article="4-17-6")
        usecase.expect(f"parameter-change events logged for the refused {wrong} s", len(logged), 0, article="4-21")


@pytest.mark.smmc_ntd("4-21")
def test_public_client_cannot_write_the_demand_period(meter, demand, link_access, usecase):
    """Remote programming (aspect 10): only the management client may write the demand period."""
    other = demand.section.parameters.new_period_s
    with usecase.step("0", HEAD_END, METER, "GET demand period, standard event log"):
        before, log_before = demand.register.period(), meter.standard_event_log.entries()
    with usecase.step("1", CUSTOMER, METER, f"AARQ as the public client; SET demand period = {other} s"):
        session = link_access.session(meter.profile.clients.public_sap)  # the bench's own session waits
        try:
            session.connect()
            try:
                session.set(DEMAND_REGISTER, demand.section.objects.demand_register, PERIOD,
                            Typed(DataType.DOUBLE_LONG_UNSIGNED, other))
                refused = ""
            except ServiceError as exc:
                refused = exc.diagnosis or "refused"
        except AssociationRejected as exc:  # no association, no write
            refused = f"association refused: {exc.diagnosis}"
        link_access.resume()
    usecase.expect("the public client's write refused", bool(refused), True, article="4-21")
    with usecase.step("2", HEAD_END, METER, "GET demand period, standard event log"):
        after, logged = demand.register.period(), parameter_changes(meter, log_before)
    usecase.expect("demand period after the public client's write (s)", after, before, article="4-21")
    usecase.expect("parameter-change events logged", len(logged), 0, article="4-21")


def test_demand_reset_clears_the_averages_and_restamps(meter, demand, ac_source, load, bench_clock, usecase):
    """Blue Book IC 5 method 1 (reset): the current period is terminated, current_average_value and
    last_average_value go to their default values (0), capture_time and start_time_current to the time of the
    reset. A reset that leaves the last average or its stamp would carry an old period into the new one."""
    limits, parameters = demand.section.limits, demand.section.parameters
    period, settle = parameters.period_s, limits.update_delay.value
    amps = max(amps for schedule in parameters.load_steps for _, amps in schedule)
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock to the reference time; breaker connected; "
                                            f"load {amps:g} A across a period boundary"):
        clock = prepare(meter, bench_clock)
        scale, _ = demand.register.scale()
        load.set_current(amps)
        load.on()
        boundary = boundary_after(clock.now() + timedelta(seconds=settle), period)
        periods = Periods(clock, ac_source, load, bench_clock, boundary, period)
    with usecase.step("1", HEAD_END, METER, f"half way through the period after {boundary:%H:%M}: GET demand "
                                            "register"):
        periods.reach(boundary + timedelta(seconds=period * HALFWAY))
        before = demand.register.read()
    usecase.measure("last_average_value before the reset (a period with load behind it)", before.last_average,
                    low=limits.demand_floor.value * 10, unit="W", article="4-17-6")
    judge_stamp(usecase, "capture_time before the reset", before.capture_time, boundary)
    with usecase.step("2", HEAD_END, METER, "ACTION demand register reset (IC 5 method 1); GET demand register"):
        periods.sample()
        asked, asked_s = clock.now(), periods.last_s
        demand.register.reset()
        answered = clock.now()
        after = demand.register.read()
        periods.sample()
    moment = asked + (answered - asked) / 2
    usecase.expect("last_average_value after the reset (its default)", after.last_average, 0.0, article="4-17-6")
    since_reset_w = periods.delivered.wh_between(asked_s, periods.last_s) * 3600.0 / period
    allowed = since_reset_w * limits.demand_accuracy.value / 100 + limits.demand_floor.value
    usecase.measure(f"current_average_value after the reset (at most the energy since the reset / the period, "
                    f"{since_reset_w:.1f} W)", after.current_average, low=0.0, high=since_reset_w + allowed,
                    unit="W", article="4-17-6")
    judge_reset_stamp(usecase, meter, "capture_time after the reset", after.capture_time, moment,
                      unspecified_allowed=False)
    judge_reset_stamp(usecase, meter, "start_time_current after the reset", after.start_time_current, moment,
                      unspecified_allowed=False)


def test_end_of_billing_resets_maximum_demand(meter, demand, ac_source, load, bench_clock, usecase):
    limits, parameters = demand.section.limits, demand.section.parameters
    if not parameters.reset_at_billing:
        pytest.skip("the profile says the end of billing does not reset the maximum demand")
    if not meter.profile.has("account_move"):
        pytest.skip("the profile declares no billing script (feature account_move)")
    objects = meter.profile.readings.account_move.objects
    period = parameters.period_s
    settle = limits.update_delay.value
    currents = sorted({amps for schedule in parameters.load_steps for _, amps in schedule})
    high, low = currents[-1], currents[len(currents) // 2]
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock; breaker connected; load {high:g} A through "
                                            "one demand period"):
        clock = prepare(meter, bench_clock)
        load.set_current(high)
        load.on()
        first = boundary_after(clock.now() + timedelta(seconds=settle), period)
        clock.sleep_until(first + timedelta(seconds=period + settle))
        before = demand.maximum.read()
    usecase.measure("maximum demand before the end of billing (W)", before.value,
                    low=high * ac_source.nominal_voltage / 2, unit="W", article="4-17-6")
    begin = first + timedelta(seconds=2 * period)
    end = begin + timedelta(seconds=period)
    with usecase.step("1", LOAD, METER, f"load {low:g} A (less than before); at {begin:%H:%M} (meter time), "
                                        f"a period boundary: ACTION script table execute "
                                        f"{objects.billing_script_id} (end of billing); GET maximum demand"):
        periods = Periods(clock, ac_source, load, bench_clock, clock.now(), period)
        periods.step(low)
        periods.end(begin)
        bench_clock.sleep(settle)
        ScriptTable(meter.session, objects.billing_script_table).execute(objects.billing_script_id)
        cleared = demand.maximum.read()
    usecase.expect("maximum demand after the end of billing", cleared.value, 0.0, article="4-17-6")
    with usecase.step("2", LOAD, METER, f"load {low:g} A through the period {begin:%H:%M}-{end:%H:%M}; "
                                        "GET maximum demand"):
        periods.end(end)
        bench_clock.sleep(settle)
        after = demand.maximum.read()
        periods.sample()
    judge_average(usecase, limits, "maximum demand after a lower period", after.value, periods.average_w(begin, end))
    judge_stamp(usecase, "maximum demand capture_time", after.capture_time, end)


def test_demand_periods_at_the_ends_of_the_range_are_accepted(meter, demand, usecase):
    """The range of demand periods the meter must take includes its ends (the profile's shortest and longest,
    one hour): each is accepted, reads back, logs one parameter change; the period is then put back."""
    limits = demand.section.limits
    with usecase.step("0", HEAD_END, METER, "GET demand period"):
        original = demand.register.period()
    for bound in (limits.shortest_period, limits.longest_period):
        seconds = int(bound.value)
        with usecase.step(f"{seconds}s", HEAD_END, METER, f"GET standard event log; SET demand period {seconds} s; "
                                                          "GET period, standard event log"):
            log_before = meter.standard_event_log.entries()
            try:
                demand.register.set_period(seconds)
                refused = ""
            except ServiceError as exc:
                refused = exc.diagnosis or "refused"
            after = demand.register.period()
            logged = parameter_changes(meter, log_before)
        usecase.expect(f"period {seconds} s (the range's end) refused", refused, "", article=bound.article)
        usecase.expect(f"demand period read back after SET {seconds} s (s)", after, seconds, article=bound.article)
        usecase.expect(f"parameter-change events logged for SET {seconds} s", len(logged),
                       0 if seconds == original else 1, article="4-21")
    with usecase.step("1", HEAD_END, METER, f"SET demand period {original} s (put back); GET it"):
        demand.register.set_period(original)
        usecase.expect("demand period put back (s)", demand.register.period(), original, article="4-17-6")


def test_demand_period_written_survives_a_clock_set(meter, demand, bench_clock, usecase):
    """A period written takes effect at the next boundary of the running period even when the clock is set in
    between (a time sync must not re-initialise the demand settings): read back after the set, then the old
    period's end and one new period judged on both sides."""
    limits, parameters = demand.section.limits, demand.section.parameters
    period, new = parameters.period_s, parameters.new_period_s
    settle, tolerance = limits.update_delay.value, limits.boundary_tolerance.value
    step_s = meter.limits.clock_shift_step.value
    if period % new or new >= period or not 4 * (settle + tolerance) + step_s < period:
        pytest.fail(f"profile: new_period_s {new} must divide period_s {period} and be shorter, and period_s leave "
                    f"room for the clock step {step_s:g} s")
    with usecase.step("0", HEAD_END, METER, "precondition: SET clock to the reference time; GET demand period"):
        clock = prepare(meter, bench_clock)
        usecase.expect("demand period (s)", demand.register.period(), period, article="4-17-6")
    begin = boundary_after(clock.now() + timedelta(seconds=settle), period)
    end = begin + timedelta(seconds=period)
    try:
        with usecase.step("1", HEAD_END, METER, f"in the period {begin:%H:%M}-{end:%H:%M}: SET period {new} s; "
                                                f"SET clock {step_s:+g} s (a time sync); GET clock, period"):
            clock.sleep_until(begin + timedelta(seconds=settle))
            demand.register.set_period(new)
            before_set = clock.measure()
            meter.clock.write(clock.now() + timedelta(seconds=step_s), meter.clock.time_zone())
            moved = clock.measure() - before_set
            read_back = demand.register.period()
        usecase.measure(f"|clock moved by the set - {step_s:g} s|", abs(moved - step_s),
                        limit=meter.limits.clock_shift_tolerance)
        usecase.expect("demand period read back after the clock set (s)", read_back, new, article="4-17-6")
        with usecase.step("2", HEAD_END, METER, "just before the running period's end: GET capture_time"):
            clock.sleep_until(end - timedelta(seconds=2 * tolerance))
            early = demand.register.read()
        judge_stamp(usecase, "capture_time before the old period's end", early.capture_time, begin)
        with usecase.step("3", HEAD_END, METER, f"after the old period's end, just before and after one new period "
                                                f"({new} s): GET demand register"):
            judge_new_period_from(usecase, demand, clock, end, new, settle, tolerance)
    finally:
        with usecase.step("4", HEAD_END, METER, "SET clock to the reference time (undo the step); GET clock"):
            meter.clock.write(bench_clock.now(), meter.clock.time_zone())
            offset = MeterTime(meter, bench_clock).offset_s
    usecase.measure("|clock - reference| after the undo", abs(offset), limit=meter.limits.clock_sync_tolerance)
