"""Parallel workers forked from one pre-imported process instead of started as fresh interpreters.

A rack of 32 positions runs 32 pytest-xdist workers; each used to spend half a second of CPU
importing pytest, the bench, gurux-dlms, dlms-cosem and pydantic's models before its first test,
a third of the rack's CPU. The controller starts this fork server once (Linux only); xdist's
execnet spec then names `forkserver_client.py` as the worker's Python, which hands its
stdin/stdout/stderr over a Unix socket to the server; the server forks a child onto them that
runs execnet's bootstrap exactly as `python -u -c ...` would. Workers stay in the controller's
process group (Ctrl-C reaches them as before) and get the client's environment and folder.

Not imported before forking: test modules and every plugin module pytest would assertion-rewrite
(only the bench's own package, which holds no assertion, is imported early; its docstring tells
pytest so). `SMMC_BENCH_FORKSERVER=0` turns it off: each worker a fresh interpreter again.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import types
from pathlib import Path

EXIT = struct.Struct("!i")  # the worker's pid, then its exit status (as forkserver_client reads them)
SWITCH = "SMMC_BENCH_FORKSERVER"
READY = b"ready\n"
START_TIMEOUT_S = 60.0
CLIENT = Path(__file__).with_name("forkserver_client.py")

# What every worker imports before its first test, whatever it imports of them transitively.
PREIMPORTS = (
    "execnet", "execnet.gateway_base", "pytest", "_pytest.config", "_pytest.python", "_pytest.fixtures",
    "smmc_bench.plugin", "smmc_bench.plugin.session", "smmc_bench.station", "smmc_bench.fixtures.meter",
    "smmc_bench.fixtures.meter.mutants", "smmc_bench.drivers.dlms",
)


def supported() -> bool:
    return (sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")
            and os.environ.get(SWITCH, "1") != "0")


# -- the controller's side ---------------------------------------------------------------------
class ForkServer:
    """The running server, as the controller holds it."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="smmc-fork-")  # 0700: only this user connects
        self.address = os.path.join(self._folder.name, "s")
        self.process = subprocess.Popen([sys.executable, "-m", "smmc_bench.plugin.forkserver", self.address],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def wait_ready(self) -> bool:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        ready = selector.select(START_TIMEOUT_S) and self.process.stdout.readline() == READY
        selector.close()
        return bool(ready)

    def python(self) -> str:
        """The `python=` of an execnet spec: the client, run by this interpreter without site packages."""
        return shlex.join([sys.executable, "-S", str(CLIENT), self.address])

    def stop(self) -> None:
        """The server exits when its stdin closes; workers already forked go on to their end."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._folder.cleanup()


def start() -> ForkServer | None:
    """A ready fork server, or None (not Linux, turned off, or it failed to start: workers are then
    fresh interpreters, slower but the same)."""
    if not supported():
        return None
    server = ForkServer()
    try:
        if server.wait_ready():
            return server
    except BaseException:  # Ctrl-C while it starts: no server left behind
        server.stop()
        raise
    server.stop()
    return None


def use_for(specs, server: ForkServer) -> None:
    """Local (popen) specs that name no interpreter of their own start through the server."""
    for spec in specs:
        if getattr(spec, "popen", False) and not getattr(spec, "python", None):
            spec.python = server.python()


# -- the server ----------------------------------------------------------------------------------
def rewritten_names() -> set[str]:
    """The top-level modules pytest marks for assertion rewriting (those of pytest11 plugins):
    importing one before pytest starts makes pytest warn, and leaves its assertions plain."""
    import importlib.metadata

    from _pytest.config import _iter_rewritable_modules

    files = (str(file) for dist in importlib.metadata.distributions()
             if any(ep.group == "pytest11" for ep in dist.entry_points) for file in dist.files or [])
    return set(_iter_rewritable_modules(files))


def preimport() -> None:
    import _pytest.config

    marked = rewritten_names()
    names = [*PREIMPORTS, *(f"_pytest.{name}" for name in _pytest.config.default_plugins)]
    for name in names:
        top = name.split(".")[0]
        if top in marked and not (top == "smmc_bench" and "PYTEST_DONT_REWRITE" in (_doc(top) or "")):
            continue
        try:
            importlib.import_module(name)
        except Exception:  # a worker imports it again and reports what is wrong
            pass


def _doc(name: str) -> str | None:
    return importlib.import_module(name).__doc__


def serve(address: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the controller and the workers
    gc.disable()  # no collection in here: the pages the workers share stay unwritten
    preimport()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(address)
    except OSError:  # the controller gave up on us first (interrupted as we started) and removed the folder
        return
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listener")
    selector.register(sys.stdin, selectors.EVENT_READ, "controller")
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    workers: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, the client's connection)
    # SIGTERM (to the process group, as a CI runner stops a job) ends the server as the controller's
    # stop does: after its workers, so none is left unreaped (a zombie under a PID 1 that reaps none).
    signal.signal(signal.SIGTERM, _terminated)
    server = os.getpid()
    try:
        _serve(listener, selector, workers)
    finally:
        if os.getpid() == server:  # not a worker's end unwinding through here
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _reap(workers)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _reap(workers: dict[int, tuple[int, socket.socket]]) -> None:
    """Wait for the workers still running, and tell each client its worker's status."""
    for pidfd, (pid, connection) in list(workers.items()):
        try:
            _, status = os.waitpid(pid, 0)
            connection.sendall(EXIT.pack(os.waitstatus_to_exitcode(status)))
        except (OSError, ChildProcessError):
            pass
        os.close(pidfd)
        connection.close()
    workers.clear()


def _serve(listener: socket.socket, selector: selectors.BaseSelector,
           workers: dict[int, tuple[int, socket.socket]]) -> None:
    while True:
        for key, _ in selector.select():
            if key.data == "controller":
                if not os.read(sys.stdin.fileno(), 1024):
                    return  # the controller closed our stdin (done, or gone): no more workers to start
            elif key.data == "listener":
                connection, _ = listener.accept()
                try:
                    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
                    request = json.loads(message)
                except (OSError, ValueError):
                    connection.close()
                    continue
                gc.freeze()
                pid = os.fork()
                if pid == 0:  # the child: nothing of the server's stays open in a worker
                    selector.close()
                    listener.close()
                    connection.close()
                    for pidfd, (_, other) in workers.items():
                        os.close(pidfd)
                        other.close()
                    workers.clear()  # the server's to reap, not this worker's
                    _become_worker(request, fds)
                for fd in fds:
                    os.close(fd)
                connection.sendall(EXIT.pack(pid))
                pidfd = os.pidfd_open(pid)
                workers[pidfd] = (pid, connection)
                selector.register(pidfd, selectors.EVENT_READ, "worker")
            else:
                pid, connection = workers.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                try:
                    connection.sendall(EXIT.pack(os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass
                connection.close()


def _become_worker(request: dict, fds: list[int]) -> None:
    """In the forked child: the client's stdio, folder and environment, then execnet's bootstrap
    as `python -u -c "import sys;exec(eval(sys.stdin.readline()))"` runs it. It never returns:
    its end (or an exception) unwinds to the top of this module and the interpreter exits as a
    `python -c` would (threads joined, atexit run, a traceback and status 1 on an error)."""
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    args = request["args"]
    sys.dont_write_bytecode = "-B" in args or bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # -u: nothing held back
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    sys.argv = ["-c"]
    gc.enable()
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    exec(args[args.index("-c") + 1], main.__dict__)
    sys.exit(0)


if __name__ == "__main__":
    serve(sys.argv[1])
