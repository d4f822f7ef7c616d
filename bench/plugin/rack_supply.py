"""One supply cut for every meter position on the AC source (the `rack_supply` fixture).

The positions of a rack hang on one AC source. A supply test that cut it once per
position would cut every meter N times and take N times as long. A test that asks
`rack_supply.cut(seconds, before)` instead runs the cut once: the first position's
test reads the state of every position whose same test comes next (`before(meter)`,
over that meter's own session), cuts the supply, checks that each meter answers
again, and leaves each position its state and the outage. Each position's own test
then judges its meter on its own: its verdict, its measurements, its frame traces
(the readings made before the cut are attached to it).

A position uses the shared cut only when its test runs in the same run of that test
right after the one that made the cut (nothing else ran between on this process);
otherwise it cuts for itself, as it would alone. A worker of a parallel run shares
a cut among the positions it serves (the emulated source of a worker feeds only
those; on hardware the AC source lock keeps other workers' tests out meanwhile).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, Iterator, TypeVar

import pytest
from smmc_bench.drivers.dlms import FrameTrace
from smmc_bench.drivers.dlms.errors import DlmsError, LinkError
from smmc_bench.plugin.links import register_wire_trace
from smmc_bench.procedures import Outage, cut_supply
from smmc_bench.station import MeterUnderTest

T = TypeVar("T")

AC_SOURCE = "AC source (bench)"
HEAD_END = "Head-end (bench)"
METER = "Meter"


@dataclass
class _Position(Generic[T]):
    """What one waiting position got from the test that cut the supply."""

    before: T
    trace: FrameTrace
    answered_after_s: float | None = None  # bench seconds from the restoration to its first association
    silent: str = ""  # why it did not answer within the restart time ("" if it did)


@dataclass
class _SharedCut:
    key: tuple
    made_by: str  # the test id that cut the supply
    outage: Outage | None = None
    pending: dict[str, _Position] = field(default_factory=dict)  # test id -> its position's share


@dataclass(frozen=True)
class Cut(Generic[T]):
    """The cut a position's test judges: its state before, the outage, and whether its meter came back."""

    before: T
    outage: Outage
    silent: str  # "" when the meter answered within the profile's restart time, else the diagnosis
    shared_with: tuple[str, ...]  # the other positions judged against the same cut
    made_by: str


_SHARED = pytest.StashKey[dict]()  # "cut": the _SharedCut waiting for its positions, "last": the test before


def _group_key(item: pytest.Item) -> tuple | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "meter" not in callspec.params:
        return None
    others = tuple(sorted((name, repr(value)) for name, value in callspec.params.items() if name != "meter"))
    return (str(item.path), item.originalname, others)


