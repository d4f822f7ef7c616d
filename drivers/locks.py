"""Inter-process locks on the bench's physical resources (an AC source, a load, a serial port), so
two workers of one run, or two runs on one station, never drive the same instrument or line at once.

A lock is an fcntl lock on a file named after the resource in a lock folder ($SMMC_BENCH_LOCKS, else
/tmp/smmc-bench-locks); the holder writes its pid there, so a refusal names who holds it. The
kernel drops the lock when its holder dies: a crashed run never leaves a resource locked.
Shared (read) locks let several tests use a resource that one exclusive holder must have alone,
e.g. every meter powered by an AC source, against the test that cuts it."""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from smmc_bench.drivers.instruments.errors import InstrumentError

DEFAULT_FOLDER = Path("/tmp/smmc-bench-locks")


class ResourceBusy(InstrumentError):
    """Another process holds the resource past the wait."""


def lock_folder() -> Path:
    folder = Path(os.environ.get("SMMC_BENCH_LOCKS", DEFAULT_FOLDER))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def holders_of(path: Path, table: Path = Path("/proc/locks")) -> list[tuple[int, str]]:
    """(pid, "exclusive" | "shared") of each process holding an flock on `path`, from Linux's
    /proc/locks (empty where there is none, or the file is gone)."""
    try:
        info = os.stat(path)
        lines = table.read_text().splitlines()
    except OSError:
        return []
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[1] != "FLOCK" or fields[5] != device:
            continue  # "->": a process waiting for the lock, not holding it
        found.append((int(fields[4]), "exclusive" if fields[3] == "WRITE" else "shared"))
    return sorted(set(found))


class ResourceLock:
    def __init__(self, resource: str, *, shared: bool = False, wait_s: float = 3600.0, poll_s: float = 0.05) -> None:
        self.resource, self.shared, self.wait_s, self.poll_s = resource, shared, wait_s, poll_s
        digest = hashlib.sha256(resource.encode()).hexdigest()[:16]
        self.path = lock_folder() / f"{digest}.lock"
        self._file = None

    def acquire(self) -> "ResourceLock":
        handle = open(self.path, "a+")
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(handle, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    handle.close()
                    raise ResourceBusy(f"{self.resource}: held by {holder} for more than {self.wait_s:g} s "
                                       f"(another worker or run on this station)") from None
                time.sleep(self.poll_s)
        if not self.shared:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
        self._file = handle
        return self

    def _holder(self) -> str:
        """Who holds the lock now, from the kernel's lock table (shared holders write no pid, and
        the file may still name an exclusive holder that has gone), else the pid in the file."""
        holders = holders_of(self.path)
        if holders:
            named = " and ".join(f"pid {pid}" for pid, _ in holders)
            return named + (" (sharing it)" if all(mode == "shared" for _, mode in holders) else "")
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "ResourceLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
