"""A misbehaving DLMS peer for driver tests: a threaded TCP server on a free
127.0.0.1 port that answers each received wrapper frame with the next scripted step."""
from __future__ import annotations

import socket
import struct
import threading
import time

SILENT = object()   # read the request, answer nothing
CLOSE = object()    # read the request, close the connection

# --- small byte builders (server -> client, wPorts 1 -> 1 unless told) -------------------


def frame(apdu: bytes, *, version: int = 1, source: int = 1, destination: int = 1,
          length: int | None = None) -> bytes:
    return struct.pack(">HHHH", version, source, destination, len(apdu) if length is None else length) + apdu


def _ber(tag: int, content: bytes) -> bytes:
    return bytes((tag, len(content))) + content


def aare(result: int = 0, diagnostic: int = 0, max_pdu: int = 1024) -> bytes:
    initiate = bytes((0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00, 0x00, 0x10, 0x1D)) + struct.pack(">H", max_pdu) + b"\x00\x07"
    body = (_ber(0xA1, bytes.fromhex("060760857405080101"))
            + _ber(0xA2, bytes((0x02, 0x01, result)))
            + _ber(0xA3, _ber(0xA1, bytes((0x02, 0x01, diagnostic)))))
    if result == 0:
        body += _ber(0xBE, _ber(0x04, initiate))
    return _ber(0x61, body)


RLRE = bytes.fromhex("6303800100")


def get_normal(data: bytes, invoke: int = 0xC1) -> bytes:
    return bytes((0xC4, 0x01, invoke, 0x00)) + data


def get_error(code: int, invoke: int = 0xC1) -> bytes:
    return bytes((0xC4, 0x01, invoke, 0x01, code))


def get_block(number: int, raw: bytes, last: bool, invoke: int = 0xC1) -> bytes:
    assert len(raw) < 0x80
    return bytes((0xC4, 0x02, invoke, int(last))) + struct.pack(">I", number) + bytes((0x00, len(raw))) + raw


def set_result(code: int, invoke: int = 0xC1) -> bytes:
    return bytes((0xC5, 0x01, invoke, code))


def action_result(code: int, data: bytes | None = None, invoke: int = 0xC1) -> bytes:
    tail = b"\x00" if data is None else b"\x01\x00" + data
    return bytes((0xC7, 0x01, invoke, code)) + tail


PLACEHOLDER_INVOKE = 0xC1  # replies built with it answer with the request's own invoke-id


def _echo_invoke_id(step: bytes, request: bytes) -> bytes:
    """A scripted GET/SET/ACTION reply whose invoke byte is the placeholder takes the request's:
    the session gives each request its own invoke-id and checks the reply carries it."""
    if (len(step) > 10 and step[8] in (0xC4, 0xC5, 0xC7) and step[10] == PLACEHOLDER_INVOKE
            and len(request) > 2 and request[0] in (0xC0, 0xC1, 0xC3)):
        return step[:10] + bytes((request[2],)) + step[11:]
    return step


OCTETS_12 = bytes((0x09, 12)) + bytes.fromhex("07ea0b1a04020e151300f000")


class ScriptedPeer:
    """steps: one per request received; bytes are sent as-is (build frames with frame())."""

    def __init__(self, steps: list) -> None:
        self.steps = list(steps)
        self.received: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "ScriptedPeer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)

    def _read_exact(self, conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = conn.recv(n - len(buf))
            except socket.timeout:
                if self._stop.is_set():
                    return None
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self) -> None:
        try:
            self._listener.settimeout(0.1)
        except OSError:
            return  # closed before the thread ran
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(0.1)
            with conn:
                while True:
                    header = self._read_exact(conn, 8)
                    if header is None:
                        break
                    apdu = self._read_exact(conn, struct.unpack(">HHHH", header)[3])
                    if apdu is None:
                        break
                    self.received.append(apdu)
                    step = self.steps.pop(0) if self.steps else SILENT
                    if step is CLOSE:
                        break
                    if isinstance(step, bytes):
                        step = _echo_invoke_id(step, apdu)
                    if isinstance(step, list):  # chunks and pauses (float seconds)
                        for part in step:
                            if isinstance(part, float):
                                time.sleep(part)
                            else:
                                conn.sendall(part)
                    elif step is not SILENT:
                        conn.sendall(step)
