"""HDLC efficiency: payload bytes / wire bytes, and wall time on a line paced at
9600 Bd against the line-rate floor (wire bytes x 10 / baud), for

- a 1,000-row load-profile read: the emulated meter's load profile
  (1.0.99.1.0.255: clock, status, A+ energy) filled with 1,000 rows, read with
  GET and block transfer (a meter model without one gets a stand-in with the
  same columns, and the output says so);
- a 64 KiB block transfer (GET of 64 octet-strings of 1 KiB);

each at max information field 128 (window 1) and at the largest the meter
accepts (2030, window 7), over a pty exactly as the bench reaches a serial
port. Target: >= 90 % of the floor's speed with the large information field.

Run: python benchmarks/hdlc_efficiency.py [--quick] [--baud 9600]
(--quick: 250 rows and 16 KiB, for a fast look; the full run takes about 4 min.)
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings  # noqa: E402
from smmc_bench.drivers.links.hdlc import HdlcParameters  # noqa: E402
from smmc_bench.drivers.links.hdlc_transport import HdlcTransport  # noqa: E402
from smmc_bench.drivers.links.stream import SerialStream  # noqa: E402
from smmc_bench.drivers.secret import Secret  # noqa: E402
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402
from smmc_bench.fixtures.links.cosem_port import find_hdlc_setup  # noqa: E402
from smmc_bench.fixtures.links.serve import prepare_port, serve_serial  # noqa: E402
from smmc_bench.fixtures.meter import (  # noqa: E402  # noqa: E402
    EmulatedMeter,
    axdr,
    cosem_time,
    default_lls_password,
)
from smmc_bench.fixtures.meter.cosem_objects import Attribute, CosemObject, DataObject  # noqa: E402

LOAD_PROFILE = "1.0.99.1.0.255"
BLOCK_OBJECT = "0.0.96.128.0.255"
TARGET = 0.90
TURNAROUND_S = 0.02  # a real meter's answer delay per frame (62056-46 leaves it to the meter; 20 ms is quick)


class LoadProfileStandIn(CosemObject):
    """IC 7 with `rows` 15-minute rows of (clock, status, A+ energy): what a load profile carries."""

    class_id, version = 7, 1

    def __init__(self, rows: int) -> None:
        super().__init__(LOAD_PROFILE)
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        buffer = axdr.array([
            axdr.structure(axdr.octet_string(cosem_time.encode(start + timedelta(minutes=15 * i), 0)),
                           axdr.unsigned(0), axdr.double_long_unsigned(1000 * i))
            for i in range(rows)])
        self.attributes[2] = Attribute(lambda: buffer)
        self.encoded = len(axdr.encode(buffer))


@dataclass
class Figure:
    name: str
    payload: int      # APDU bytes, both directions
    data: int         # the object's encoded value
    wire: int         # every byte on the line, both directions, flags to flags
    frames: int
    requests: int     # frames the bench sent (each waits for the meter's answer)
    wall: float | None = None
    baud: int | None = None

    @property
    def floor(self) -> float:
        return self.wire * 10 / self.baud

    def row(self) -> str:
        text = (f"{self.name:44} data {self.data:6} B  APDU {self.payload:6} B  wire {self.wire:6} B  "
                f"APDU/wire {self.payload / self.wire:5.1%}  data/wire {self.data / self.wire:5.1%}  "
                f"frames {self.frames:4}")
        if self.wall is not None:
            # The emulated meter answers at once; a real one takes its turnaround on each bench frame.
            real = self.floor / (self.wall + self.requests * TURNAROUND_S)
            text += (f"\n{'':44} {self.baud} Bd: wall {self.wall:6.1f} s, floor {self.floor:6.1f} s "
                     f"-> {self.floor / self.wall:5.1%} of the floor's speed "
                     f"({real:5.1%} with a {TURNAROUND_S * 1000:.0f} ms meter turnaround)")
        return text


def measure(meter, *, info: int, window: int, read: str, class_id: int, data: int, pace: int | None) -> Figure:
    setup = find_hdlc_setup(meter.model)
    for attribute, value in ((3, window), (4, window), (5, info), (6, info)):
        setup.set(attribute, (axdr.unsigned if attribute < 5 else axdr.long_unsigned)(value))
    served = serve_serial(meter, pace_baud=pace)
    try:
        transport = HdlcTransport(SerialStream(served.address), proposal=HdlcParameters.symmetric(info, window),
                                  timeout=30.0, connect_timeout=5.0)
        settings = SessionSettings(client_sap=1, server_logical=1, authentication=Authentication.LOW,
                                   password=Secret(default_lls_password()), timeout=30.0)
        with DlmsSession(transport, settings) as session:
            stats = transport.stats
            before = (stats.payload_sent + stats.payload_received, stats.bytes_sent + stats.bytes_received,
                      stats.frames_sent + stats.frames_received, stats.frames_sent)
            started = time.perf_counter()
            session.get(class_id, read, 2)
            wall = time.perf_counter() - started
            after = (stats.payload_sent + stats.payload_received, stats.bytes_sent + stats.bytes_received,
                     stats.frames_sent + stats.frames_received, stats.frames_sent)
    finally:
        served.stop()
    name = f"{'load profile' if class_id == 7 else 'block transfer'}, max info {info}, window {window}"
    return Figure(name, after[0] - before[0], data, after[1] - before[1], after[2] - before[2],
                  after[3] - before[3], wall if pace else None, pace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="250 rows and 16 KiB")
    parser.add_argument("--baud", type=int, default=9600)
    args = parser.parse_args()
    rows, size = (250, 16384) if args.quick else (1000, 65536)

    meter = EmulatedMeter(clock=VirtualClock())
    meter.start()
    try:
        prepare_port(meter)
        load_profile = getattr(meter.model, "load_profile", None)
        if load_profile is not None and hasattr(load_profile, "fill"):
            load_profile.fill(rows=rows)
            encoded = len(axdr.encode(load_profile.get(2)))
            print(f"The meter's load profile {LOAD_PROFILE}, filled with {rows} rows ({encoded} bytes encoded). "
                  f"Client max PDU 1024 (block transfer).")
        else:
            stand_in = LoadProfileStandIn(rows)
            meter.model.objects.append(stand_in)
            encoded = stand_in.encoded
            print(f"The emulated meter has no load profile: a {rows}-row IC 7 stand-in (clock, status, A+) is "
                  f"read instead ({encoded} bytes encoded). Client max PDU 1024 (block transfer).")
        # 64 x 1 KiB octet-strings: gurux's parser takes no 3-byte A-XDR length, so not one 64 KiB string.
        chunks = axdr.array([axdr.octet_string(bytes(range(256)) * 4) for _ in range(size // 1024)])
        block = DataObject(BLOCK_OBJECT, chunks)
        meter.model.objects.append(block)
        cases = [("load profile", LOAD_PROFILE, 7, encoded), ("block", BLOCK_OBJECT, 1, len(axdr.encode(chunks)))]
        configs = [(128, 1), (2030, 7)]
        print("\nBytes (unpaced):")
        for _, obis, class_id, data in cases:
            for info, window in configs:
                print(measure(meter, info=info, window=window, read=obis, class_id=class_id, data=data,
                              pace=None).row())
        print(f"\nWall time on a line paced at {args.baud} Bd (target >= {TARGET:.0%} of the floor's speed "
              f"with the large information field):")
        large = []
        for _, obis, class_id, data in cases:
            for info, window in configs:
                figure = measure(meter, info=info, window=window, read=obis, class_id=class_id, data=data,
                                 pace=args.baud)
                print(figure.row())
                if info == 2030:
                    large.append(figure.floor / figure.wall)
        verdict = "met" if min(large) >= TARGET else "NOT met"
        print(f"\nlarge information field: {min(large):.1%} of the floor's speed at worst -> target {verdict}")
    finally:
        meter.stop()


if __name__ == "__main__":
    main()
