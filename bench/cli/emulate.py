"""`bench emulate`: serve an emulated meter for any DLMS client until interrupted."""
from __future__ import annotations

import argparse
import signal
import threading

from rich.markup import escape
from smmc_bench.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    checked_bench,
    console,
    error_console,
    usage_error,
)


def command_emulate(args: argparse.Namespace) -> int:
    from smmc_bench.fixtures.clock import VirtualClock
    from smmc_bench.fixtures.meter import (  # link mutants need a link: not served here
        MUTANTS,
        EmulatedMeter,
    )
    from smmc_bench.fixtures.meter.dialect import DIALECTS

    if args.mutant and args.mutant not in MUTANTS:
        usage_error(f"unknown meter mutant {args.mutant!r} (link mutants need a link: not served here); "
                    "`bench validate --list` lists them")
    if args.dialect is not None and args.dialect not in DIALECTS:
        usage_error(f"unknown dialect {args.dialect!r}; one of {', '.join(sorted(DIALECTS))}")
    if not 0 <= args.port <= 65535:
        usage_error(f"--port {args.port}: a TCP port is 0..65535 (0: any free port)")
    config = checked_bench(args.bench)
    emulated = next((m for m in config.meter if m.emulated), None)
    if emulated is None:
        error_console.print(f"[red]{escape(args.bench)} declares no emulated meter to take the security from[/]")
        return EXIT_USAGE
    password = config.resolve_password(emulated)
    keys = config.resolve_keys(emulated)
    hls = {} if keys is None else {"management_security": "hls-gmac", "hls_keys": (
        keys.authentication_key.reveal(), keys.encryption_key.reveal()),
        "hls_master_key": keys.master_key.reveal() if keys.master_key is not None else None}
    meter = EmulatedMeter(
        clock=VirtualClock(), mutant=args.mutant, lls_password=password.reveal() if password else b"",
        host=args.host, port=args.port, initial_clock_offset=config.emulator.initial_clock_offset,
        dialect=args.dialect or config.emulator.dialect, **hls,
    )
    try:
        meter.start()
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        usage_error(f"--host {args.host} --port {args.port}: cannot listen there: {exc.strerror or exc} "
                    "(another emulator or program may hold the port: choose another --port, or 0 for any free one)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        host, port = meter.address
        security = emulated.security
        secret_from = (f"env {security.password_env}" if security.password_env
                       else f"file {security.password_file}" if security.password_file else "none")
        console.print(f"[bold]emulated meter[/] {'(mutant ' + args.mutant + ')' if args.mutant else '(conforming)'}"
                      f" listening on [cyan]{host}:{port}[/] (DLMS/COSEM, TCP wrapper, LN referencing)")
        if keys is not None:
            secret_from = "keys: " + ", ".join(
                f"env {getattr(security, k + '_env')}" if getattr(security, k + "_env")
                else f"file {getattr(security, k + '_file')}" if getattr(security, k + "_file") else "test key"
                for k in ("authentication_key", "encryption_key"))
        mechanism = "HLS-GMAC" if keys is not None else "LLS"
        console.print(f"  server wPort 1; management client SAP 1 with {mechanism} ({escape(secret_from)});"
                      " public client SAP 16 without authentication")
        console.print(escape(f'  bench.toml:  [meter.link] kind = "tcp"  host = "{host}"  port = {port}'))
        console.print("  Ctrl-C to stop")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        meter.stop()
    console.print("emulated meter stopped")
    return EXIT_OK


