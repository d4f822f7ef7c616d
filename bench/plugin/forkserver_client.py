"""Stands in for a fresh Python interpreter when pytest-xdist starts a worker (`python=` of its
execnet spec): hands this process's stdin, stdout and stderr to the bench's fork server, which
forks an already-imported worker onto them, then waits and exits with the worker's status.

Run as `python -S forkserver_client.py SOCKET -u -c BOOTSTRAP`: only the standard library, no
site packages, so it costs a few milliseconds where an interpreter importing the bench costs half
a second. See smmc_bench.plugin.forkserver."""
import json
import os
import signal
import socket
import struct
import sys

EXIT = struct.Struct("!i")


def main() -> int:
    address, interpreter_args = sys.argv[1], sys.argv[2:]
    # Ctrl-C reaches the worker itself (same process group): this stand-in waits for its status.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    request = {"args": interpreter_args, "cwd": os.getcwd(), "env": dict(os.environ)}
    try:
        server.connect(address)
        socket.send_fds(server, [json.dumps(request).encode()], [0, 1, 2])
        reply = server.recv(EXIT.size)
    except OSError:
        reply = b""
    if len(reply) != EXIT.size:
        # The server is gone (killed mid-run) or refused: the worker starts as a fresh interpreter,
        # as without the server (a crashed worker's replacement must still start).
        server.close()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, *interpreter_args])
    (worker,) = EXIT.unpack(reply)
    # A stop asked of this process (execnet terminating its gateway) is the worker's to act on.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(worker, signal.SIGTERM))
    reply = server.recv(EXIT.size)
    if len(reply) != EXIT.size:  # the fork server went away first: the worker's status is unknown
        return 1
    (code,) = EXIT.unpack(reply)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
