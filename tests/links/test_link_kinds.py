"""Every link kind end to end, as the station builds them: `smmc_bench.links.serve_emulated_links`
serves emulated meters, `open_transport` dials them through the same drivers as hardware."""
from __future__ import annotations

import threading
import time

import pytest
from pydantic import TypeAdapter, ValidationError
from smmc_bench.drivers.dlms.errors import (
    ConnectFailed,
    DlmsError,
    DlmsTimeout,
    MalformedReply,
)
from smmc_bench.drivers.links import mode_e
from smmc_bench.fixtures.links.cosem_port import find_hdlc_setup
from smmc_bench.fixtures.links.hdlc_server import CONFORMING as CONFORMING_BEHAVIOUR
from smmc_bench.links import (
    EmulatedMeterLinks,
    GatewayLink,
    HdlcTcpLink,
    Link,
    OpticalLink,
    Rs485Link,
    SerialLink,
    TcpWrapperLink,
    link_label,
    open_transport,
    probe_link,
    serve_emulated_links,
)

from .conftest import management, public

SERIAL = "0.0.96.1.0.255"


@pytest.fixture
def serve(stoppers):
    def make(layout: dict[str, tuple[object, list]], mutant: str | None = None):
        servers = serve_emulated_links([EmulatedMeterLinks(i, links, m) for i, (m, links) in layout.items()],
                                       link_mutant=mutant)
        stoppers.append(servers.stop)
        return servers.links

    return make


def serial_over(link) -> bytes:
    transport = open_transport(link)
    session = management(transport, server_logical=link.server_logical, timeout=link.timeout)
    with session:
        return session.get(1, SERIAL, 2)


def test_every_kind_reaches_the_meter(emu, serve):
    declared = [TcpWrapperLink(), OpticalLink(), SerialLink(name="pty"), SerialLink(name="rfc", port="rfc2217://"),
                SerialLink(name="sock", port="socket://"), HdlcTcpLink(), Rs485Link(), GatewayLink()]
    links = serve({"m": (emu, declared)})["m"]
    assert [link.kind for link in links] == [link.kind for link in declared]
    assert all(not link.missing_address() for link in links)
    for link in links:
        assert serial_over(link) == b"EMU0000001", link.describe()


def test_optical_sign_on_switches_baud_and_records_the_identification(emu, serve):
    link = serve({"m": (emu, [OpticalLink()])})["m"][0]
    transport = open_transport(link)
    with management(transport) as session:
        session.get(1, SERIAL, 2)
    stream = transport.stream
    ident = stream.identification
    assert (ident.maker.upper(), ident.baud, ident.hdlc, ident.ident) == ("EMU", 9600, True, "EMU0000001")
    assert 0.015 <= ident.reaction_time < 0.5
    wire = transport.wire_trace.to_text()
    for step in ("mode E sign-on request", "identification", "option select", "echo of the option select",
                 "line switched to 9600 Bd 8N1", "SNRM", "DISC"):
        assert step in wire


def test_meter_ignores_a_bench_that_does_not_switch_baud(emu, serve, monkeypatch):
    link = serve({"m": (emu, [OpticalLink(connect_timeout=0.5, timeout=0.5)])})["m"][0]
    monkeypatch.setattr(mode_e.OpticalStream, "reconfigure", lambda self, **kw: "not at all")
    with pytest.raises(ConnectFailed, match="no UA"):
        public(open_transport(link)).connect()


def test_optical_tolerates_a_probe_that_echoes_everything(emu, stoppers):
    from smmc_bench.fixtures.links.lines import LineServer, PtyMedium
    from smmc_bench.fixtures.links.optical import ModeEFront
    from smmc_bench.fixtures.links.serve import _endpoint

    medium = PtyMedium()
    front = ModeEFront(medium, ident="ECHO")
    line = LineServer(medium, [_endpoint(emu, CONFORMING_BEHAVIOUR, logical=1, physical=None, point_to_point=True,
                                         label="echo", port="optical", on_disconnect=front.reset)],
                      front=front, probe_echo=True).start()
    stoppers.append(line.stop)
    assert serial_over(OpticalLink(port=medium.path, echo=True)) == b"EMU0000001"


def test_wake_up_sends_nul_characters_first(emu, serve, monkeypatch):
    monkeypatch.setattr(mode_e, "WAKE_UP_PAUSE_S", 0.01)
    link = serve({"m": (emu, [OpticalLink(wake_up=True)])})["m"][0]
    transport = open_transport(link)
    with public(transport) as session:
        session.get(1, SERIAL, 2)
    assert "wake-up: 66 NUL characters" in transport.wire_trace.to_text()


def test_identification_without_hdlc_is_refused():
    with pytest.raises(ValueError):
        mode_e.parse_identification(b"/EMU5 no escape\n")
    ident = mode_e.parse_identification(b"/ABc6\\2\\5ID-1\r\n", 0.03)
    assert (ident.maker, ident.baud, ident.hdlc, ident.enhanced, ident.reaction_min) == \
        ("ABc", 19200, True, ("2", "5"), 0.02)
    assert mode_e.parse_option_select(mode_e.option_select("5")) == ("2", "5", "2")
    assert mode_e.parse_sign_on_request(mode_e.sign_on_request("1234")) == "1234"
    assert mode_e.strip_parity(mode_e.even_parity(b"/?!\r\n")) == (b"/?!\r\n", 0)


