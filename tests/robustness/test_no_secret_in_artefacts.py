"""No secret in any artefact: the bench runs as a pytest subprocess (long tracebacks with
locals, junit, allure, DEBUG logs) against an emulated meter behind the fault proxy, whose
associations fail in each way (garbage, silence, FIN, truncation, a late reply). Every file
the run leaves and the console are then searched for the LLS password in plain, hex (both
cases) and base64 (at each of the three alignments): 0 hits."""
from __future__ import annotations

import base64

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
