"""A minimal gurux client over a plain socket (TCP wrapper), for interop tests only."""
from __future__ import annotations

import socket

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType


class GuruxLink:
    def __init__(self, address: tuple[str, int], client_sap: int = 1, password: bytes | None = None,
                 max_pdu: int = 0xFFFF) -> None:
        authentication = Authentication.LOW if password is not None else Authentication.NONE
        self.client = GXDLMSClient(True, client_sap, 1, authentication,
                                   password.decode() if password is not None else None,
                                   InterfaceType.WRAPPER)
        self.client.maxReceivePDUSize = max_pdu
        self.sock = socket.create_connection(address, timeout=3)
        self.frames_received = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "GuruxLink":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def associate(self) -> None:
        reply = self.exchange(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)

    def release(self) -> GXReplyData:
        return self.exchange(self.client.releaseRequest())

    def receive_frame(self) -> bytes:
        header = self._read(8)
        body = self._read(int.from_bytes(header[6:8], "big"))
        self.frames_received += 1
        return header + body

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("meter closed the connection")
            data += chunk
        return data

    def exchange(self, frames) -> GXReplyData:
        """Send gurux's request frames; follow block transfer; return the reply."""
        if not isinstance(frames, list):
            frames = [frames]
        reply = GXReplyData()
        for frame in frames:
            self.sock.sendall(bytes(frame))
            reply = GXReplyData()
            self.client.getData(GXByteBuffer(self.receive_frame()), reply, None)
            while reply.isMoreData():
                self.sock.sendall(bytes(self.client.receiverReady(reply)))
                self.client.getData(GXByteBuffer(self.receive_frame()), reply, None)
        return reply
