"""pytest fixtures and hooks for link-level tests (registered by smmc_bench.plugin.session once a bench is asked for).

- marker `links("optical", ...)`: the test runs over links of these kinds only;
  other (meter, link) pairs are deselected (a bench without such a link does
  not run the test at all);
- every test that holds a `meter` gets the wire trace of each link it used
  (bytes with timestamps, passwords masked) written beside its DLMS trace and
  attached to the report;
- `link_info`: what the meter's link negotiated and saw (identification,
  HDLC parameters, frame statistics);
- `link_access`: frees the meter's link and opens, on the same link, a raw HDLC
  probe or a session as another client (the meter's own session is closed
  while they run, as one line carries one connection);
- small COSEM views the architecture tests read (association, HDLC setup).
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from smmc_bench.cosem.hdlc_setup import HDLC_SETUP
from smmc_bench.drivers.dlms import (
    Authentication,
    DlmsSession,
    FrameTrace,
    SessionSettings,
)
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.links.hdlc import HdlcParameters
from smmc_bench.drivers.dlms.security import HlsKeys
from smmc_bench.drivers.secret import Secret
from smmc_bench.links import hdlc_proposal, is_hdlc, link_label, open_transport
from smmc_bench.plugin.recorder import note_wire_trace, recorder_of

MARKER = "smmc_links(*kinds): run only over the meter's links of these kinds (optical, serial, hdlc-tcp, rs485, tcp, gateway)"
SECURITY_MARKER = ("smmc_management_security(*mechanisms): run only for meters whose management client the bench "
                   "associates with one of these mechanisms (low, high-gmac)")


_WIRE = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.addinivalue_line("markers", SECURITY_MARKER)


def _declared_kinds(config: pytest.Config) -> dict[str, tuple[str, str]]:
    """test id (meter, or meter-link) -> (meter id, link kind) as bench.toml declares them."""
    from smmc_bench.station import target_ids

    kinds = {}
    for settings in recorder_of(config).bench_config().meter:
        declared = [link.kind for link in settings.all_links] or ["tcp"]
        for test_id, kind in zip(target_ids(settings), declared):
            kinds[test_id] = (settings.id, kind)
    return kinds


def _declared_mechanisms(config: pytest.Config) -> dict[str, str]:
    """test id (meter, or meter-link) -> the mechanism its management client associates with."""
    from smmc_bench.station import target_ids

    return {test_id: settings.security.authentication.value
            for settings in recorder_of(config).bench_config().meter for test_id in target_ids(settings)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked links(...) run over the links of those kinds only, tests marked
    management_security(...) on meters whose management client uses one of those mechanisms
    only; the other (test, meter, link) combinations are deselected: they are not failures or
    skips, they do not exist."""
    targets = mechanisms = None
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("smmc_links")
        security = item.get_closest_marker("smmc_management_security")
        callspec = getattr(item, "callspec", None)
        if (marker is None and security is None) or callspec is None or "meter" not in callspec.params:
            keep.append(item)
            continue
        wanted = True
        if marker is not None:
            if targets is None:
                targets = _declared_kinds(config)
            _, kind = targets.get(callspec.params["meter"], ("?", "?"))
            wanted = kind in marker.args
        if security is not None:
            if mechanisms is None:
                mechanisms = _declared_mechanisms(config)
            wanted = wanted and mechanisms.get(callspec.params["meter"], "?") in security.args
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def register_wire_trace(request: pytest.FixtureRequest, label: str, trace: FrameTrace) -> None:
    request.node.stash.setdefault(_WIRE, []).append((label, trace))


