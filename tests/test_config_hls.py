"""[meter.security] for HLS-GMAC: keys from an env variable or a key file only, as strict as the
LLS password; a missing or malformed key is named by its bench key, never shown."""
from __future__ import annotations

from pathlib import Path

import pytest
from smmc_bench.config import ConfigError, load_bench

REPO = Path(__file__).resolve().parent.parent
AK_HEX, EK_HEX = "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"

HLS = """
[bench]
station_id = "LAB-1"

[[meter]]
id = "m1"
profile = "emulated-idis-hls"
[meter.link]
kind = "tcp"
host = "192.0.2.10"
port = 4059
[meter.security]
client_sap = 1
authentication = "high-gmac"
authentication_key_file = "ak.txt"
encryption_key_env = "SMMC_TEST_EK"
"""


def bench(tmp_path: Path, text: str = HLS) -> Path:
    (tmp_path / "bench.toml").write_text(text)
    return tmp_path / "bench.toml"


def test_keys_from_a_file_and_the_environment(tmp_path, monkeypatch):
    (tmp_path / "ak.txt").write_text(AK_HEX + "\n")
    monkeypatch.setenv("SMMC_TEST_EK", EK_HEX.upper())
    config = load_bench(bench(tmp_path))
    keys = config.resolve_keys(config.meter[0])
    assert keys.authentication_key.reveal().hex() == AK_HEX and keys.encryption_key.reveal().hex() == EK_HEX
    assert keys.policy == 0x30 and not keys.general and keys.system_title == b"SMMCBENC"
    assert AK_HEX not in repr(keys) and EK_HEX not in repr(keys)


def test_the_example_bench_loads_with_the_emulators_key_files():
    config = load_bench(REPO / "examples" / "hls.toml")
    keys = config.resolve_keys(config.meter[0])
    from smmc_bench.fixtures.meter import default_hls_keys
    assert (keys.authentication_key.reveal(), keys.encryption_key.reveal()) == default_hls_keys()


@pytest.mark.parametrize("content, why", [("", "empty"), ("not-hex-at-all-but-32-characters", "not hexadecimal"),
                                          ("0011", "is 2 bytes")])
def test_a_bad_key_file_is_named_not_shown(tmp_path, monkeypatch, content, why):
    (tmp_path / "ak.txt").write_text(content)
    monkeypatch.setenv("SMMC_TEST_EK", EK_HEX)
    config = load_bench(bench(tmp_path))
    with pytest.raises(ConfigError, match=r"meter\[0\]\.security\.authentication_key_file") as caught:
        config.resolve_keys(config.meter[0])
    assert why in str(caught.value) and (not content or content not in str(caught.value))


def test_a_missing_env_key_is_named(tmp_path, monkeypatch):
    (tmp_path / "ak.txt").write_text(AK_HEX)
    monkeypatch.delenv("SMMC_TEST_EK", raising=False)
    config = load_bench(bench(tmp_path))
    with pytest.raises(ConfigError, match=r"encryption_key_env \(SMMC_TEST_EK\): environment variable"):
        config.resolve_keys(config.meter[0])


def test_a_real_meter_needs_both_key_sources_and_one_each(tmp_path):
    with pytest.raises(ConfigError, match="encryption_key_env or encryption_key_file"):
        load_bench(bench(tmp_path, HLS.replace('encryption_key_env = "SMMC_TEST_EK"\n', "")))
    with pytest.raises(ConfigError, match="not both"):
        load_bench(bench(tmp_path, HLS + 'authentication_key_env = "AK"\n'))
    with pytest.raises(ConfigError):
        load_bench(bench(tmp_path, HLS + 'authentication_key = "00112233445566778899aabbccddeeff"\n'))
