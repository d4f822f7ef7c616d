"""No secret in any artefact: the bench runs as a pytest subprocess (long tracebacks with
locals, junit, allure, DEBUG logs) against an emulated meter behind the fault proxy, whose
associations fail in each way (garbage, silence, FIN, truncation, a late reply). Every file
the run leaves and the console are then searched for the LLS password in plain, hex (both
cases) and base64 (at each of the three alignments): 0 hits."""
from __future__ import annotations

import base64

import pytest

from smmc_bench.fixtures.faults import Fault, request_tag
from smmc_bench.fixtures.faults.proxy import AARQ

from .conftest import LINK_TIMEOUT_S, PASSWORD, run_bench, verdicts

SUITE = ["tests/conformance/test_aspect01_architecture.py", "tests/conformance/test_aspect01_association.py"]
FAILING_ASSOCIATIONS = ["garbage", "silence", "fin", "truncation", "late"]


def needles(secret: bytes) -> dict[str, bytes]:
    found = {"plain": secret, "hex": secret.hex().encode(), "HEX": secret.hex().upper().encode(),
             "spaced hex": secret.hex(" ").encode()}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret)
        inner = encoded[4 if offset else 0:-4]  # the groups made of secret bytes only
        found[f"base64+{offset}"] = inner
    return found


def test_password_appears_in_no_artefact_of_failing_associations(tmp_path, emulated, proxy):
    # The 1st association (the station reading the meter's identity) goes through; the next
    # five fail, each in its own way.
    proxy.fault = [Fault(kind, requests=request_tag(AARQ), nth=2 + index, delay_s=1.5 * LINK_TIMEOUT_S)
                   for index, kind in enumerate(FAILING_ASSOCIATIONS)]
    run, out = run_bench(tmp_path, proxy.address[1], SUITE, "--tb=long", "-l", "-rA",
                         f"--junitxml={tmp_path / 'out' / 'junit.xml'}", f"--alluredir={tmp_path / 'out' / 'allure'}",
                         "--log-level=DEBUG", "-o", "log_cli=true", "-o", "log_cli_level=DEBUG")
    console = run.stdout + run.stderr
    assert [a.split(" on ")[0] for a in proxy.applied] == FAILING_ASSOCIATIONS, console.decode()[-3000:]
    assert b"AARQ" in console  # the failures were reported...
    artefacts = {"console": console}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            artefacts[str(path.relative_to(out))] = path.read_bytes()
    assert any(name.startswith("allure") for name in artefacts) and "junit.xml" in artefacts
    assert any(name.endswith("record.json") for name in artefacts)
    hits = [f"{name}: {form}" for name, content in artefacts.items()
            for form, needle in needles(PASSWORD).items() if needle in content]
    assert hits == []  # ...and the password is in none of them
    # the failing associations were judged, not crashed on: ERROR/FAIL with a diagnosis naming the AARQ
    assert b"INTERNALERROR" not in console
    judged = [v for v, diagnosis in verdicts(out / "run").values() if v in ("ERROR", "FAIL") and "AARQ" in diagnosis]
    assert len(judged) == len(FAILING_ASSOCIATIONS)


# HLS-GMAC keys, unique so a grep finds only a leak: the authentication key and the master key
# (KEK) from key files, the encryption key from an environment variable. The keys the key-change
# test sets (random, made in the bench's process) are caught where the emulated meter applies them.
HLS_AK = bytes.fromhex("a7c31e5b90d24f6688e1b3c5d7f90213")
HLS_EK = bytes.fromhex("3b5d7f91a2c4e6081a2b3c4d5e6f7081")
HLS_KEK = bytes.fromhex("c90e1d2f3a4b5c6d7e8f90a1b2c3d4e5")
HLS_SUITE = ["tests/conformance/test_security_hls.py", "tests/conformance/test_aspect01_association.py"]


