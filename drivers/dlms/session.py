"""DlmsSession: a strict DLMS/COSEM client session over any Transport.

gurux-dlms (GXDLMSClient, in plain-PDU mode) builds requests, negotiates the
association and keeps the block-transfer state; this module owns all I/O,
checks every reply strictly with our own parser (apdu.py) and returns plain
Python values decoded by our own codec (cosem_types.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from types import SimpleNamespace
from typing import Any

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication as GxAuthentication
from gurux_dlms.enums import DataType as GxDataType
from gurux_dlms.enums import InterfaceType

from ..secret import Secret
from . import apdu as pdu
from . import names
from .security import CipheringContext, HlsKeys, MeterCounterMemory
from ._gurux_quiet import gurux_to_log
from .cosem_types import DataType, Typed, decode_exact, describe, encode_data
from .errors import (
    AssociationRejected,
    ConfirmedServiceFailure,
    DlmsError,
    DlmsTimeout,
    ExceptionResponse,
    LinkClosed,
    LinkError,
    LinkOutOfStep,
    MalformedReply,
    SecurityFailure,
    UnsupportedFeature,
    result_name,
    service_error_for,
)
from .trace import FrameTrace
from .transport import Transport

log = logging.getLogger("smmc_bench.drivers.dlms")

ASSOCIATION_LN = "0.0.40.0.0.255"
# RLRQ with reason normal (ours: gurux builds none once its own state says "not connected").
RLRQ_NORMAL = bytes.fromhex("6203800100")
_MAX_BLOCKS = 100_000  # a peer streaming blocks forever must not loop us forever


class Authentication(IntEnum):
    """Authentication mechanism ids (mechanism-name last arc)."""
    NONE = 0
    LOW = 1
    HIGH_GMAC = 5


_AUTH_LABELS = {Authentication.NONE: "no-auth", Authentication.LOW: "LLS", Authentication.HIGH_GMAC: "HLS-GMAC"}


@dataclass(frozen=True)
class SessionSettings:
    client_sap: int
    server_logical: int
    authentication: Authentication = Authentication.NONE
    password: Secret | None = None
    timeout: float = 5.0
    max_pdu: int = 1024
    keys: HlsKeys | None = None  # HLS-GMAC: authentication and encryption keys, system title, policy
    # HLS-GMAC: the meter's invocation counters across associations (a station meter's, shared by
    # every session to it); None: the session keeps its own.
    counter_memory: MeterCounterMemory | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.password, (bytes, bytearray)):
            object.__setattr__(self, "password", Secret(self.password))
        if self.password is not None and not isinstance(self.password, Secret):
            raise TypeError("password must be a smmc_bench.drivers.secret.Secret (or bytes)")
        object.__setattr__(self, "authentication", Authentication(self.authentication))
        if self.authentication == Authentication.LOW and self.password is None:
            raise ValueError("LOW authentication needs a password")
        if self.authentication == Authentication.HIGH_GMAC and not isinstance(self.keys, HlsKeys):
            raise ValueError("HIGH_GMAC authentication needs keys (smmc_bench.drivers.dlms.security.HlsKeys)")
        if not 0 <= self.client_sap <= 0xFFFF or not 0 <= self.server_logical <= 0xFFFF:
            raise ValueError("client_sap and server_logical must fit a 16-bit wPort")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if not 12 <= self.max_pdu <= 0xFFFF:
            raise ValueError("max_pdu must be within 12..65535")


@dataclass(frozen=True)
class ObjectListEntry:
    class_id: int
    version: int
    logical_name: str
    attribute_access: dict[int, int] = field(default_factory=dict)
    method_access: dict[int, int] = field(default_factory=dict)


def _check_logical_name(ln: str) -> str:
    parts = ln.split(".")
    if len(parts) != 6 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise ValueError(f"logical name {ln!r} is not six dot-separated bytes like '0.0.1.0.0.255'")
    return ln


# --- security strategies: the seam where HLS will plug in ---------------------------

class _Security:
    gurux_mechanism = GxAuthentication.NONE

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings

    def password(self) -> bytes | None:
        return None

    def after_aare(self, session: "DlmsSession") -> None:
        """Pass 3/4 of HLS would run here; NONE and LLS are done once the AARE is accepted."""


class _LowLevelSecurity(_Security):
    gurux_mechanism = GxAuthentication.LOW

    def password(self) -> bytes | None:
        return self.settings.password.reveal()


class _HighLevelGmac(_Security):
    """HLS-GMAC, security suite 0: gurux builds the plain APDUs (as if without security), this
    class builds the AARQ, ciphers and deciphers every APDU and runs pass 3/4 with our own checks."""

    def __init__(self, settings: SessionSettings) -> None:
        super().__init__(settings)
        self.context = CipheringContext(settings.keys)

    def aarq(self, plain_aarq: bytes) -> bytes:
        """Our AARQ: the LN-with-ciphering context, our system title, mechanism 5, CtoS, and the
        InitiateRequest gurux proposed as a glo-InitiateRequest."""
        initiate = None
        for tag, content in pdu._outer(plain_aarq, 0x60, "AARQ"):
            if tag == 0xBE:
                inner = pdu._ber_items(content, 0, len(content), "AARQ user-information")
                initiate = inner[0][1]
        if initiate is None:
            raise UnsupportedFeature("gurux built an AARQ without an InitiateRequest")
        keys, ctx = self.settings.keys, self.context
        body = (_ber(0xA1, _ber(0x06, names.encode_oid(names.APPLICATION_CONTEXT + (3,))))
                + _ber(0xA6, _ber(0x04, keys.system_title))
                + _ber(0x8A, b"\x07\x80")
                + _ber(0x8B, names.encode_oid(names.MECHANISM_NAME + (5,)))
                + _ber(0xAC, _ber(0x80, ctx.client_challenge))
                + _ber(0xBE, _ber(0x04, ctx.glo_initiate_request(initiate))))
        ctx.aarq = _ber(0x60, body)
        return ctx.aarq

    def decipher_aare(self, aare_apdu: bytes) -> bytes:
        return aare_apdu  # parse_aare deciphers the user-information through self.context

    def after_aare(self, session: "DlmsSession") -> None:
        """Pass 3 (our f(StoC) to reply_to_HLS_authentication) and pass 4 (the meter's f(CtoS))."""
        aare = session.last_aare
        self.context.server_title = aare.responding_ap_title
        self.context.server_challenge = aare.responding_authentication_value
        f_stoc = self.context.f_stoc()
        if session.tamper_f_stoc is not None:
            f_stoc = session.tamper_f_stoc(f_stoc)
        self.context.f_stoc_sent = f_stoc
        reply = session.action(15, ASSOCIATION_LN, 1, Typed(DataType.OCTET_STRING, f_stoc))
        self.context.check_f_ctos(reply)


def _ber(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes((n,)) if n < 0x80 else (b"\x81" + bytes((n,)) if n < 0x100 else b"\x82" + n.to_bytes(2, "big"))
    return bytes((tag,)) + length + content


_SECURITY = {Authentication.NONE: _Security, Authentication.LOW: _LowLevelSecurity,
             Authentication.HIGH_GMAC: _HighLevelGmac}


class DlmsSession:
    # Why the link may hold a stale reply (an exchange cut short, timed out or answered with
    # malformed bytes); the next request starts from a resynchronised link. None: in step.
    _out_of_step: str | None = None
    # The association's ciphering (HLS-GMAC): every xDLMS APDU is protected and every reply checked.
    _ciphering: CipheringContext | None = None
    # The ciphering context of the last HLS-GMAC association attempt (kept when it failed: a
    # security test asks whether the meter accepted the AARQ, `meter_accepted`).
    last_hls: CipheringContext | None = None
    # Security tests only: rewrites our f(StoC) before pass 3 (to present a wrong one).
    tamper_f_stoc = None
    # Security tests only: rewrites our HLS-GMAC AARQ before it is sent (to replay a recorded one).
    tamper_aarq = None
    # Security tests only: the CtoS our HLS-GMAC AARQ carries instead of a random one.
    client_challenge: bytes | None = None
    # Why the meter's side ended an association we did not release (it closed or reset the
    # connection); the next request associates afresh. None: nothing was lost.
    _lost: str | None = None

    def __init__(self, transport: Transport, settings: SessionSettings, trace: FrameTrace | None = None) -> None:
        self.transport = transport
        self.settings = settings
        self.trace = trace if trace is not None else FrameTrace()
        if settings.password is not None:
            self._redact(settings.password.reveal())
        if settings.keys is not None:
            self._redact(settings.keys.authentication_key.reveal())
            self._redact(settings.keys.encryption_key.reveal())
        self._lock = threading.RLock()
        # The meter's invocation counters across this session's associations (HLS-GMAC).
        self.counter_memory = settings.counter_memory if settings.counter_memory is not None \
            else MeterCounterMemory()
        self._client: GXDLMSClient | None = None
        self._associated = False
        self.last_round_trip: float | None = None
        self.negotiated_max_pdu: int | None = None
        self.negotiated_conformance: int | None = None
        # Link recoveries (DISC/SNRM and re-association) this session needed; each request gets at most one.
        self.recoveries = 0
        # Invoke-id of the last request (4 bits): each request takes the next, and its reply must carry it.
        self._invoke_id = 0
        # The last AARE as parsed, and the conformance block our AARQ proposed (aspect 1 judges them).
        self.last_aare: pdu.Aare | None = None
        self.proposed_conformance: int | None = None

    def __repr__(self) -> str:
        state = "associated" if self._associated else "idle"
        return f"DlmsSession({self.transport.peer}, SAP {self.settings.client_sap}, {state})"

    @property
    def is_associated(self) -> bool:
        return self._associated

    # --- association ---------------------------------------------------------------

    def connect(self) -> None:
        with self._lock:
            try:
                self._connect()
            except LinkOutOfStep as exc:
                # The data link lost step during the association itself: one fresh start.
                self._note_recovery(exc)
                self._connect()

    def _connect(self) -> None:
        with self._lock, gurux_to_log():
            if self._associated:
                return
            s = self.settings
            security = _SECURITY[s.authentication](s)  # raises UnsupportedFeature before any I/O
            if isinstance(security, _HighLevelGmac):
                security.context.memory = self.counter_memory
                if self.client_challenge is not None:
                    security.context.client_challenge = bytes(self.client_challenge)
            client = GXDLMSClient(True, s.client_sap, s.server_logical, security.gurux_mechanism,
                                  security.password(), InterfaceType.PDU)
            client.maxReceivePDUSize = s.max_pdu
            self.transport.open(s.client_sap, s.server_logical)
            try:
                self._client = client
                self._invoke_id = 0
                summary = f"AARQ SAP{s.client_sap} {_AUTH_LABELS[s.authentication]}"
                # The AARQ carries the password: it travels as a Secret, so no traceback shows it.
                aarq = Secret(bytes(client.aarqRequest()[0]))
                hls = security if isinstance(security, _HighLevelGmac) else None
                self._ciphering = None
                self.proposed_conformance = _proposed_conformance(aarq)
                if hls is not None:  # our own AARQ around the InitiateRequest gurux proposed
                    self.last_hls = hls.context
                    aarq = Secret(hls.aarq(aarq.reveal()))
                    if self.tamper_aarq is not None:
                        aarq = Secret(self.tamper_aarq(aarq.reveal()))
                frame, reply = self._exchange(aarq, summary)
                try:
                    aare = pdu.parse_aare(reply, decipher=hls.context.initiate_response if hls else None)
                except MalformedReply as exc:
                    raise self._malformed(exc, frame, summary)
                except UnsupportedFeature as exc:
                    self.trace.record("rx", frame, f"AARE not judged: {exc.diagnosis}")
                    raise exc.with_context(f"{summary} to {self.transport.peer}") from None
                self.last_aare = aare
                self.trace.record("rx", frame, f"AARE {aare.describe()}")
                if not aare.accepted:
                    raise AssociationRejected(
                        f"{summary} to {self.transport.peer}: association {aare.describe()}",
                        result=aare.result, diagnostic=aare.diagnostic, source=aare.diagnostic_source)
                _gurux_takes_aare(client, aare, frame, f"{summary} to {self.transport.peer}")
                self.negotiated_max_pdu = aare.initiate.server_max_receive_pdu_size
                self.negotiated_conformance = aare.initiate.conformance
                if hls is not None:
                    hls.context.server_title = aare.responding_ap_title
                    self._ciphering = hls.context
                    self._associated = True  # pass 3/4 are an ACTION within the association
                security.after_aare(self)
                self._associated = True
                self._lost = None
            except BaseException:
                self._associated = False
                self._ciphering = None
                self._client = None
                self._out_of_step = None  # the link is closed: nothing stale can arrive
                self.transport.close()
                raise

    def release(self, *, strict: bool = False) -> int | None:
        """Send RLRQ; return the RLRE reason (0 normal, None when the RLRE gives none).

        A malformed RLRE raises MalformedReply. A dead link or a link out of step counts as
        released (None), unless `strict`: then a lost RLRE raises its LinkError (aspect 1 judges
        the release itself; everywhere else the transport is closed whatever the RLRE says)."""
        with self._lock, gurux_to_log():
            if not self._associated or self._client is None:
                if strict:
                    raise LinkClosed(f"RLRQ: session with {self.transport.peer} is not associated")
                return None
            self._associated = False
            if self._out_of_step:
                if strict:
                    raise LinkOutOfStep(f"RLRQ to {self.transport.peer} not sent: the link is out of step "
                                        f"({self._out_of_step})")
                return None  # close() ends the link: there is nothing to release
            try:
                frame, reply = self._exchange(RLRQ_NORMAL, "RLRQ")
            except LinkError as exc:
                if strict:
                    raise
                log.info("release on a dead link: %s", exc.diagnosis)
                return None
            try:
                reason = pdu.parse_rlre(reply)
            except MalformedReply as exc:
                raise self._malformed(exc, frame, "RLRQ")
            self.trace.record("rx", frame, f"RLRE {pdu.RLRE_REASONS.get(reason, reason)}")
            return reason

    def close(self) -> None:
        with self._lock:
            self._out_of_step = None
            self._lost = None
            self._associated = False
            self._client = None
            self.transport.close()

    def __enter__(self) -> "DlmsSession":
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # The transport is closed whatever the RLRE says. A malformed RLRE is the subject of
        # aspect 1's own test (release(strict=True)); after any other use it is noted, not raised,
        # so it never turns an unrelated verdict into an ERROR.
        try:
            self.release()
        except DlmsError as release_error:
            log.warning("release failed (judged by the association test, not here): %s", release_error.diagnosis)
            self.trace.record("--", b"", f"release not judged here: {release_error.diagnosis}")
        finally:
            self.close()

    # --- services ----------------------------------------------------------------

    def get(self, class_id: int, logical_name: str, attribute: int,
            access: tuple[int, Typed] | None = None) -> Any:
        """Read one attribute; returns a plain Python value (see cosem_types.decode_data).

        `access` is a selective access (selector, parameters), e.g. (1, range descriptor) of a
        profile's buffer; our encoding goes out as gurux's access-selection bytes, untouched."""
        desc = f"{class_id}/{_check_logical_name(logical_name)}/{attribute}"
        selection = None if access is None else bytes((access[0],)) + self._encode(access[1])
        if access is not None:
            desc += f" selector {access[0]}"
        with self._lock, gurux_to_log():
            self._resynchronise_if_needed()
            client = self._require_client()
            self._next_invoke_id(client)
            request = bytes(client._read(logical_name, class_id, attribute, _gx_bytes(selection))[0])
            try:
                return self._get_exchange(client, request, f"GET {desc}")
            except LinkOutOfStep as exc:
                # A read changes nothing in the meter: recover the link and read once more.
                self._recover(exc)
                client = self._require_client()
                self._next_invoke_id(client)
                request = bytes(client._read(logical_name, class_id, attribute, _gx_bytes(selection))[0])
                return self._get_exchange(client, request, f"GET {desc} (again, after link recovery)")

    def set(self, class_id: int, logical_name: str, attribute: int, value: Typed) -> None:
        desc = f"{class_id}/{_check_logical_name(logical_name)}/{attribute}"
        payload = self._encode(value)
        with self._lock, gurux_to_log():
            self._resynchronise_if_needed()
            client = self._require_client()
            self._next_invoke_id(client)
            # gurux copies STRUCTURE-typed bytes verbatim: our encoding goes out untouched.
            messages = client._GXDLMSClient__write(logical_name, payload, GxDataType.STRUCTURE, class_id, attribute)
            summary = f"SET {desc} ({describe(payload[0], payload)})"
            if len(messages) != 1:
                raise UnsupportedFeature(f"{summary}: {len(payload)} bytes need SET-with-datablock, "
                                         f"not implemented yet")
            request = bytes(messages[0])
            frame, reply_apdu = self._exchange_once(request, summary)
            reply = self._parse(frame, reply_apdu, request, summary, ("set-normal",))
            self.trace.record("rx", frame, f"SET-Response-Normal {_outcome(reply.result)}")
            if reply.result != 0:
                raise self._refused(summary, reply)

    def action(self, class_id: int, logical_name: str, method: int, parameter: Typed | None = None) -> Any:
        """Invoke a method; returns the returned data (plain value) or None."""
        desc = f"{class_id}/{_check_logical_name(logical_name)}/{method}"
        payload = self._encode(parameter) if parameter is not None else b"\x00"
        with self._lock, gurux_to_log():
            self._resynchronise_if_needed()
            client = self._require_client()
            self._next_invoke_id(client)
            messages = client.method(SimpleNamespace(name=logical_name, objectType=class_id), method,
                                     payload, GxDataType.STRUCTURE)
            summary = f"ACTION {desc}" + (f" ({describe(payload[0], payload)})" if parameter is not None else "")
            if len(messages) != 1:
                raise UnsupportedFeature(f"{summary}: {len(payload)} bytes need ACTION with parameter "
                                         f"blocks, not implemented yet")
            request = bytes(messages[0])
            if parameter is None:
                # gurux always marks parameters present; the header is tag, type, invoke,
                # class(2), LN(6), method(1): cut at the flag and send "absent".
                request = request[:12] + b"\x00"
            frame, reply_apdu = self._exchange_once(request, summary)
            reply = self._parse(frame, reply_apdu, request, summary, ("action-normal",))
            detail = f" ({reply.summary_detail})" if reply.has_value else ""
            self.trace.record("rx", frame, f"ACTION-Response {desc} {_outcome(reply.result)}{detail}")
            if reply.result != 0:
                raise self._refused(summary, reply)
            return reply.value

    def object_list(self) -> list[ObjectListEntry]:
        """Association LN object_list (15/0.0.40.0.0.255/2), via block transfer if needed."""
        value = self.get(15, ASSOCIATION_LN, 2)
        summary = f"GET 15/{ASSOCIATION_LN}/2"
        if not isinstance(value, list):
            raise MalformedReply(f"{summary}: object_list is {type(value).__name__}, expected an array")
        return [_object_list_entry(item, i, summary) for i, item in enumerate(value)]

    # --- internals -----------------------------------------------------------------

    def _require_client(self) -> GXDLMSClient:
        if not self._associated or self._client is None:
            raise LinkClosed(f"session with {self.transport.peer} is not associated: "
                             f"call connect() or use 'with session'")
        return self._client

    def _encode(self, value: Typed) -> bytes:
        if not isinstance(value, Typed):
            raise TypeError(f"SET/ACTION values must be Typed, got {type(value).__name__}")
        secrets: list[bytes] = []
        payload = encode_data(value, secrets)
        for secret in secrets:  # e.g. a new LLS secret written to the association
            self._redact(secret)
        return payload

    def _redact(self, secret: bytes) -> None:
        """Mask `secret` in this session's trace and in the link's own wire trace."""
        self.trace.redact(secret)
        hook = getattr(self.transport, "redact", None)
        if hook is not None:
            hook(secret)

    def _exchange_once(self, request: bytes, summary: str) -> tuple[bytes, bytes]:
        """An exchange that must not be repeated blindly (SET, ACTION): after a link recovery the
        request is not sent again and the error says its outcome is unknown."""
        try:
            return self._exchange(request, summary)
        except LinkOutOfStep as exc:
            self._recover(exc)
            raise LinkOutOfStep(f"{exc.diagnosis}; the link was recovered (DISC/SNRM and re-association) but "
                                f"the request was not repeated: its outcome is unknown") from None

    def _note_recovery(self, exc: LinkOutOfStep) -> None:
        self.recoveries += 1
        self.trace.record("--", b"", f"link recovery (DISC/SNRM, re-association) after: {exc.diagnosis}")
        self._associated = False
        self._client = None
        self.transport.close()

    def _recover(self, exc: LinkOutOfStep) -> None:
        """Close the link (DISC) and associate again (SNRM, AARQ), once; if that fails too, say both."""
        self._note_recovery(exc)
        try:
            self._connect()
        except DlmsError as again:
            raise LinkOutOfStep(f"{exc.diagnosis}; recovery by DISC/SNRM and re-association failed: "
                                f"{again.diagnosis}") from None

    def _next_invoke_id(self, client: GXDLMSClient) -> None:
        """Give the next request its own invoke-id (1..15, then 0), so a stale reply cannot match it."""
        self._invoke_id = (self._invoke_id + 1) % 16
        # gurux's setInvokeID writes `invokeID` while its encoder reads `invokeId`: set what is read.
        client.settings.invokeId = self._invoke_id

    def _resynchronise_if_needed(self) -> None:
        """Before a request: if the last exchange left the link out of step (cut short, timed out,
        malformed), a late reply may still arrive. Nothing of this request has been sent yet, so
        starting the link afresh (close, connect, associate) is safe."""
        if self._out_of_step and self._associated:
            why, self._out_of_step = self._out_of_step, None
            self._recover(LinkOutOfStep(f"{self.transport.peer}: resynchronised after {why}"))
        elif self._lost and not self._associated:
            # The meter ended the connection under an association we never released: a restore
            # after such a fault must still reach the meter, on a new connection and association.
            why, self._lost = self._lost, None
            self._recover(LinkOutOfStep(f"{self.transport.peer}: associated again after {why}"))

    def _exchange(self, request: bytes | Secret, summary: str) -> tuple[bytes, bytes]:
        """Send one APDU, wait for one reply; every transport failure names the request.
        `request` is a Secret when it carries one (the AARQ): only the transport reveals it."""
        transport = self.transport
        # Until a whole, well-formed reply is in, a reply to this request may still be on its way.
        self._out_of_step = f"the exchange '{summary}' was interrupted before its reply"
        try:
            ciphering = self._ciphering
            if ciphering is not None and not isinstance(request, Secret):
                request = ciphering.protect(request)
            if not getattr(transport, "takes_secret_apdus", False) and isinstance(request, Secret):
                frame = transport.send(request.reveal())
            else:
                frame = transport.send(request)
            sent = time.perf_counter()
            self.trace.record("tx", frame.reveal() if isinstance(frame, Secret) else frame, summary)
            reply = transport.receive(self.settings.timeout)
        # Every error leaves with `from None`: the transport's own frames (whose locals may hold the
        # request's bytes, an AARQ's password among them) never reach a rendered traceback.
        except MalformedReply as exc:
            self._out_of_step = f"a malformed reply to '{summary}'"
            raise self._malformed(exc, exc.raw, summary) from None
        except DlmsTimeout as exc:
            self._out_of_step = f"no reply to '{summary}' within {self.settings.timeout:g} s"
            raise exc.with_context(summary) from None
        except LinkError as exc:
            self._out_of_step = None
            if isinstance(exc, LinkClosed):
                if self._associated:
                    self._lost = f"'{exc.diagnosis}' during '{summary}'"
                self._associated = False
                transport.close()
            raise exc.with_context(summary) from None
        except DlmsError as exc:
            self._out_of_step = None
            raise exc.with_context(summary) from None
        self._out_of_step = None
        self.last_round_trip = time.perf_counter() - sent
        if ciphering is not None:
            frame, apdu = reply
            try:
                reply = frame, ciphering.unprotect(apdu, summary)
            except SecurityFailure as exc:
                self.trace.record("rx", frame, f"refused by the bench: {exc.diagnosis}")
                raise exc.with_context(f"{summary} to {self.transport.peer}") from None
            except MalformedReply as exc:
                raise self._malformed(exc, frame, summary) from None
        return reply

    def exchange_raw(self, apdu: bytes, summary: str) -> bytes:
        """Send `apdu` exactly as given, outside the association's ciphering, and return the
        reply APDU as received (security tests: replayed, tampered or unciphered requests)."""
        with self._lock:
            saved, self._ciphering = self._ciphering, None
            try:
                frame, reply = self._exchange(apdu, summary)
            finally:
                self._ciphering = saved
            self.trace.record("rx", frame, f"reply to a raw request ({len(reply)} bytes)")
            return reply

    @property
    def ciphering(self) -> CipheringContext | None:
        """The association's ciphering state (HLS-GMAC), None without ciphering."""
        return self._ciphering

    def _malformed(self, exc: MalformedReply, frame: bytes, summary: str) -> MalformedReply:
        # Whatever followed the malformed bytes may still be on its way: resynchronise before the next request.
        self._out_of_step = self._out_of_step or f"a malformed reply to '{summary}'"
        self.trace.record("rx", frame, f"malformed: {exc.diagnosis}")
        return exc.with_context(f"{summary} to {self.transport.peer}")

    def _parse(self, frame: bytes, reply_apdu: bytes, request: bytes, summary: str,
               expected: tuple[str, ...]) -> pdu.Reply:
        try:
            if len(reply_apdu) > self.settings.max_pdu:
                raise MalformedReply(f"reply APDU of {len(reply_apdu)} bytes exceeds the client's "
                                     f"max-receive-pdu-size {self.settings.max_pdu}")
            reply = pdu.parse_service_reply(reply_apdu)
            if reply.kind in ("exception", "service-error"):
                self.trace.record("rx", frame, reply.error_text())
                raise self._refused(summary, reply)
            if reply.kind not in expected:
                raise MalformedReply(f"got {reply.kind} reply, expected {' or '.join(expected)}")
            if (reply.invoke & 0x0F) != (request[2] & 0x0F):
                raise MalformedReply(f"reply invoke-id {reply.invoke & 0x0F} does not match the request's "
                                     f"{request[2] & 0x0F}")
            if reply.invoke & 0x30:
                raise MalformedReply(f"reply invoke-id-and-priority 0x{reply.invoke:02X} has reserved bits 4-5 set")
        except MalformedReply as exc:
            exc.raw = frame
            raise self._malformed(exc, frame, summary)
        return reply

    def _refused(self, summary: str, reply: pdu.Reply) -> DlmsError:
        where = f"{summary} on {self.transport.peer} (SAP {self.settings.client_sap})"
        if reply.kind == "exception":
            return ExceptionResponse(f"{where}: meter answered {reply.error_text()}",
                                     state_error=reply.state_error, service_error=reply.service_error,
                                     invocation_counter=reply.invocation_counter)
        if reply.kind == "service-error":
            return ConfirmedServiceFailure(f"{where}: meter answered {reply.error_text()}",
                                           service=reply.service, error_type=reply.error_type,
                                           value=reply.error_value)
        return service_error_for(reply.result, f"{where}: meter answered {result_name(reply.result)} "
                                               f"({reply.result})")

    def _get_exchange(self, client: GXDLMSClient, request: bytes, summary: str) -> Any:
        frame, reply_apdu = self._exchange(request, summary)
        reply = self._parse(frame, reply_apdu, request, summary, ("get-normal", "get-block"))
        if reply.kind == "get-normal":
            if reply.result != 0:
                self.trace.record("rx", frame, f"GET-Response-Normal {result_name(reply.result)}")
                raise self._refused(summary, reply)
            self.trace.record("rx", frame, f"GET-Response-Normal ok ({reply.summary_detail})")
            return reply.value
        return self._get_blocks(client, frame, reply_apdu, reply, summary)

    def _get_blocks(self, client: GXDLMSClient, frame: bytes, reply_apdu: bytes,
                    reply: pdu.Reply, summary: str) -> Any:
        """GET block transfer: gurux keeps the block state and builds each
        next-block request; we check numbering and assemble the raw data ourselves."""
        gx_reply = GXReplyData()
        chunks: list[bytes] = []
        expected_block = 1
        while True:
            last = " last" if reply.last_block else ""
            if reply.result != 0:
                self.trace.record("rx", frame, f"GET-Response-With-Datablock block {reply.block_number}"
                                               f" {result_name(reply.result)}")
                raise self._refused(f"{summary} block {reply.block_number}", reply)
            self.trace.record("rx", frame, f"GET-Response-With-Datablock block {reply.block_number}{last} "
                                           f"({len(reply.block_data)} bytes)")
            if reply.block_number != expected_block:
                raise self._malformed(MalformedReply(f"block number {reply.block_number}, expected "
                                                     f"{expected_block}", raw=frame), frame, summary)
            chunks.append(reply.block_data)
            if reply.last_block:
                # gurux would now parse the whole value and cannot read 3-byte A-XDR lengths (64 KiB
                # and more); the value is ours to decode, gurux only needed the state for the next block.
                break
            try:
                client.getData(reply_apdu, gx_reply)
            except Exception as exc:  # gurux raises bare Exception/ValueError
                raise self._malformed(MalformedReply(f"block {reply.block_number} not understood by "
                                                     f"gurux: {exc}", raw=frame), frame, summary)
            if expected_block >= _MAX_BLOCKS:
                raise self._malformed(MalformedReply(f"more than {_MAX_BLOCKS} blocks"), frame, summary)
            expected_block += 1
            self._next_invoke_id(client)
            request = bytes(client.receiverReady(gx_reply))
            step = f"{summary} next block {expected_block - 1}"
            frame, reply_apdu = self._exchange(request, step)
            reply = self._parse(frame, reply_apdu, request, step, ("get-block",))
        data = b"".join(chunks)
        try:
            return decode_exact(data)
        except MalformedReply as exc:
            exc.raw = exc.raw or data
            raise exc.with_context(f"{summary} to {self.transport.peer}: reassembled {len(data)} bytes") from None


def _gx_bytes(data: bytes | None) -> GXByteBuffer | None:
    """Bytes as gurux takes a request's trailing data (a fresh buffer: gurux reads it from its position)."""
    return None if data is None else GXByteBuffer(data)


def _proposed_conformance(aarq: Secret) -> int | None:
    """The 24-bit conformance block of our AARQ's InitiateRequest (after its 5F 1F 04 00 header)."""
    raw = aarq.reveal()
    at = raw.rfind(b"\x5f\x1f\x04\x00")
    return int.from_bytes(raw[at + 4:at + 7], "big") if at >= 0 and at + 7 <= len(raw) else None


def _gurux_takes_aare(client: GXDLMSClient, aare: pdu.Aare, frame: bytes, where: str) -> None:
    """gurux keeps the negotiated state (conformance, PDU size, block state) our requests need.
    It is given the AARE we already parsed and judged, re-encoded in its minimal form, so the
    optional elements and alternative forms the standard allows (parsed by us) never reach it."""
    try:
        gx_reply = GXReplyData()
        client.getData(aare.minimal(), gx_reply)
        client.parseAareResponse(gx_reply.data)
    except Exception as exc:  # gurux raises bare Exception/ValueError
        raise MalformedReply(f"{where}: AARE not understood by gurux: {exc}", raw=frame) from None


def _outcome(result: int) -> str:
    return "ok" if result == 0 else result_name(result)


def _object_list_entry(item: Any, index: int, summary: str) -> ObjectListEntry:
    def bad(why: str) -> MalformedReply:
        return MalformedReply(f"{summary}: object_list element {index} {why}")
    if not (isinstance(item, list) and len(item) == 4):
        raise bad("is not a structure of 4 (class_id, version, logical_name, access_rights)")
    class_id, version, ln, rights = item
    if not isinstance(class_id, int) or not isinstance(version, int):
        raise bad("has a non-integer class_id or version")
    if not (isinstance(ln, bytes) and len(ln) == 6):
        raise bad("has a logical_name that is not a 6-byte octet-string")
    if not (isinstance(rights, list) and len(rights) == 2 and all(isinstance(r, list) for r in rights)):
        raise bad("has access_rights that are not (attribute_access, method_access) arrays")
    attributes: dict[int, int] = {}
    for a in rights[0]:
        if not (isinstance(a, list) and len(a) == 3 and isinstance(a[0], int) and isinstance(a[1], int)):
            raise bad("has an attribute_access item that is not (id, access_mode, selectors)")
        attributes[a[0]] = int(a[1])
    methods: dict[int, int] = {}
    for m in rights[1]:
        if not (isinstance(m, list) and len(m) == 2 and isinstance(m[0], int) and isinstance(m[1], int)):
            raise bad("has a method_access item that is not (id, access_mode)")
        methods[m[0]] = int(m[1])  # boolean in version 0/1 associations, enum later
    return ObjectListEntry(class_id, version, ".".join(str(b) for b in ln), attributes, methods)