class RackSupply:
    def __init__(self, request: pytest.FixtureRequest, meter: MeterUnderTest, station, ac_source, clock,
                 usecase) -> None:
        self.request, self.meter, self.station = request, meter, station
        self.ac_source, self.clock, self.usecase = ac_source, clock, usecase
        self.state = request.config.stash.setdefault(_SHARED, {})

    # -- which positions wait for the same test ----------------------------------------------
    def _runs_here(self, item: pytest.Item) -> bool:
        target = item.callspec.params.get("meter") if hasattr(item, "callspec") else None
        if target not in self.station.targets():
            return False
        meter_id = self.station.targets()[target][0].id
        return self.station.serve_only is None or meter_id in self.station.serve_only

    def _waiting(self) -> list[pytest.Item]:
        """The tests run next on this process that are this test on other meters of the source, in order."""
        node = self.request.node
        key = _group_key(node)
        items = [item for item in self.request.session.items if self._runs_here(item)]
        if key is None or node not in items:
            return []
        meters = {self.meter.id}
        waiting = []
        for item in items[items.index(node) + 1:]:
            if _group_key(item) != key:
                break
            station_meter, _ = self.station.targets()[item.callspec.params["meter"]]
            if station_meter.id in meters:
                break  # the same meter again (another link): it cuts for itself
            meters.add(station_meter.id)
            features = [mark.args[0] for mark in item.iter_markers("smmc_feature")]
            if station_meter.unreachable or not all(station_meter.profile.has(f) for f in features):
                continue  # it will be skipped or found unreachable without cutting anything
            waiting.append(item)
        return waiting

    # -- the cut ---------------------------------------------------------------------------
    def cut(self, seconds: float, before: Callable[[MeterUnderTest], T], *, step: str = "1",
            before_step: str = "0", before_information: str = "GET the state before the cut") -> Cut[T]:
        """Cut the supply for `seconds` once for this position and those whose same test runs next;
        `before(meter)` reads a meter's state before the cut. The evidence steps go to this test's usecase."""
        node = self.request.node
        shared: _SharedCut | None = self.state.get("cut")
        position = shared.pending.pop(node.nodeid, None) if shared is not None else None
        if position is not None and shared.outage is not None and self.state.get("last") in (
                shared.made_by, *self.state.get("judged", ())):
            return self._judge_shared(shared, position, seconds, before_step, before_information, step)
        self.state.pop("cut", None)
        return self._cut_for_all(seconds, before, step, before_step, before_information)

    def _cut_for_all(self, seconds, before, step, before_step, before_information) -> Cut:
        node, limits = self.request.node, self.meter.profile.supply.limits
        others: list[tuple[pytest.Item, object, int]] = []  # (test, its StationMeter, link index)
        shared = _SharedCut(key=_group_key(node), made_by=node.nodeid)
        with self.usecase.step(before_step, HEAD_END, METER, before_information):
            mine = before(self.meter)
        for item in self._waiting():
            station_meter, link_index = self.station.targets()[item.callspec.params["meter"]]
            trace = FrameTrace()
            session = self.station.session(station_meter, trace, link_index)
            try:
                with session:
                    other = MeterUnderTest(station_meter, session, station_meter.links[link_index])
                    shared.pending[item.nodeid] = _Position(before(other), trace)
                others.append((item, station_meter, link_index))
            except DlmsError:
                shared.pending.pop(item.nodeid, None)  # that position's own test meets the problem itself
        positions = tuple(self.station.targets()[item.callspec.params["meter"]][0].id for item, *_ in others)
        with self.usecase.step(step, AC_SOURCE, METER, f"supply cut for {seconds:g} s, then restored") as cut_step:
            outage = cut_supply(self.ac_source, seconds, self.clock)
            cut_step.information += f" [{outage.how}]" + (
                f"; one cut for this position and {', '.join(positions)} on the same source" if positions else "")
        shared.outage = outage
        with self.usecase.step(f"{step}.1", HEAD_END, METER, "associate again after restoration"):
            silent = self._answering_again(self.meter.session, outage, limits.restart_time.value)
        for item, station_meter, link_index in others:
            # Each waiting meter is associated once now, bounded from the restoration, then left for its own test.
            position = shared.pending[item.nodeid]
            session = self.station.session(station_meter, position.trace, link_index)
            position.silent = self._answering_again(session, outage, limits.restart_time.value)
            session.close()
        if shared.pending:
            self.state["cut"] = shared
            self.state["judged"] = []
        self._judge_restart(silent, outage)
        return Cut(mine, outage, silent, positions, node.nodeid)

    def _answering_again(self, session, outage: Outage, restart_s: float) -> str:
        """'' when the meter associates within `restart_s` of the restoration, else the diagnosis."""
        since = (self.clock.monotonic() - outage.ended_monotonic) if outage.ended_monotonic is not None else 0.0
        remaining = max(0.0, restart_s - since)
        start = self.clock.monotonic()
        while True:
            session.close()
            try:
                session.connect()
                return ""
            except LinkError as exc:
                if self.clock.monotonic() - start >= remaining:
                    return exc.diagnosis
            except DlmsError as exc:
                return exc.diagnosis
            self.clock.sleep(min(1.0, remaining - (self.clock.monotonic() - start)))

    def _judge_shared(self, shared: _SharedCut, position: _Position, seconds, before_step, before_information,
                      step) -> Cut:
        node, outage = self.request.node, shared.outage
        made_by = shared.made_by.rsplit("::", 1)[-1]
        with self.usecase.step(before_step, HEAD_END, METER, f"{before_information} (read during {made_by}, "
                                                           f"before the shared cut)"):
            pass
        register_wire_trace(self.request, f"the readings before the shared cut (during {made_by})", position.trace)
        with self.usecase.step(step, AC_SOURCE, METER, f"supply cut for {seconds:g} s, then restored "
                                                       f"[{outage.how}]; one cut shared with {made_by}"):
            pass
        with self.usecase.step(f"{step}.1", HEAD_END, METER, f"associated again after restoration (during "
                                                             f"{made_by}), and for this test"):
            pass
        self.state.setdefault("judged", []).append(node.nodeid)
        self._judge_restart(position.silent, outage)
        return Cut(position.before, outage, position.silent, (), shared.made_by)

    def _judge_restart(self, silent: str, outage: Outage) -> None:
        limits = self.meter.profile.supply.limits
        self.usecase.expect(f"meter answers within {limits.restart_time.value:g} s of the restoration (diagnosis)",
                            silent, "", article="5-4")
        self.usecase.measure("outage as injected, measured at the source (informative)", outage.duration_s,
                             unit="s", article="5-4")
        if outage.applied_uncertainty_s is not None:
            self.usecase.measure("uncertainty of the measured outage (informative)", outage.applied_uncertainty_s,
                                 unit="s", article="5-4")


@pytest.fixture
def rack_supply(request: pytest.FixtureRequest, meter, bench_station, ac_source, bench_clock,
                usecase) -> Iterator[RackSupply]:
    yield RackSupply(request, meter, bench_station, ac_source, bench_clock, usecase)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """The test that ran last on this process: a shared cut is only used right after its group."""
    item.config.stash.setdefault(_SHARED, {})["last"] = item.nodeid
