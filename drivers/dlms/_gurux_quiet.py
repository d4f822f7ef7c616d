"""gurux-dlms prints diagnostics to stdout; route them to logging instead.

`gurux_to_log()` shadows `print` in the gurux modules that call it, for as long
as any session is inside a gurux call (reference counted, so concurrent
sessions nest correctly). Only gurux's prints are affected; other code printing
at the same time still reaches stdout.
"""
from __future__ import annotations

import importlib
import logging
import threading
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("smmc_bench.drivers.dlms.gurux")

# The gurux modules that call print() (found by grep in gurux-dlms 1.0.203).
_PRINTING_MODULES = (
    "gurux_dlms.GXDLMS", "gurux_dlms.GXDLMSClient", "gurux_dlms.GXDLMSSettings",
    "gurux_dlms._GXAPDU", "gurux_dlms.GXSecure", "gurux_dlms.GXDLMSChippering",
    "gurux_dlms.GXDLMSChipperingStream", "gurux_dlms.GXDLMSConverter",
    "gurux_dlms.GXDLMSTranslator", "gurux_dlms.objects.GXDLMSObjectCollection",
    "gurux_dlms.objects.GXDLMSProfileGeneric", "gurux_dlms.objects.GXDLMSSecuritySetup",
)
_lock = threading.Lock()
_depth = 0
_modules: list = []


def _print_to_log(*args, sep: str = " ", end: str = "\n", file=None, flush: bool = False) -> None:
    log.info("gurux: %s", sep.join(str(a) for a in args))


@contextmanager
def gurux_to_log() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0:
            if not _modules:
                _modules.extend(importlib.import_module(name) for name in _PRINTING_MODULES)
            for module in _modules:
                module.print = _print_to_log
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for module in _modules:
                    del module.print
