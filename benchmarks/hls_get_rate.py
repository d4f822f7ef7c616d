"""HLS-GMAC cost (issue #12), two ratios:

1. GET/s of the clock time through DlmsSession with HLS-GMAC (every APDU authenticated and
   encrypted, every tag and invocation counter checked) against the same session without
   ciphering (LLS), each against its own emulated meter over the TCP wrapper. The meter's
   ciphering is in the round trip too. Target: HLS >= 0.5 x plain.
2. The bench's AES-GCM (`cryptography`, drivers/dlms/security.py) against gurux's own GCM
   (`GXDLMSChippering.encryptAesGcm`, pure Python) on the same glo APDUs (a GET request, a
   250-byte and a 1000-byte response), both checked to give the very same bytes first.
   Target: bench >= 10 x gurux.

Run: python benchmarks/hls_get_rate.py [N]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dlms_get_rate  # noqa: E402  (beside this script)

from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: E402
from gurux_dlms.enums import Security  # noqa: E402
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: E402
from smmc_bench.drivers.dlms import Authentication, SessionSettings  # noqa: E402
from smmc_bench.drivers.dlms.cosem_types import encode_length  # noqa: E402
from smmc_bench.drivers.dlms.security import HlsKeys, _gcm_encrypt  # noqa: E402
from smmc_bench.drivers.secret import Secret  # noqa: E402
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402
from smmc_bench.fixtures.meter import EmulatedMeter, default_hls_keys, default_lls_password  # noqa: E402

SESSION_TARGET, GCM_TARGET = 0.5, 10.0
TITLE = b"SMMCBENC"
SC = 0x30  # authenticated and encrypted, suite 0


def session_rate(meter: EmulatedMeter, settings: SessionSettings, n: int) -> float:
    return dlms_get_rate.session_rate(*meter.address, settings, n)


def get_rates(n: int) -> tuple[float, float]:
    password = default_lls_password()
    ak, ek = default_hls_keys()
    plain_meter = EmulatedMeter(clock=VirtualClock(), lls_password=password, port=0)
    hls_meter = EmulatedMeter(clock=VirtualClock(), management_security="hls-gmac", hls_keys=(ak, ek), port=0)
    plain_settings = SessionSettings(1, 1, Authentication.LOW, Secret(password), timeout=5.0)
    hls_settings = SessionSettings(1, 1, Authentication.HIGH_GMAC, keys=HlsKeys(Secret(ak), Secret(ek)), timeout=5.0)
    plain_meter.start()
    hls_meter.start()
    try:
        session_rate(plain_meter, plain_settings, n // 10)  # warm-up, both paths
        session_rate(hls_meter, hls_settings, n // 10)
        plain = hls = 0.0
        for _ in range(3):  # interleave and keep the best of each, so load drifts cancel out
            plain = max(plain, session_rate(plain_meter, plain_settings, n))
            hls = max(hls, session_rate(hls_meter, hls_settings, n))
    finally:
        hls_meter.stop()
        plain_meter.stop()
    return plain, hls


def bench_glo(glo: int, ek: bytes, ak: bytes, counter: int, plain: bytes) -> bytes:
    """The glo APDU as the bench's CipheringContext builds it (drivers/dlms/security.py)."""
    body = bytes((SC,)) + counter.to_bytes(4, "big") + _gcm_encrypt(SC, ek, ak, TITLE + counter.to_bytes(4, "big"),
                                                                    plain)
    return bytes((glo,)) + encode_length(len(body)) + body


def gurux_glo(glo: int, ek: bytes, ak: bytes, counter: int, plain: bytes) -> bytes:
    p = AesGcmParameter(glo, TITLE, ek, ak)
    p.security = Security.AUTHENTICATION_ENCRYPTION
    p.invocationCounter = counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, plain))


def gcm_rates(n: int) -> tuple[float, float, int]:
    ak, ek = default_hls_keys()
    payloads = [(0xC8, bytes.fromhex("c001c100080000010000ff0200")),
                (0xCC, bytes.fromhex("c40101000982f0") + bytes(range(240)) + b"\x00\x00\x00"),
                (0xCC, bytes.fromhex("c4010100098203e0") + bytes(i % 251 for i in range(992)))]
    for glo, plain in payloads:  # the same work: byte for byte the same APDU
        assert bench_glo(glo, ek, ak, 7, plain) == gurux_glo(glo, ek, ak, 7, plain), "bench and gurux GCM differ"
    rates = []
    for build, count in ((bench_glo, n * 20), (gurux_glo, max(n // 20, 3))):
        started = time.perf_counter()
        octets = 0
        for i in range(count):
            glo, plain = payloads[i % len(payloads)]
            octets += len(build(glo, ek, ak, i + 1, plain))
        rates.append(count / (time.perf_counter() - started))
    return rates[0], rates[1], len(payloads)


def main(n: int = 2000) -> tuple[float, float]:
    plain, hls = get_rates(n)
    bench, gurux, kinds = gcm_rates(n)
    session_ratio, gcm_ratio = hls / plain, bench / gurux
    print(f"DlmsSession, LLS (no ciphering): {plain:8.0f} GET/s")
    print(f"DlmsSession, HLS-GMAC:           {hls:8.0f} GET/s")
    print(f"ratio HLS/plain: {session_ratio:.2f} (target >= {SESSION_TARGET:.2f})")
    print(f"bench GCM (cryptography): {bench:9.0f} APDU/s ({kinds} payloads, 13 to 1000 bytes)")
    print(f"gurux GCM (pure Python):  {gurux:9.0f} APDU/s (same APDUs, same bytes)")
    print(f"ratio bench/gurux GCM: {gcm_ratio:.0f}x (target >= {GCM_TARGET:.0f}x)")
    return session_ratio, gcm_ratio


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