@pytest.mark.parametrize("mutant", [None, "sec-counter-not-increasing", "sec-accepts-wrong-key",
                                    "sec-old-key-still-accepted"])
def test_hls_keys_appear_in_no_artefact(tmp_path, monkeypatch, mutant):
    """Conforming (every test PASSes: the keys were used), and mutants whose failures go
    through the bench's ciphering code with long tracebacks and their locals; one fails the
    key-change test (new keys set, then the original ones put back)."""
    import os
    import subprocess
    import sys

    from smmc_bench.fixtures.clock import VirtualClock
    from smmc_bench.fixtures.meter import EmulatedMeter
    from smmc_bench.fixtures.meter.hls import HlsGmacServer

    from .conftest import ROOT

    applied: list[bytes] = []  # every key the meter was given by a global key transfer
    apply_keys = HlsGmacServer.apply_keys

    def recording(self, keys):
        applied.extend(keys.values())
        apply_keys(self, keys)

    monkeypatch.setattr(HlsGmacServer, "apply_keys", recording)
    key_file = tmp_path / "secrets" / "ak.txt"
    key_file.parent.mkdir()
    key_file.write_text(HLS_AK.hex() + "\n")
    kek_file = tmp_path / "secrets" / "kek.txt"
    kek_file.write_text(HLS_KEK.hex() + "\n")
    with EmulatedMeter(clock=VirtualClock(), management_security="hls-gmac", hls_keys=(HLS_AK, HLS_EK),
                       hls_master_key=HLS_KEK, mutant=mutant) as meter:
        bench = tmp_path / "bench.toml"
        bench.write_text(f"""
[bench]
station_id = "HLS-SECRETS"
lab = "secret grep"
operator = "ci"

[emulator]
enabled = false

[[meter]]
id = "hls"
profile = "emulated-idis-hls"
[meter.link]
kind = "tcp"
host = "127.0.0.1"
port = {meter.address[1]}
timeout = {LINK_TIMEOUT_S}
connect_timeout = 2.0
[meter.security]
client_sap = 1
authentication = "high-gmac"
authentication_key_file = "{key_file}"
encryption_key_env = "SMMC_TEST_HLS_EK"
master_key_file = "{kek_file}"
""")
        out = tmp_path / "out"
        command = [sys.executable, "-m", "pytest", *HLS_SUITE, f"--smmc-bench={bench}", f"--smmc-run-dir={out / 'run'}",
                   "-p", "no:cacheprovider", "--tb=long", "-l", "-rA", f"--junitxml={out / 'junit.xml'}",
                   f"--alluredir={out / 'allure'}", "--log-level=DEBUG", "-o", "log_cli=true",
                   "-o", "log_cli_level=DEBUG"]
        env = {**os.environ, "SMMC_TEST_HLS_EK": HLS_EK.hex()}
        run = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300, env=env)
    console = run.stdout + run.stderr
    artefacts = {"console": console}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            artefacts[str(path.relative_to(out))] = path.read_bytes()
    assert any(name.endswith("record.json") for name in artefacts) and "junit.xml" in artefacts
    results = verdicts(out / "run")
    if mutant is None:
        assert results and all(v == "PASS" for v, _ in results.values()), results  # the keys were used
    else:
        assert any(v == "FAIL" for v, _ in results.values()), results
    changed = {key for key in applied if key not in (HLS_AK, HLS_EK)}
    if mutant in (None, "sec-old-key-still-accepted"):
        # the key-change test set new keys (and put the original ones back)
        assert len(changed) >= 2 and {HLS_AK, HLS_EK} <= set(applied), len(applied)
    secrets = [("authentication key", HLS_AK), ("encryption key", HLS_EK), ("master key", HLS_KEK)]
    secrets += [(f"new key {index}", key) for index, key in enumerate(sorted(changed))]
    hits = [f"{name}: {key} {form}" for name, content in artefacts.items()
            for key, secret in secrets
            for form, needle in needles(secret).items() if needle in content]
    assert hits == []
