"""The meter's local customer interface (I1, meter -> display), as the bench hears it."""
from smmc_bench.drivers.display.p1 import P1Listener, P1Telegram, parse_telegram

__all__ = ["P1Listener", "P1Telegram", "parse_telegram"]
