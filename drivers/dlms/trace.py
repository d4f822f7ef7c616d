"""Frame trace: every frame sent and received, with a one-line summary.

Secrets registered with `redact()` are masked in the stored raw bytes at
record time, so no later rendering (text, JSON, file) can leak them.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

_MASK_BYTE = 0x2A  # '*': visibly not a real byte pattern in hex dumps ("2a2a2a")


@dataclass(frozen=True)
class TraceEntry:
    timestamp: datetime   # wall-clock UTC
    direction: str        # "tx" | "rx"
    raw: bytes            # the frame as on the wire, secrets masked
    summary: str

    def to_text(self) -> str:
        return f"{self.timestamp.isoformat()} {self.direction} {self.summary} {self.raw.hex()}"

    def to_jsonable(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp.isoformat(), "direction": self.direction,
                "summary": self.summary, "hex": self.raw.hex()}


class FrameTrace:
    def __init__(self) -> None:
        self._entries: list[TraceEntry] = []
        self._secrets: list[bytes] = []
        self._lock = threading.Lock()

    def redact(self, secret: bytes) -> None:
        """Mask `secret` in every frame recorded from now on."""
        if secret:
            with self._lock:
                if secret not in self._secrets:
                    self._secrets.append(bytes(secret))
                    # Longest first, so a secret that contains another is masked whole.
                    self._secrets.sort(key=len, reverse=True)

    def record(self, direction: str, raw: bytes, summary: str) -> TraceEntry:
        raw = bytes(raw)
        for secret in self._secrets:
            if secret in raw:
                raw = raw.replace(secret, bytes((_MASK_BYTE,)) * len(secret))
            if secret in summary.encode("utf-8", "replace"):
                summary = "(summary withheld: it contained a secret)"
        entry = TraceEntry(datetime.now(timezone.utc), direction, raw, summary)
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[TraceEntry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[TraceEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def to_text(self) -> str:
        return "\n".join(entry.to_text() for entry in self.entries)

    def to_jsonable(self) -> list[dict[str, Any]]:
        return [entry.to_jsonable() for entry in self.entries]

    def write_text(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_text() + "\n", encoding="utf-8")
        return path

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_jsonable(), indent=1) + "\n", encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"FrameTrace({len(self)} entries)"
