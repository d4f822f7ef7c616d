"""One exception hierarchy for the bench's instruments (AC source, loads).

Every exception carries `.diagnosis`: one line saying which instrument, what
was attempted and what came back, so a verdict of ERROR says why without a
traceback; `str(exc) == exc.diagnosis`.
"""
from __future__ import annotations


class InstrumentError(Exception):
    def __init__(self, diagnosis: str) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        return self.diagnosis


class InstrumentUnreachable(InstrumentError):
    """The instrument could not be opened, refused the connection or dropped it."""


class InstrumentTimeout(InstrumentError):
    """The instrument did not answer within the timeout (silent, hung, or a query it does not know)."""

    def __init__(self, diagnosis: str, *, timeout: float = 0.0) -> None:
        super().__init__(diagnosis)
        self.timeout = timeout


class InstrumentCommandError(InstrumentError):
    """The instrument put an entry in its error queue after a command (SCPI `SYST:ERR?`) or
    answered a Modbus request with an exception code."""

    def __init__(self, diagnosis: str, *, command: str = "", code: int = 0, message: str = "") -> None:
        super().__init__(diagnosis)
        self.command, self.code, self.message = command, code, message


class InstrumentReplyError(InstrumentError):
    """The instrument answered with something that is not the reply asked for."""

    def __init__(self, diagnosis: str, *, raw: str = "") -> None:
        super().__init__(diagnosis)
        self.raw = raw


class NotSupported(InstrumentError):
    """The instrument's model (its command table) has no command for this operation; nothing was sent."""


__all__ = [
    "InstrumentError", "InstrumentUnreachable", "InstrumentTimeout",
    "InstrumentCommandError", "InstrumentReplyError", "NotSupported",
]
