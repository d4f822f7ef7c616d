"""HLS-GMAC (mechanism 5) with security suite 0 (AES-GCM-128) for the bench's own client.

gurux builds and reads plain APDUs; this module ciphers each request and deciphers each
reply around them with `cryptography`, and checks what gurux never does (domain notes §5):
every GCM tag, and that the meter's invocation counter strictly increases. Formats
(IEC 62056-5-3, DLMS UA Green Book):

- security header: security control (0x10 authenticated, 0x20 encrypted, 0x30 both; suite 0
  in the low nibble) and a 4-byte invocation counter; IV = sender system title || counter;
- authenticated: AAD = SC || AK (|| the plain text when not encrypted); tag truncated to 12 bytes;
- glo service-specific: [glo tag] length SC IC payload; general-glo (0xDB): system title
  (length-prefixed), then length SC IC payload;
- HLS pass 3/4: f(StoC) = SC(0x10) || IC || GMAC(AAD = SC || AK || StoC), the meter's
  f(CtoS) the same over our challenge with its title and counter.

Keys travel as Secrets; nothing here formats a key into a message.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..secret import Secret
from .cosem_types import encode_length
from .errors import MalformedReply, MeterNotAuthenticated, ReplayedReply, TagMismatch, UncipheredReply

SC_AUTHENTICATED, SC_ENCRYPTED = 0x10, 0x20
TAG_LENGTH = 12
GLO_INITIATE_REQUEST, GLO_INITIATE_RESPONSE = 0x21, 0x28
GENERAL_GLO = 0xDB
EXCEPTION_RESPONSE = 0xD8
# plain service tag -> glo tag (requests from us; responses from the meter)
GLO_OF = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0xC4: 0xCC, 0xC5: 0xCD, 0xC7: 0xCF}
PLAIN_OF = {glo: plain for plain, glo in GLO_OF.items()}
POLICIES = {"authenticated": SC_AUTHENTICATED, "encrypted": SC_ENCRYPTED,
            "authenticated-encrypted": SC_AUTHENTICATED | SC_ENCRYPTED}
_U32 = struct.Struct(">I")


def parse_key(text: bytes, what: str) -> bytes:
    """A 16-byte AES-128 key written as 32 hex digits (spaces allowed). The message never shows it."""
    digits = bytes(b for b in text if b not in b" \t\r\n:")
    try:
        key = bytes.fromhex(digits.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{what} is not hexadecimal (32 hex digits, a 16-byte AES-128 key)") from None
    if len(key) != 16:
        raise ValueError(f"{what} is {len(key)} bytes; security suite 0 needs 16 (32 hex digits)")
    return key


@dataclass(frozen=True, repr=False)
class HlsKeys:
    """What HLS-GMAC needs: the authentication key, the global unicast encryption key, our
    system title, the policy (security control bits) and the ciphering form."""
    authentication_key: Secret
    encryption_key: Secret
    system_title: bytes = b"SMMCBENC"
    policy: int = SC_AUTHENTICATED | SC_ENCRYPTED
    general: bool = False   # general-glo-ciphering (0xDB) instead of service-specific glo
    master_key: Secret | None = None  # the KEK that wraps keys in a global key transfer (IC 64 method 2)

    def __post_init__(self) -> None:
        for name in ("authentication_key", "encryption_key"):
            if not isinstance(getattr(self, name), Secret) or len(getattr(self, name)) != 16:
                raise ValueError(f"{name} must be a 16-byte Secret (security suite 0)")
        if self.master_key is not None and (not isinstance(self.master_key, Secret) or len(self.master_key) != 16):
            raise ValueError("master_key must be a 16-byte Secret (security suite 0)")
        if len(self.system_title) != 8:
            raise ValueError("the client system title is 8 bytes")
        if self.policy not in POLICIES.values():
            raise ValueError("policy is 0x10 (authenticated), 0x20 (encrypted) or 0x30 (both)")

    def __repr__(self) -> str:
        return (f"HlsKeys(title={self.system_title.hex()}, policy=0x{self.policy:02X}, general={self.general}, "
                f"master_key={'<set>' if self.master_key is not None else None})")


def _gcm_encrypt(sc: int, ek: bytes, ak: bytes, iv: bytes, plain: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(ek), modes.GCM(iv)).encryptor()
    if sc & SC_ENCRYPTED:
        if sc & SC_AUTHENTICATED:
            encryptor.authenticate_additional_data(bytes((sc,)) + ak)
        body = encryptor.update(plain) + encryptor.finalize()
    else:
        encryptor.authenticate_additional_data(bytes((sc,)) + ak + plain)
        encryptor.finalize()
        body = plain
    return body + (encryptor.tag[:TAG_LENGTH] if sc & SC_AUTHENTICATED else b"")


def _gcm_decrypt(sc: int, ek: bytes, ak: bytes, iv: bytes, payload: bytes) -> bytes:
    """Raises InvalidTag when the tag does not verify."""
    if not sc & SC_AUTHENTICATED:  # encryption only: nothing to verify
        decryptor = Cipher(algorithms.AES(ek), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
        return decryptor.update(payload) + decryptor.finalize()
    if len(payload) < TAG_LENGTH:
        raise InvalidTag()
    body, tag = payload[:-TAG_LENGTH], payload[-TAG_LENGTH:]
    decryptor = Cipher(algorithms.AES(ek), modes.GCM(iv, tag, min_tag_length=TAG_LENGTH)).decryptor()
    if sc & SC_ENCRYPTED:
        decryptor.authenticate_additional_data(bytes((sc,)) + ak)
        return decryptor.update(body) + decryptor.finalize()
    decryptor.authenticate_additional_data(bytes((sc,)) + ak + body)
    decryptor.finalize()
    return body


def gmac(ek: bytes, ak: bytes, title: bytes, counter: int, challenge: bytes) -> bytes:
    """HLS-GMAC f(challenge): SC(0x10) || IC || GMAC tag."""
    header = bytes((SC_AUTHENTICATED,)) + _U32.pack(counter)
    return header + _gcm_encrypt(SC_AUTHENTICATED, ek, ak, title + _U32.pack(counter), challenge)[len(challenge):]


def _read_length(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    if pos >= len(buf):
        raise MalformedReply(f"{what}: truncated before its length")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or n > 2 or pos + 1 + n > len(buf):
        raise MalformedReply(f"{what}: bad length form 0x{first:02X}")
    return int.from_bytes(buf[pos + 1:pos + 1 + n], "big"), pos + 1 + n


# Our invocation counter per client system title, shared by every session of the process: the
# meter's replay check spans associations, so the counter never restarts. Seeded from the clock
# (16 per second since late 2023) so a new run starts above any earlier run's counters.
_COUNTERS: dict[bytes, int] = {}
_COUNTERS_LOCK = threading.Lock()


def _next_counter(title: bytes) -> int:
    with _COUNTERS_LOCK:
        seed = max(0, int(time.time()) - 1_700_000_000) * 16
        value = max(_COUNTERS.get(title, 0) + 1, seed)
        if value > 0xFFFFFFFF:
            raise ValueError("the client invocation counter is exhausted: the keys must be changed")
        _COUNTERS[title] = value
        return value


class MeterCounterMemory:
    """The highest invocation counter each meter (its system title) used under each key pair,
    across associations: the meter's counter must keep rising over all of them, or it reuses an
    IV (system title || counter) under the same key, which breaks GCM. A station meter holds one
    for every session to it; a session without one keeps its own (its reconnects are checked).
    Keys are held only as a salted digest."""

    def __init__(self) -> None:
        self._last: dict[tuple[bytes, bytes], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _slot(title: bytes, keys: HlsKeys) -> tuple[bytes, bytes]:
        digest = hashlib.sha256(b"smmc-bench meter invocation counter\0" + keys.encryption_key.reveal()
                                + keys.authentication_key.reveal()).digest()
        return bytes(title), digest

    def last(self, title: bytes, keys: HlsKeys) -> int | None:
        with self._lock:
            return self._last.get(self._slot(title, keys))

    def record(self, title: bytes, keys: HlsKeys, counter: int) -> None:
        slot = self._slot(title, keys)
        with self._lock:
            self._last[slot] = max(counter, self._last.get(slot, counter))


class CipheringContext:
    """One association's ciphering state: our counter goes up with every APDU we protect, the
    meter's must go up with every APDU we accept, within the association and (through `memory`)
    across the associations with the same meter and keys."""

    def __init__(self, keys: HlsKeys, memory: MeterCounterMemory | None = None) -> None:
        self.keys = keys
        self.memory = memory if memory is not None else MeterCounterMemory()
        self.first_server_counter: int | None = None  # the meter's first counter in this association
        self.aarq: bytes | None = None  # the AARQ this association sent (a replay test resends it later)
        self.f_stoc_sent: bytes | None = None  # the f(StoC) our pass 3 presented (a replay test resends it)
        self.client_challenge = os.urandom(16)  # CtoS
        self.server_title: bytes | None = None
        self.server_challenge: bytes | None = None
        self.last_server_counter: int | None = None
        self.last_protected: bytes | None = None  # the last ciphered request (a replay test resends it)
        self._pass4_floor: int | None = None
        self.meter_accepted = False  # the meter accepted our AARQ (set before its AARE is deciphered)

    # -- association -------------------------------------------------------------

    def _cipher(self, plain: bytes) -> tuple[int, bytes]:
        counter = _next_counter(self.keys.system_title)
        sc = self.keys.policy
        payload = _gcm_encrypt(sc, self.keys.encryption_key.reveal(), self.keys.authentication_key.reveal(),
                               self.keys.system_title + _U32.pack(counter), plain)
        return counter, bytes((sc,)) + _U32.pack(counter) + payload

    def glo_initiate_request(self, initiate: bytes) -> bytes:
        _, body = self._cipher(initiate)
        return bytes((GLO_INITIATE_REQUEST,)) + encode_length(len(body)) + body

    def f_stoc(self) -> bytes:
        if self.server_challenge is None:
            raise MalformedReply("HLS-GMAC: the AARE carried no responding-authentication-value (StoC)")
        counter = _next_counter(self.keys.system_title)
        self._pass4_floor = self.last_server_counter  # f(CtoS) must come after the InitiateResponse
        return gmac(self.keys.encryption_key.reveal(), self.keys.authentication_key.reveal(),
                    self.keys.system_title, counter, self.server_challenge)

    def check_f_ctos(self, reply: bytes) -> None:
        """Pass 4: the meter's f(CtoS) must verify with its title and a fresh counter."""
        if not isinstance(reply, bytes) or len(reply) != 5 + TAG_LENGTH or reply[0] != SC_AUTHENTICATED:
            raise MeterNotAuthenticated("HLS pass 4: reply_to_HLS_authentication returned no "
                                        "SC(0x10) || IC || 12-byte GMAC")
        counter = _U32.unpack_from(reply, 1)[0]
        expected = gmac(self.keys.encryption_key.reveal(), self.keys.authentication_key.reveal(),
                        self._title(), counter, self.client_challenge)
        if not hmac.compare_digest(expected, reply):
            raise MeterNotAuthenticated("HLS pass 4: the meter's f(CtoS) does not verify: it does not hold "
                                        "the configured authentication and encryption keys")
        # The reply's own envelope took a counter too (before or after this one): f(CtoS) must
        # exceed the counter of the glo-InitiateResponse.
        floor = self._pass4_floor
        if floor is not None and counter <= floor:
            raise ReplayedReply(f"HLS pass 4 f(CtoS): the meter's invocation counter {counter} does not exceed "
                                f"the glo-InitiateResponse's {floor}: a replayed f(CtoS)")
        self._accept_across_associations(counter, "HLS pass 4 f(CtoS)")
        self.last_server_counter = max(counter, self.last_server_counter or 0)

    def _title(self) -> bytes:
        if self.server_title is None:
            raise MalformedReply("HLS-GMAC: the AARE carried no responding-AP-title (the meter's system title)")
        return self.server_title

    def _accept_counter(self, counter: int, what: str) -> None:
        last = self.last_server_counter
        if last is not None and counter <= last:
            raise ReplayedReply(f"{what}: the meter's invocation counter {counter} does not exceed the last "
                                f"accepted {last}: a replayed or stale reply")
        self._accept_across_associations(counter, what)
        self.last_server_counter = counter

    def _accept_across_associations(self, counter: int, what: str) -> None:
        """The meter's counter must also exceed every counter it used with these keys in an earlier
        association (checked on the association's first counter; later ones rise from it)."""
        title = self._title()
        if self.first_server_counter is None:
            earlier = self.memory.last(title, self.keys)
            if earlier is not None and counter <= earlier:
                raise ReplayedReply(f"{what}: the meter's invocation counter {counter} does not exceed {earlier}, "
                                    f"the last it used with these keys in an earlier association: its counter "
                                    f"restarted or went back, so it reuses GCM IVs (system title || counter) "
                                    f"under the same key, or the reply was recorded earlier")
            self.first_server_counter = counter
        self.memory.record(title, self.keys, counter)

    # -- xDLMS -------------------------------------------------------------------

    def protect(self, plain: bytes) -> bytes:
        """A plain GET/SET/ACTION request as glo or general-glo ciphered APDU."""
        if plain[:1] and plain[0] in (0x60, 0x62):  # ACSE travels as it is
            return plain
        glo = GLO_OF.get(plain[0]) if plain else None
        if glo is None:
            raise ValueError(f"no glo form for APDU tag 0x{plain[0]:02X}")
        _, body = self._cipher(plain)
        if self.keys.general:
            apdu = (bytes((GENERAL_GLO, len(self.keys.system_title))) + self.keys.system_title
                    + encode_length(len(body)) + body)
        else:
            apdu = bytes((glo,)) + encode_length(len(body)) + body
        self.last_protected = apdu
        return apdu

    def unprotect(self, apdu: bytes, what: str) -> bytes:
        """A ciphered reply as its plain APDU, after its tag and counter check. A plain
        exception-response passes (a meter refuses a request it cannot decipher that way)."""
        if not apdu:
            raise MalformedReply(f"{what}: empty reply")
        tag = apdu[0]
        if tag == EXCEPTION_RESPONSE or tag in (0x61, 0x63):
            return apdu
        pos = 1
        if tag == GENERAL_GLO:
            if len(apdu) < 2 or apdu[1] != 8 or len(apdu) < 10:
                raise MalformedReply(f"{what}: general-glo-ciphering without an 8-byte system title")
            title = apdu[2:10]
            if title != self._title():
                raise TagMismatch(f"{what}: general-glo-ciphering from system title {title.hex()}, not the "
                                  f"associated meter's {self._title().hex()}")
            pos = 10
        elif tag not in PLAIN_OF:
            raise UncipheredReply(f"{what}: the meter answered in clear (tag 0x{tag:02X}) in an association "
                                  f"that ciphers every APDU")
        length, pos = _read_length(apdu, pos, what)
        if pos + length != len(apdu) or length < 5:
            raise MalformedReply(f"{what}: ciphered APDU length {length} does not match its "
                                 f"{len(apdu) - pos} bytes")
        plain = self._decipher(apdu[pos:], what)
        if tag != GENERAL_GLO and (not plain or PLAIN_OF[tag] != plain[0]):
            raise MalformedReply(f"{what}: glo tag 0x{tag:02X} carries a plain APDU 0x{plain[:1].hex() or '--'}")
        return plain

    def initiate_response(self, ui: bytes, server_title: bytes | None) -> bytes:
        if server_title is None or len(server_title) != 8:
            raise MalformedReply("AARE: a ciphered context needs the meter's 8-byte system title "
                                 "(responding-AP-title)")
        self.server_title = server_title
        self.meter_accepted = True  # an accepted AARE, whatever its glo-InitiateResponse turns out to be
        if ui[:1] != bytes((GLO_INITIATE_RESPONSE,)):
            raise UncipheredReply("AARE: the user-information is not a glo-InitiateResponse in a ciphered "
                                  "application context")
        length, pos = _read_length(ui, 1, "AARE glo-InitiateResponse")
        if pos + length != len(ui):
            raise MalformedReply("AARE glo-InitiateResponse: length does not match")
        return self._decipher(ui[pos:], "AARE glo-InitiateResponse")

    def _decipher(self, body: bytes, what: str) -> bytes:
        sc = body[0]
        if sc & 0xCF:
            raise MalformedReply(f"{what}: security control 0x{sc:02X} is not suite 0 with unicast key")
        if sc != self.keys.policy:
            raise UncipheredReply(f"{what}: security control 0x{sc:02X}, the association's policy is "
                                  f"0x{self.keys.policy:02X}")
        counter = _U32.unpack_from(body, 1)[0]
        try:
            plain = _gcm_decrypt(sc, self.keys.encryption_key.reveal(), self.keys.authentication_key.reveal(),
                                 self._title() + _U32.pack(counter), body[5:])
        except InvalidTag:
            raise TagMismatch(f"{what}: the GCM tag does not verify (tampered reply, or the meter uses other "
                              f"keys); its content was discarded") from None
        self._accept_counter(counter, what)
        return plain
