"""Child process for the safe-state tests: takes the source out of its safe state inside a
SafeStateGuard, says READY, then waits to be interrupted (or raises, in 'exception' mode).

    python -m tests.instruments.safe_state_child <resource> <model> <signal|exception>
"""
from __future__ import annotations

import sys
import time

from smmc_bench.drivers.instruments import AcSource, SafeStateGuard


def main(resource: str, model: str, mode: str) -> None:
    source = AcSource(resource, model=model, timeout=1.0).open()
    with SafeStateGuard(source):
        source.set_voltage(90.0)
        source.set_frequency(60.0)
        source.off()
        print("READY", flush=True)
        if mode == "exception":
            raise RuntimeError("test step failed mid-test")
        time.sleep(30)  # the parent interrupts us long before this ends
    print("not interrupted", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
