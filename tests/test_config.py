"""bench.toml and meter profiles: good files load, broken ones name the key and exit 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import ConfigError, load_bench
from bench.profiles import load_profile

REPO = Path(__file__).resolve().parent.parent

GOOD = """
[bench]
station_id = "LAB-1"

[[meter]]
id = "m1"
profile = "emulated-idis"
emulated = true

[meter.security]
client_sap = 1
authentication = "low"
password_env = "SMMC_TEST_PASSWORD"
"""


def write(tmp_path: Path, text: str, name: str = "bench.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_bench_loads():
    config = load_bench(REPO / "bench.toml")
    assert config.meter[0].emulated
    password = config.resolve_password(config.meter[0])
    assert password is not None and "***" in repr(password)


def test_good_file_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMC_TEST_PASSWORD", "secret-value")
    config = load_bench(write(tmp_path, GOOD))
    assert config.bench.station_id == "LAB-1"
    assert config.resolve_password(config.meter[0]).reveal() == b"secret-value"


@pytest.mark.parametrize(
    "change, key",
    [
        (('authentication = "low"', 'authentication = "medium"'), "meter[0].security.authentication"),
        (("client_sap = 1", "client_sap = 999"), "meter[0].security.client_sap"),
        (('id = "m1"', 'id = "m 1"'), "meter[0].id"),
        (('station_id = "LAB-1"', 'station_id = "LAB-1"\ncolour = "red"'), "bench.colour"),
        (("emulated = true", "emulated = false"), "meter[0]"),
    ],
)
def test_broken_key_is_named(tmp_path, change, key):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_bench(path)
    message = str(caught.value)
    assert str(path) in message and f": {key}:" in message


def test_missing_password_source_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SMMC_TEST_PASSWORD", raising=False)
    config = load_bench(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"meter\[0\]\.security\.password_env: environment variable SMMC_TEST_PASSWORD"):
        config.resolve_password(config.meter[0])


def test_inline_password_is_refused(tmp_path):
    path = write(tmp_path, GOOD.replace('password_env = "SMMC_TEST_PASSWORD"', 'password = "hunter2"'))
    with pytest.raises(ConfigError) as caught:
        load_bench(path)
    assert "meter[0].security.password" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_bench(write(tmp_path, "[bench\nstation_id="))


def test_profile_limits_carry_articles():
    profile = load_profile("emulated-idis")
    assert profile.limits.clock_sync_tolerance.article == "3-11"
    assert profile.has("disconnector") and not profile.has("image_transfer")


def test_broken_profile_names_key(tmp_path):
    text = (REPO / "bench" / "profiles" / "emulated-idis.toml").read_text()
    path = write(tmp_path, text.replace('disconnect_control = "0.0.96.3.10.255"', 'disconnect_control = "0.0.96.3.10"'),
                 "p.toml")
    with pytest.raises(ConfigError, match=r"objects\.disconnect_control: .*not an OBIS code"):
        load_profile(str(path))


def test_cli_exits_2_naming_the_key(tmp_path):
    path = write(tmp_path, GOOD.replace('authentication = "low"', 'authentication = "medium"'))
    result = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--bench", str(path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "meter[0].security.authentication" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
