"""A real PostgreSQL server for the store's tests, started by the tests themselves: the
distribution's server binaries, run as an unprivileged user when the tests run as root (the
server refuses root). Skipped with the reason where no server can start."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess

import pytest

PASSWORD = "store-test-secret"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> str:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    folder = tmp_path_factory.mktemp("postgres")
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root and no runuser to start PostgreSQL as an unprivileged user")
        prefix = [runuser, "-u", "nobody", "--"]
        os.chmod(folder, 0o777)
        for parent in folder.parents:  # nobody must be able to reach the folder
            if str(parent) in ("/", "/tmp"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    (folder / "pw").write_text(PASSWORD)
    os.chmod(folder / "pw", 0o644)
    port = _free_port()
    data = folder / "data"
    environment = dict(os.environ, LC_ALL="C", HOME=str(folder))
    try:
        subprocess.run(prefix + [initdb, "-D", str(data), "-U", "bench", "--auth=scram-sha-256",
                                 f"--pwfile={folder / 'pw'}", "-E", "UTF8"],
                       check=True, capture_output=True, text=True, timeout=120, env=environment)
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60",
                                 "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, text=True, timeout=120, env=environment)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(f"PostgreSQL could not start here: {detail.strip().splitlines()[-1] if detail.strip() else exc}")
    yield f"postgresql+psycopg://bench@127.0.0.1:{port}/postgres"
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60,
                   env=environment)
