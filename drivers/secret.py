"""A byte string that never shows itself in reprs, logs, tracebacks or f-strings."""
from __future__ import annotations

import hmac
import os
from pathlib import Path

_MASK = "Secret(***)"


class SecretUnavailable(ValueError):
    """The secret's source (environment variable, file) is missing or empty."""


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray) -> None:
        if not isinstance(value, (bytes, bytearray)):
            # A str would be ambiguous (which encoding?) and easy to log by mistake.
            raise TypeError(f"Secret wraps bytes, not {type(value).__name__}")
        self._value = bytes(value)

    @classmethod
    def from_env(cls, name: str) -> "Secret":
        value = os.environ.get(name)
        if value is None:
            raise SecretUnavailable(f"environment variable {name} is not set")
        if value == "":
            raise SecretUnavailable(f"environment variable {name} is empty")
        return cls(value.encode("utf-8"))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "Secret":
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise SecretUnavailable(f"secret file {p} does not exist") from None
        except OSError as exc:
            raise SecretUnavailable(f"secret file {p} cannot be read: {exc.strerror}") from None
        # Editors add a final newline; it is never part of a meter password.
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            raise SecretUnavailable(f"secret file {p} is empty")
        return cls(data)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        # Equal secrets must hash equal; the length is all we are willing to leak.
        return hash((Secret, len(self._value)))

    def __reduce__(self):
        raise TypeError("a Secret is not picklable (it would leave the process in clear)")
