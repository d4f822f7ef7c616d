"""How the bench reaches a meter: the link kinds `bench.toml` can name, the
transport each opens, and the emulated servers behind them on the emulated bench.

One model per link kind; `open_transport` turns a link into a driver transport;
`serve_emulated_links` serves emulated meters over the links they declare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from drivers.dlms import TcpWrapperTransport, Transport


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcpWrapperLink(_Strict):
    """IEC 62056-47 TCP wrapper, as spoken by meters with a LAN/cellular modem and by gateways."""

    kind: Literal["tcp"] = "tcp"
    name: str | None = Field(default=None, description="label for reports; defaults to the kind")
    # Left out on an emulated meter: the bench fills in the emulator's address.
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    server_wport: int = Field(default=1, ge=0, le=0xFFFF)
    connect_timeout: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=5.0, gt=0, description="seconds to wait for each reply")

    @property
    def server_logical(self) -> int:
        return self.server_wport

    def missing_address(self) -> list[str]:
        """The addressing keys a real meter's link must give."""
        return [key for key in ("host", "port") if getattr(self, key) is None]

    def describe(self) -> str:
        return f"tcp://{self.host}:{self.port} wPort {self.server_wport}"


Link = Annotated[Union[TcpWrapperLink], Field(discriminator="kind")]


def link_label(link: Link) -> str:
    return link.name or link.kind


def open_transport(link: Link) -> Transport:
    """An unopened transport for `link` (the DLMS session opens and closes it)."""
    if isinstance(link, TcpWrapperLink):
        return TcpWrapperTransport(link.host, link.port, connect_timeout=link.connect_timeout)
    raise TypeError(f"no transport for link kind {link.kind!r}")


@dataclass
class EmulatedMeterLinks:
    """An emulated meter and the links `bench.toml` declares for it (none: its own TCP wrapper)."""

    meter_id: str
    declared: list[Link]
    emulator: object  # fixtures.meter.EmulatedMeter, started


@dataclass
class EmulatedLinkServers:
    """Concrete links to the emulated meters, and how to stop what serves them."""

    links: dict[str, list[Link]] = field(default_factory=dict)
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        while self.stoppers:
            self.stoppers.pop()()


def serve_emulated_links(meters: list[EmulatedMeterLinks]) -> EmulatedLinkServers:
    """Serve each emulated meter over each link it declares; return the links the bench dials."""
    servers = EmulatedLinkServers()
    for meter in meters:
        host, port = meter.emulator.address
        concrete: list[Link] = []
        for link in meter.declared or [TcpWrapperLink(host=host, port=port)]:
            if isinstance(link, TcpWrapperLink):
                concrete.append(link.model_copy(update={"host": host, "port": port}))
            else:
                raise TypeError(f"the emulated bench cannot serve link kind {link.kind!r}")
        servers.links[meter.meter_id] = concrete
    return servers