def test_bus_of_three_meters_one_transaction_at_a_time(meters, serve):
    trio = meters(3)
    links = serve({f"b{i}": (m, [Rs485Link(bus="A")]) for i, m in enumerate(trio)})
    bus = [links[f"b{i}"][0] for i in range(3)]
    assert len({link.port for link in bus}) == 1
    assert sorted(link.physical_address for link in bus) == [0x11, 0x12, 0x13]
    for meter, link in zip(trio, bus):
        assert int(find_hdlc_setup(meter.model).get(9).value) == link.physical_address
    results: dict[int, list[bytes]] = {}
    errors: list[BaseException] = []

    def reader(index: int) -> None:
        try:
            with management(open_transport(bus[index])) as session:
                results[index] = [session.get(1, SERIAL, 2) for _ in range(5)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors, errors
    assert results == {i: [f"EMU{i + 1:07d}".encode()] * 5 for i in range(3)}


def test_meter_answering_for_another_address_garbles_the_bus(meters, serve):
    trio = meters(3)
    links = serve({f"b{i}": (m, [Rs485Link(bus="A", timeout=0.5, connect_timeout=0.5, retries=1)])
                   for i, m in enumerate(trio)}, mutant="hdlc-answers-any-address")
    started = time.monotonic()
    with pytest.raises(DlmsError):
        serial_over(links["b0"][0])
    assert time.monotonic() - started < 5


def test_gateway_routes_by_wport(meters, serve):
    trio = meters(3)
    links = serve({f"g{i}": (m, [GatewayLink(gateway="G")]) for i, m in enumerate(trio)})
    gateway = [links[f"g{i}"][0] for i in range(3)]
    assert len({(link.host, link.port) for link in gateway}) == 1
    assert [link.wport for link in gateway] == [1, 2, 3]
    assert [serial_over(link) for link in gateway] == [f"EMU{i + 1:07d}".encode() for i in range(3)]
    lost = gateway[0].model_copy(update={"wport": 9, "timeout": 0.3})
    with pytest.raises(DlmsTimeout):
        serial_over(lost)


def test_gateway_mutant_sends_every_wport_to_the_first_meter(meters, serve):
    links = serve({f"g{i}": (m, [GatewayLink()]) for i, m in enumerate(meters(3))},
                  mutant="gateway-routes-to-first-meter")
    assert {serial_over(links[f"g{i}"][0]) for i in range(3)} == {b"EMU0000001"}


def test_probe_link_reports_identification_and_negotiation(emu, serve):
    links = serve({"m": (emu, [OpticalLink(), TcpWrapperLink()])})["m"]
    optical = probe_link(links[0])
    assert optical.ok and "maker EMu" in optical.identification and "max info tx 128" in optical.negotiated_hdlc
    tcp = probe_link(links[1])
    assert tcp.ok and tcp.identification is None
    gone = probe_link(SerialLink(port="/dev/does-not-exist"))
    assert not gone.ok and "cannot open /dev/does-not-exist" in gone.diagnosis and gone.seconds < 1


def test_link_validation_names_the_key():
    adapter = TypeAdapter(Link)
    for bad, key in [({"kind": "optical", "max_info_length": 5000}, "max_info_length"),
                     ({"kind": "rs485", "physical_address": 1, "physical_from_serial": "123"}, "not both"),
                     ({"kind": "serial", "address_size": 3}, "address_size"),
                     ({"kind": "gateway", "wport": 0}, "wport"),
                     ({"kind": "modem"}, "kind")]:
        with pytest.raises(ValidationError) as error:
            adapter.validate_python(bad)
        assert key in str(error.value)
    rs485 = adapter.validate_python({"kind": "rs485", "port": "/dev/ttyUSB1", "physical_from_serial": "SN-87654321"})
    assert rs485.physical == 5321 and rs485.missing_address() == []
    assert adapter.validate_python({"kind": "rs485"}).missing_address() == ["port", "physical_address"]
    assert adapter.validate_python({"kind": "serial", "port": "rfc2217://"}).missing_address() == ["port"]
    assert link_label(adapter.validate_python({"kind": "gateway", "name": "dc"})) == "dc"


def test_malformed_identification_is_a_malformed_reply(stoppers):
    from smmc_bench.fixtures.links.lines import PtyMedium

    medium = PtyMedium()
    stoppers.append(medium.close)

    def answer() -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if medium.read(0.05):
                medium.write(mode_e.even_parity(b"garbage without end"))
                return

    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(MalformedReply, match="identification incomplete"):
        public(open_transport(OpticalLink(port=medium.path, connect_timeout=0.5))).connect()


def test_a_meter_without_power_is_dark_on_every_hdlc_link(emu, serve):
    links = serve({"m": (emu, [OpticalLink(connect_timeout=0.4, timeout=0.4),
                               SerialLink(connect_timeout=0.4, timeout=0.4)])})["m"]
    assert serial_over(links[1]) == b"EMU0000001"
    emu.set_supply(0.0, 50.0)
    for link, error in ((links[0], DlmsTimeout), (links[1], ConnectFailed)):  # no identification; no UA
        with pytest.raises(error):
            public(open_transport(link)).connect()
    emu.set_supply(220.0, 50.0)
    emu.bench_clock.sleep(5)  # past the boot time
    assert [serial_over(link) for link in links] == [b"EMU0000001"] * 2
