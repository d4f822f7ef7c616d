"""Meter positions in parallel (pytest-xdist): each position's tests stay on one worker, the workers
ship each verdict and what they read of the meters to the controller, and the controller alone writes
the run record, the results store and junit.xml, so every verdict is there exactly once."""
from __future__ import annotations

import contextlib
import json

import pytest
from smmc_bench.report.record import MeterRecord, TestRecord, Verdict

REPORT_ATTRIBUTE = "smmc_record"  # a test's record, as JSON, on its teardown report


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """The process that dispatches tests to workers (it runs none itself)."""
    return not is_worker(config) and config.pluginmanager.get_plugin("dsession") is not None


def position_of(nodeid: str, positions: dict[str, str]) -> str | None:
    """The meter position a test id runs on: its parameter id starts with one of the bench's
    target ids ('pos-1', 'emu-1-optical'), the longest that fits."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.rindex("[") + 1:-1]
    fits = [target for target in positions if params == target or params.startswith(target + "-")]
    return positions[max(fits, key=len)] if fits else None


def owner(group_index: int, workers: int) -> int:
    """The worker slot that runs a position group: fixed, so each worker serves only its own emulated
    meters instead of every position of the rack."""
    return group_index % workers


def _wires(meter) -> set[tuple]:
    """The lines a meter's links use that another meter's may share: an RS-485 bus or a gateway (by
    name), and on hardware a serial or optical port, or a serial server's or gateway's address.
    (An emulated meter's ports are its own, served by the bench.)"""
    wires: set[tuple] = set()
    for link in meter.all_links:
        for named in ("bus", "gateway"):
            if getattr(link, named, None):
                wires.add((named, getattr(link, named)))
        if getattr(meter, "emulated", False):
            continue
        port, host = getattr(link, "port", None), getattr(link, "host", None)
        if isinstance(port, str):
            wires.add(("port", port))
        elif host and port:
            wires.add(("address", host, port))
    return wires


def position_groups(meters) -> dict[str, int]:
    """Meter position -> its group: positions that share a wire (an RS-485 bus, a serial port, a
    gateway) form one group, run by one worker, so no two workers open the same line. Groups are
    numbered in the bench file's order."""
    parent = {meter.id: meter.id for meter in meters}

    def root(meter_id: str) -> str:
        while parent[meter_id] != meter_id:
            meter_id = parent[meter_id]
        return meter_id

    first_on: dict[tuple, str] = {}
    for meter in meters:
        for wire in _wires(meter):
            other = first_on.setdefault(wire, meter.id)
            parent[root(meter.id)] = root(other)
    numbers: dict[str, int] = {}
    return {meter.id: numbers.setdefault(root(meter.id), len(numbers)) for meter in meters}


def owned_positions(config: pytest.Config, meters) -> set[str] | None:
    """On a worker, the meter positions it runs (None: not a worker, every position)."""
    if not is_worker(config):
        return None
    index = slot_of(config.workerinput)
    workers = int(config.workerinput["workercount"])
    return {meter for meter, group in position_groups(meters).items() if owner(group, workers) == index}


# -- slots: which share of the positions a worker serves ---------------------------------------
# A worker's share is its slot, not its id: xdist gives a worker that replaces a crashed one a new id
# (gw2 of 2 workers), and the replacement must serve the crashed worker's positions.
SLOT = "smmc_slot"


def slot_of(workerinput: dict) -> int:
    return int(workerinput.get(SLOT, str(workerinput["workerid"]).removeprefix("gw")))


class Slots:
    """The controller's slot book: a starting worker takes the lowest slot no live worker holds."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}  # worker id -> slot

    def take(self, node) -> None:
        free = next(n for n in range(len(self.held) + 1) if n not in self.held.values())
        self.held[str(node.gateway.id)] = free
        node.workerinput[SLOT] = free

    def release(self, node) -> None:
        self.held.pop(str(node.gateway.id), None)


_SLOTS = pytest.StashKey[Slots]()


def slots(config: pytest.Config) -> Slots:
    return config.stash.setdefault(_SLOTS, Slots())


def position_scheduler(config: pytest.Config, log, positions: dict[str, str], meters):
    """xdist's scope scheduling with the meter position as the scope, each position group on its
    fixed worker (`owner`). xdist's own `loadgroup` renames test ids and, with pytest 9, no longer
    groups at all: tests/plugin/test_parallel.py pins that positions stay together."""
    from xdist.scheduler import LoadScopeScheduling

    index = position_groups(meters)

    class PositionScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return position_of(nodeid, positions) or super()._split_scope(nodeid)

        def _node_index(self, node) -> int:
            return slot_of(node.workerinput)

        def remove_node(self, node) -> str | None:
            """A worker that crashed: the test it was running is not run again (it would crash its
            replacement too; the controller records it as ERROR), its other tests go back to the
            queue for the replacement, which takes the same slot and so the same positions."""
            workload = self.assigned_work.pop(node)
            crashed = next((nodeid for unit in workload.values() for nodeid, done in unit.items() if not done), None)
            if crashed is None:
                return None
            for unit in workload.values():
                if crashed in unit:
                    unit[crashed] = True
            self.workqueue.update({scope: unit for scope, unit in workload.items() if not all(unit.values())})
            for other in self.assigned_work:
                self._reschedule(other)
            return crashed

        def add_node_collection(self, node, collection) -> None:
            """Each worker collects only its own positions: collections differ by design (xdist's
            check that they are equal would abort the run); a replacement collects its slot's again."""
            self.registered_collections[node] = list(collection)

        @property
        def collection_is_completed(self) -> bool:
            """Every slot has collected in a live worker. xdist counts collections, a crashed worker's
            too: its and its replacement's would start the run while a slow worker still collects, and
            that worker, given nothing, would be shut down with its positions never run."""
            if self.collection is not None:
                return True
            live = {slot_of(node.workerinput) for node in self.registered_collections if node in self.assigned_work}
            return live >= set(range(self.numnodes))

        def schedule(self) -> None:
            """The work queue is the union of the workers' collections, one unit per position (a
            collection that arrives later adds the tests no worker had collected yet)."""
            if self.collection is None:
                self.collection = []
            known = set(self.collection)
            for collection in list(self.registered_collections.values()):
                for nodeid in collection:
                    if nodeid not in known:
                        known.add(nodeid)
                        self.collection.append(nodeid)
                        self.workqueue.setdefault(self._split_scope(nodeid), {})[nodeid] = False
            for node in self.nodes:
                self._reschedule(node)
            for node in self.nodes:  # two units queued each where there are, as xdist's own scheduling
                self._reschedule(node)

        def _mine(self, node) -> list[str]:
            return [scope for scope in self.workqueue
                    if scope not in index or owner(index[scope], self.numnodes) == self._node_index(node)]

        def _assign_work_unit(self, node) -> None:
            mine = self._mine(node)
            if not mine:
                return
            work_unit = self.workqueue.pop(mine[0])
            self.assigned_work.setdefault(node, {})[mine[0]] = work_unit
            collection = self.registered_collections[node]
            try:
                node.send_runtest_some([collection.index(nodeid) for nodeid, done in work_unit.items() if not done])
            except OSError:
                # The worker died after its last report and before the controller heard of the crash:
                # the unit waits in the queue for its replacement (remove_node follows).
                del self.assigned_work[node][mine[0]]
                self.workqueue[mine[0]] = work_unit

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self._mine(node):
                if self._pending_of(self.assigned_work.get(node, {})) == 0:
                    with contextlib.suppress(OSError):  # already gone (crashed): nothing to shut down
                        node.shutdown()
                return
            if self._pending_of(self.assigned_work.get(node, {})) > 2:
                return
            self._assign_work_unit(node)

    return PositionScheduling(config, log)


def ship_test(report: pytest.TestReport, record: TestRecord) -> None:
    setattr(report, REPORT_ATTRIBUTE, record.model_dump_json())


def received_test(report: pytest.TestReport) -> TestRecord | None:
    shipped = getattr(report, REPORT_ATTRIBUTE, None)
    return TestRecord.model_validate_json(shipped) if shipped else None


def crashed_test(report: pytest.TestReport, positions: dict[str, str]) -> TestRecord | None:
    """The controller's record of a test whose worker died under it (xdist reports it failed, with no
    record shipped): an ERROR, so the record still holds every verdict once."""
    if not report.failed or report.when in ("setup", "call", "teardown"):
        return None
    name = report.nodeid.rsplit("::", 1)[-1]
    return TestRecord(id=report.nodeid, name=name.split("[", 1)[0], meter=position_of(report.nodeid, positions),
                      verdict=Verdict.ERROR,
                      diagnosis=f"the bench's worker process ended while running this test ({report.longrepr}); "
                                f"the position's other tests went on in a new worker")


def ship_session(config: pytest.Config, meters: list[MeterRecord], instrument_ids: dict[str, str],
                 safe_state: list[str]) -> None:
    config.workeroutput["smmc_meters"] = json.dumps([m.model_dump(mode="json") for m in meters])
    config.workeroutput["smmc_instruments"] = json.dumps(instrument_ids)
    config.workeroutput["smmc_safe_state"] = json.dumps(safe_state)


def received_session(node) -> tuple[list[MeterRecord], dict[str, str], list[str]]:
    output = getattr(node, "workeroutput", None) or {}
    meters = [MeterRecord.model_validate(m) for m in json.loads(output.get("smmc_meters", "[]"))]
    return meters, json.loads(output.get("smmc_instruments", "{}")), json.loads(output.get("smmc_safe_state", "[]"))


def drain_after_interrupt(config: pytest.Config, on_node_down) -> None:
    """The workers' last words after an interrupt. xdist's controller stops reading its workers'
    events when the interrupt reaches it, then tears them down; meanwhile each worker judged its
    interrupted test ERROR, put its meters back and read back their safe state, and sent all that:
    the events wait, unread, in the controller's queue. The workers are torn down here and their
    reports handed on as xdist would (every plugin sees them: junit, the record, the console), before
    junit writes its file (xdist internals: `DSession.queue`, `.nodemanager`, its `worker_*` event
    handlers; tests/plugin/test_parallel.py pins them)."""
    import queue

    dsession = config.pluginmanager.get_plugin("dsession")
    nodes = getattr(dsession, "nodemanager", None)
    if nodes is not None:
        nodes.teardown_nodes()  # now, not at xdist's own session end (after junit wrote its file)
    events = getattr(dsession, "queue", None)
    while events is not None:
        try:
            name, kwargs = events.get_nowait()
        except queue.Empty:
            return
        if name in ("testreport", "logstart", "logfinish"):
            getattr(dsession, f"worker_{name}")(**kwargs)
        elif name == "workerfinished":  # the node holds its workeroutput already
            on_node_down(kwargs["node"])


def interrupted_on_worker(nodeid: str, positions: dict[str, str], signal_name: str | None) -> TestRecord:
    """A test a worker had started when the run was interrupted and whose own record never reached
    the controller (the worker was stopped first): an ERROR, not a test missing from the record."""
    name = nodeid.rsplit("::", 1)[-1]
    return TestRecord(id=nodeid, name=name.split("[", 1)[0], meter=position_of(nodeid, positions),
                      verdict=Verdict.ERROR,
                      diagnosis=f"interrupted ({signal_name or 'signal'}) while running on a worker; the "
                                f"worker's own record of it did not reach the controller")


def merged_safe_state(held: list[str], received: list[str]) -> list[str]:
    """The safe state lines of every worker, once each; a position one worker did not serve ("meter
    pos-2: not started") is said by the worker that served it."""
    lines = held + [line for line in received if line not in held]
    said = {line.split(":", 1)[0] for line in lines if not line.endswith(": not started")}
    return [line for line in lines if not (line.endswith(": not started") and line.split(":", 1)[0] in said)]
