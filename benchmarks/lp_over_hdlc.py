"""Load profile over HDLC: a head-end's 24-hour export, i.e. 24 h of the 15-minute load profile
(96 rows of clock, status, A+ energy) read by range over HDLC on a line paced at 9600 Bd, against
the line-rate floor for the bytes it puts on the line (wire bytes x 10 bits / baud).

The emulated meter runs 24 h of virtual time first (its own captures, about 0.1 s of wall
time), then is served over a pty exactly as the bench reaches a serial port, paced at the
baud rate. Two figures: the range read alone (GET with selective access, block transfer
as the PDU size needs), and the whole session (SNRM/UA, AARQ/AARE, the read, RLRQ, DISC).
Target (issue #10): the read takes at most 1.1x the floor.

Run: python benchmarks/lp_over_hdlc.py [--baud 9600] [--info 128] [--window 1] [--hours 24]
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smmc_bench.cosem.profile_generic import CaptureObject, ProfileGeneric  # noqa: E402
from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings  # noqa: E402
from smmc_bench.drivers.links.hdlc import HdlcParameters  # noqa: E402
from smmc_bench.drivers.links.hdlc_transport import HdlcTransport  # noqa: E402
from smmc_bench.drivers.links.stream import SerialStream  # noqa: E402
from smmc_bench.drivers.secret import Secret  # noqa: E402
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402
from smmc_bench.fixtures.links.cosem_port import find_hdlc_setup  # noqa: E402
from smmc_bench.fixtures.links.serve import prepare_port, serve_serial  # noqa: E402
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, default_lls_password  # noqa: E402

LOAD_PROFILE = "1.0.99.1.0.255"
CLOCK = CaptureObject(8, "0.0.1.0.0.255", 2, 0)
PERIOD_S = 900
TARGET = 1.1  # wall time / line-rate floor


def totals(stats) -> tuple[int, int, int]:
    return (stats.bytes_sent + stats.bytes_received, stats.payload_sent + stats.payload_received,
            stats.frames_sent + stats.frames_received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--info", type=int, default=2030, help="max information field (both directions)")
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()

    clock = VirtualClock()
    meter = EmulatedMeter(clock=clock, initial_clock_offset=0.0)
    meter.start()
    try:
        started = time.perf_counter()
        clock.sleep(args.hours * 3600 + PERIOD_S)  # one period more: the window's first row has a predecessor
        simulated = time.perf_counter() - started
        rows = meter.model.load_profile.rows
        end = rows[-1][0]
        start = end - timedelta(seconds=args.hours * 3600 - PERIOD_S)
        wanted = [r for r in rows if start <= r[0] <= end]
        prepare_port(meter)
        setup = find_hdlc_setup(meter.model)
        for attribute, value in ((3, args.window), (4, args.window), (5, args.info), (6, args.info)):
            setup.set(attribute, (axdr.unsigned if attribute < 5 else axdr.long_unsigned)(value))
        served = serve_serial(meter, pace_baud=args.baud)
        try:
            transport = HdlcTransport(SerialStream(served.address),
                                      proposal=HdlcParameters.symmetric(args.info, args.window),
                                      timeout=60.0, connect_timeout=10.0)
            settings = SessionSettings(client_sap=1, server_logical=1, authentication=Authentication.LOW,
                                       password=Secret(default_lls_password()), timeout=60.0)
            session_started = time.perf_counter()
            with DlmsSession(transport, settings) as session:
                stats = transport.stats
                before = totals(stats)
                read_started = time.perf_counter()
                got = ProfileGeneric(session, LOAD_PROFILE).by_range(CLOCK, start, end, meter.model.clock.time_zone)
                read_wall = time.perf_counter() - read_started
                after = totals(stats)
            session_wall = time.perf_counter() - session_started
            whole = totals(transport.stats)
        finally:
            served.stop()
    finally:
        meter.stop()

    if len(got) != len(wanted):
        raise SystemExit(f"the range read returned {len(got)} rows, the meter holds {len(wanted)} in the window")
    wire, payload, frames = (a - b for a, b in zip(after, before))
    floor = wire * 10 / args.baud
    session_floor = whole[0] * 10 / args.baud
    print(f"{args.hours} h of meter time simulated in {simulated:.2f} s wall; {len(got)} rows of "
          f"{PERIOD_S // 60}-minute load profile {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} read by range over HDLC "
          f"at {args.baud} Bd, max info {args.info}, window {args.window}.")
    print(f"range read:    APDU {payload:6} B  wire {wire:6} B  frames {frames:3}  wall {read_wall:6.2f} s  "
          f"floor {floor:6.2f} s  -> {read_wall / floor:.3f}x the floor")
    print(f"whole session: wire {whole[0]:6} B  frames {whole[2]:3}  wall {session_wall:6.2f} s  "
          f"floor {session_floor:6.2f} s  -> {session_wall / session_floor:.3f}x the floor")
    verdict = "met" if read_wall / floor <= TARGET else "NOT met"
    print(f"target: the read within {TARGET}x the line-rate floor for its bytes -> {verdict}")


if __name__ == "__main__":
    main()
