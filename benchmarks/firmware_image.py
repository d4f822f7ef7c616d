"""Firmware image over HDLC: a 256 KiB test image transferred through the image transfer object
(IC 18) on a line paced at 9600 Bd, against the line-rate floor for the bytes it puts on the
line (every frame's bytes, HDLC overhead included, at 10 bits per byte).

The emulated meter is served over a pty exactly as the bench reaches a serial port, paced at the
baud rate. The bench transfers as a head-end does: image_transfer_initiate, then one
image_block_transfer per block of the meter's image_block_size, then the meter verifies it
(the image is checked to have arrived whole). Two figures: the transfer (initiate and every
block) alone, and the whole session (SNRM/UA, AARQ/AARE, the transfer, verify, RLRQ, DISC).
Target (issue #12): the transfer takes at most 1.1x the floor.

Run: python benchmarks/firmware_image.py [--baud 9600] [--info 2030] [--window 7] [--size 262144]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smmc_bench.cosem.image_transfer import (  # noqa: E402
    ImageTransfer,
    TransferStatus,
    build_test_image,
    send_blocks,
)
from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings  # noqa: E402
from smmc_bench.drivers.links.hdlc import HdlcParameters  # noqa: E402
from smmc_bench.drivers.links.hdlc_transport import HdlcTransport  # noqa: E402
from smmc_bench.drivers.links.stream import SerialStream  # noqa: E402
from smmc_bench.drivers.secret import Secret  # noqa: E402
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402
from smmc_bench.fixtures.links.cosem_port import find_hdlc_setup  # noqa: E402
from smmc_bench.fixtures.links.serve import prepare_port, serve_serial  # noqa: E402
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, default_lls_password  # noqa: E402
from smmc_bench.profile.firmware import FirmwareProfile  # noqa: E402

TARGET = 1.1  # wall time / line-rate floor


def totals(stats) -> tuple[int, int, int]:
    return (stats.bytes_sent + stats.bytes_received, stats.payload_sent + stats.payload_received,
            stats.frames_sent + stats.frames_received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--info", type=int, default=2030, help="max information field (both directions)")
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--size", type=int, default=256 * 1024, help="image size in octets")
    args = parser.parse_args()

    profile = FirmwareProfile()
    image = build_test_image(profile.image, None, "BENCH-FW-2", args.size)
    clock = VirtualClock()
    meter = EmulatedMeter(clock=clock, initial_clock_offset=0.0)
    meter.start()
    try:
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
                transfer = ImageTransfer(session, profile.objects.image_transfer)
                block_size = transfer.block_size()
                count = len(image.blocks(block_size))
                stats = transport.stats
                before = totals(stats)
                transfer_started = time.perf_counter()
                transfer.initiate(image.identifier, image.size)
                send_blocks(transfer, image, block_size, range(count))
                transfer_wall = time.perf_counter() - transfer_started
                after = totals(stats)
                first = transfer.first_not_transferred()
                transfer.verify()
                status = transfer.status()
                negotiated = transport.negotiated if hasattr(transport, "negotiated") else None
            session_wall = time.perf_counter() - session_started
            whole = totals(transport.stats)
        finally:
            served.stop()
    finally:
        meter.stop()

    if first != count or status != TransferStatus.VERIFICATION_SUCCESSFUL:
        raise SystemExit(f"the transfer did not arrive whole: first not transferred {first} of {count}, "
                         f"status {status}")
    wire, payload, frames = (a - b for a, b in zip(after, before))
    floor = wire * 10 / args.baud
    session_floor = whole[0] * 10 / args.baud
    print(f"{image.size} B image in {count} blocks of {block_size} B (the meter's image_block_size) over HDLC at "
          f"{args.baud} Bd, max info {args.info}, window {args.window}"
          + (f" (negotiated {negotiated})" if negotiated is not None else "") + "; verified by the meter.")
    print(f"transfer:      APDU {payload:7} B  wire {wire:7} B  frames {frames:5}  wall {transfer_wall:7.2f} s  "
          f"floor {floor:7.2f} s  -> {transfer_wall / floor:.3f}x the floor")
    print(f"whole session: wire {whole[0]:7} B  frames {whole[2]:5}  wall {session_wall:7.2f} s  "
          f"floor {session_floor:7.2f} s  -> {session_wall / session_floor:.3f}x the floor")
    print(f"wire efficiency: image {image.size} B / wire {wire} B = {image.size / wire:.3f}")
    verdict = "met" if transfer_wall / floor <= TARGET else "NOT met"
    print(f"target: the transfer within {TARGET}x the line-rate floor for its bytes -> {verdict}")


if __name__ == "__main__":
    main()
