"""`bench doctor`: probe every link and instrument of the bench and say what answered."""
from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table
from smmc_bench.cli.common import EXIT_FAILED, EXIT_OK, checked_bench, console
from smmc_bench.station import Station


def command_doctor(args: argparse.Namespace) -> int:
    """Probe every meter link of the bench and say what answered, or why not."""
    import time

    from smmc_bench.drivers.dlms import FrameTrace
    from smmc_bench.drivers.dlms.errors import DlmsError
    from smmc_bench.instruments import probe_instruments
    from smmc_bench.links import link_label, probe_link
    from smmc_bench.station import read_identity

    config = checked_bench(args.bench)
    if args.instruments:
        from smmc_bench.instrument_acceptance import command_doctor_instruments
        return command_doctor_instruments(args, config, console)
    table = Table(title=f"bench doctor - {escape(args.bench)}")
    for column in ("Device", "Link", "Answer", "Details"):
        table.add_column(column, overflow="fold")
    failures = 0
    with Station(config) as station:
        for test_id, (meter, index) in station.targets().items():
            link = meter.links[index]
            started = time.monotonic()
            probe = probe_link(link, meter.profile.links)
            if not probe.ok:
                failures += 1
                table.add_row(escape(test_id), escape(f"{link_label(link)}: {link.describe()}"), "[red]NO[/]",
                              escape(f"{probe.diagnosis} ({probe.seconds:.2f} s)"))
                continue
            link_details = "; ".join(d for d in (probe.identification, probe.negotiated_hdlc) if d)
            try:
                with station.session(meter, FrameTrace(), index) as session:
                    identity = read_identity(session, meter.profile)
                details = ", ".join(f"{k}={v}" for k, v in identity.items())
                details += f"; max PDU {session.negotiated_max_pdu}"
                answer = "[green]OK[/]"
            except DlmsError as exc:
                failures += 1
                answer, details = "[red]NO[/]", f"link up, DLMS association failed: {exc.diagnosis}"
            if link_details:
                details = f"{link_details}; {details}"
            elapsed = time.monotonic() - started
            table.add_row(escape(test_id), escape(f"{link_label(link)}: {link.describe()}"), answer,
                          escape(f"{details} ({elapsed:.2f} s)"))
        instruments = station.instruments
        for probe in probe_instruments(instruments.ac_source, instruments.load, station.clock):
            failures += not probe.ok
            table.add_row(escape(probe.name), "instrument", "[green]OK[/]" if probe.ok else "[red]NO[/]",
                          escape(probe.identification if probe.ok else probe.diagnosis))
    console.print(table)
    return EXIT_OK if failures == 0 else EXIT_FAILED


