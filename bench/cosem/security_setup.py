"""Security setup (IC 64) as the conformance tests use it: global key transfer (method 2).

Each new key goes wrapped with the master key (KEK) per AES key wrap (RFC 3394), by
`cryptography`'s keywrap; the wrapped keys travel as Secrets, so the session's traces mask
them like any secret. Nothing here formats a key into a message.
"""
from __future__ import annotations

from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.secret import Secret

SECURITY_SETUP = 64
SECURITY_SETUP_LN = "0.0.43.0.0.255"
GLOBAL_KEY_TRANSFER = 2
# key_id of global_key_transfer (Blue Book, IC 64)
GLOBAL_UNICAST_ENCRYPTION_KEY, GLOBAL_BROADCAST_ENCRYPTION_KEY, AUTHENTICATION_KEY = 0, 1, 2


def wrapped_key_data(master_key: Secret, keys: dict[int, Secret]) -> Typed:
    """The method's parameter: array of structure {key_id enum, key_wrapped octet-string}."""
    if not keys:
        raise ValueError("a global key transfer carries at least one key")
    kek = master_key.reveal()
    items = [Typed(DataType.STRUCTURE, [Typed(DataType.ENUM, key_id),
                                        Typed(DataType.OCTET_STRING, Secret(aes_key_wrap(kek, key.reveal())))])
             for key_id, key in sorted(keys.items())]
    return Typed(DataType.ARRAY, items)


def global_key_transfer(session: DlmsSession, master_key: Secret, keys: dict[int, Secret],
                        logical_name: str = SECURITY_SETUP_LN) -> None:
    """Invoke global_key_transfer; a refusal raises the session's error (the result named)."""
    session.action(SECURITY_SETUP, logical_name, GLOBAL_KEY_TRANSFER, wrapped_key_data(master_key, keys))