@pytest.fixture(autouse=True)
def link_wire_traces(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used a meter: its links' wire traces, one file, attached to the report."""
    yield
    meter = (getattr(request.node, "funcargs", None) or {}).get("meter")
    traces = list(request.node.stash.get(_WIRE, []))
    session, link = getattr(meter, "session", None), getattr(meter, "link", None)
    if session is not None and link is not None:  # the plugin's MeterUnderTest, not another test's `meter`
        own = getattr(session.transport, "wire_trace", None)
        if own is not None:
            traces.insert(0, (f"{link_label(link)} ({link.kind}), the meter's session", own))
    if not traces or not any(len(trace) for _, trace in traces):
        return
    try:
        from smmc_bench.station import trace_path

        test_id = request.node.callspec.params.get("meter", "bench") if hasattr(request.node, "callspec") else "bench"
        path = trace_path(recorder_of(request.config).run_dir, test_id, request.node.name).with_suffix(".wire.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for label, trace in traces:
                out.write(f"# wire trace: {label}\n{trace.to_text()}\n")
        note_wire_trace(request.node, path)  # attached to the test by the recorder
    except OSError:
        traceback.print_exc()


@dataclass
class LinkInfo:
    kind: str
    description: str
    negotiated: HdlcParameters | None      # HDLC, the bench's point of view (tx = what the bench sends)
    identification: Any                    # smmc_bench.drivers.links.mode_e.Identification (optical) or None
    stats: Any                             # smmc_bench.drivers.links.hdlc_transport.LinkStats (HDLC) or None


def link_info_of(meter) -> LinkInfo:
    transport = meter.session.transport
    stream = getattr(transport, "stream", None)
    return LinkInfo(meter.link.kind, meter.link.describe(), getattr(transport, "negotiated", None),
                    getattr(stream, "identification", None), getattr(transport, "stats", None))


@pytest.fixture
def link_info(meter) -> LinkInfo:
    return link_info_of(meter)


class LinkAccess:
    """The meter's link for a probe or another client; the meter's own session steps aside."""

    def __init__(self, request: pytest.FixtureRequest, meter, station) -> None:
        self.request, self.meter, self.station = request, meter, station
        self.link = meter.link
        self._opened: list = []

    def suspend(self) -> None:
        """Release and close the meter's session: the line is free (DISC sent)."""
        session = self.meter.session
        try:
            session.release()
        except DlmsError:
            pass
        session.close()

    def resume(self) -> None:
        """Associate the meter's own session again (SNRM/AARQ as for any new connection)."""
        self.close_all()
        self.meter.session.connect()

    def probe(self, *, proposal: HdlcParameters | None | str = "profile", physical: int | None = None,
              answer_window: float | None = None):
        """A raw HDLC probe on the meter's link, line open, no frame sent yet (as the public client)."""
        from smmc_bench.drivers.links.probe import HdlcProbe

        if not is_hdlc(self.link):
            pytest.skip(f"link {link_label(self.link)} ({self.link.kind}) carries no HDLC")
        self.suspend()
        profile = self.meter.profile.links
        if proposal == "profile":
            proposal = hdlc_proposal(self.link, profile) or HdlcParameters()
        window = answer_window if answer_window is not None else profile.hdlc.no_answer_window.value
        base = open_transport(self.link, profile)
        probe = HdlcProbe(base.stream, physical_address=self.link.physical if physical is None else physical,
                          address_size=self.link.address_size, proposal=proposal, timeout=self.link.timeout,
                          connect_timeout=self.link.connect_timeout, retries=self.link.retries,
                          answer_window=window)
        register_wire_trace(self.request, f"{link_label(self.link)}: HDLC probe", probe.wire_trace)
        self._opened.append(probe.end)
        probe.begin(self.meter.profile.clients.public_sap, self.link.server_logical)
        return probe

    def session(self, client_sap: int, *, authenticate: bool = False, transport=None,
                max_pdu: int = 1024, password: Secret | None = None, keys: HlsKeys | None = None) -> DlmsSession:
        """An unconnected session as `client_sap` over a fresh connection on this link (or over
        `transport`, e.g. a probe), with the bench's password only when `authenticate`, or with
        `password` (a wrong one, to see it refused). On an HLS-GMAC bench `authenticate` takes the
        bench's keys, or `keys` (wrong ones, to see them refused)."""
        self.suspend()
        if transport is None:
            transport = open_transport(self.link, self.meter.profile.links)
            register_wire_trace(self.request, f"{link_label(self.link)}: client SAP {client_sap}",
                                transport.wire_trace)
        if keys is None and authenticate and password is None:
            keys = self.meter.station_meter.keys
        if password is None and authenticate and keys is None:
            password = self.meter.station_meter.password
        authentication = Authentication.HIGH_GMAC if keys is not None else \
            Authentication.LOW if password is not None else Authentication.NONE
        settings = SessionSettings(
            client_sap=client_sap, server_logical=self.link.server_logical,
            authentication=authentication, password=password, keys=keys, timeout=self.link.timeout,
            max_pdu=max_pdu, counter_memory=self.meter.station_meter.counter_memory)
        trace = FrameTrace()
        register_wire_trace(self.request, f"DLMS frames of client SAP {client_sap}", trace)
        session = DlmsSession(transport, settings, trace=trace)
        self._opened.append(session.close)
        return session

    def close_all(self) -> None:
        while self._opened:
            try:
                self._opened.pop()()
            except DlmsError:
                pass


@pytest.fixture
def link_access(request: pytest.FixtureRequest, meter, bench_station) -> Iterator[LinkAccess]:
    access = LinkAccess(request, meter, bench_station)
    try:
        yield access
    finally:
        access.close_all()


def own_physical_address(meter) -> int:
    """The lower HDLC address the meter answers to: the link's, else its HDLC setup's device_address."""
    if meter.link.physical is not None:
        return meter.link.physical
    try:
        return int(meter.session.get(HDLC_SETUP, meter.profile.links.hdlc.setup.obis, 9))
    except DlmsError:
        return 0x10  # the usual default device address


def unknown_physical_address(own: int, taken: set[int]) -> int:
    """A lower address no meter on this line has (the 2-byte form: up to 0x7F)."""
    for candidate in list(range(own + 1, 0x7F)) + list(range(0x10, own)):
        if candidate not in taken and candidate != own:
            return candidate
    raise RuntimeError("no free physical address on this bus")


def neighbour_addresses(station, link) -> set[int]:
    """Physical addresses of the other meters on the same bus (an unknown address must avoid them)."""
    used = set()
    for other in station.meters.values():
        for candidate in other.links:
            if candidate.kind == "rs485" and getattr(candidate, "port", None) == getattr(link, "port", None):
                if candidate.physical is not None:
                    used.add(candidate.physical)
    return used


def serial_number(meter) -> str:
    """The meter's serial number read over the test's own session, as the station records identities."""
    value = meter.session.get(1, meter.profile.objects.serial_number, 2)
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
