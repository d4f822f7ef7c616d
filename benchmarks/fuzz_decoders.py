"""Long fuzz run: at least 100,000 hypothesis-generated inputs for every decoder the bench
applies to bytes from a meter or an instrument (tests/fuzz/decoders.py lists them), printing
per decoder how many inputs it took and how many exceptions escaped that are not the bench's
own errors. Target: 0 escapes.

Run: python benchmarks/fuzz_decoders.py [--inputs 100000] [--only NAME]
(exit 1 when anything escaped; the first escapes of each decoder are printed.)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import HypothesisException  # noqa: E402

from tests.fuzz.decoders import DECODERS, Decoder, escapes  # noqa: E402

SHOWN = 3


def fuzz(decoder: Decoder, inputs: int) -> tuple[int, list[str]]:
    counted = 0
    escaped: list[str] = []

    # Escapes are counted, not raised: hypothesis then keeps generating instead of shrinking.
    @settings(max_examples=inputs, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(decoder.inputs)
    def run(data):
        nonlocal counted
        counted += 1
        exc = escapes(decoder, data)
        if exc is not None:
            escaped.append(f"{type(exc).__name__}: {exc} on {data!r}"[:300])

    try:
        run()
    except HypothesisException as exc:  # e.g. a search space exhausted before the count
        escaped.append(f"hypothesis stopped: {exc}")
    return counted, escaped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--only", default=None, help="only the decoders whose name contains this")
    args = parser.parse_args(argv)
    total_escapes = 0
    print(f"{'decoder':40} {'inputs':>9} {'escapes':>8} {'seconds':>8}")
    for decoder in DECODERS:
        if args.only and args.only.lower() not in decoder.name.lower():
            continue
        started = time.monotonic()
        counted, escaped = fuzz(decoder, args.inputs)
        total_escapes += len(escaped)
        print(f"{decoder.name:40} {counted:>9} {len(escaped):>8} {time.monotonic() - started:>8.1f}", flush=True)
        for line in escaped[:SHOWN]:
            print(f"    {line}")
    print(f"total escapes: {total_escapes}")
    return 1 if total_escapes else 0


if __name__ == "__main__":
    raise SystemExit(main())
