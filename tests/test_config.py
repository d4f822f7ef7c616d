"""bench.toml and meter profiles: good files load, broken ones name the key and exit 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from smmc_bench.config import ConfigError, load_bench
from smmc_bench.profile.meter import load_profile

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
    assert profile.has("disconnector") and profile.has("image_transfer")


def test_broken_profile_names_key(tmp_path):
    text = (REPO / "bench" / "profiles" / "emulated-idis.toml").read_text()
    path = write(tmp_path, text.replace('disconnect_control = "0.0.96.3.10.255"', 'disconnect_control = "0.0.96.3.10"'),
                 "p.toml")
    with pytest.raises(ConfigError, match=r"objects\.disconnect_control: .*not an OBIS code"):
        load_profile(str(path))


@pytest.mark.parametrize("explicit", [True, False], ids=["--bench FILE", "./bench.toml"])
def test_plain_pytest_on_a_broken_bench_is_one_usage_error(tmp_path, explicit):
    """Not a collection error per module: one message naming file and key, exit 2, nothing run."""
    path = write(tmp_path, GOOD.replace("client_sap = 1", 'client_sap = "1"'))
    command = [sys.executable, "-m", "pytest", str(REPO / "tests" / "conformance"), "-p", "no:cacheprovider",
               "--rootdir", str(REPO)] + (["--smmc-bench", str(path)] if explicit else [])
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "meter[0].security.client_sap" in output and "bench.toml" in output
    assert "Traceback" not in output and "ERROR collecting" not in output and " passed" not in output


def test_cli_exits_2_naming_the_key(tmp_path):
    path = write(tmp_path, GOOD.replace('authentication = "low"', 'authentication = "medium"'))
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "meter[0].security.authentication" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# -- every malformed file: exit 2 naming file and key, never a traceback ----------------------------
PASSWORD_FILE = REPO / "fixtures" / "secrets" / "lls-password.txt"
PROFILE_TEXT = (REPO / "bench" / "profiles" / "emulated-idis.toml").read_text()

REAL_BENCH = f"""
[bench]
station_id = "LAB-1"
operator = "J. Perez"

[emulator]
enabled = false

[[meter]]
id = "m1"
profile = "emulated-idis"

[meter.link]
kind = "tcp"
host = "192.0.2.10"
port = 4059
timeout = 5.0
connect_timeout = 5.0

[meter.security]
client_sap = 1
authentication = "low"
password_file = "{PASSWORD_FILE}"
"""

SERIAL_BENCH = REAL_BENCH.replace('kind = "tcp"\nhost = "192.0.2.10"\nport = 4059',
                                  'kind = "serial"\nport = "/dev/ttyUSB0"\nretries = 3')

EMULATED_BENCH = f"""
[bench]
station_id = "EMU-1"

[emulator]
enabled = true
initial_clock_offset = -437.0

[head_end]
host = "127.0.0.1"
port = 4060

[ac_source]
emulated = true
model = "chroma-61500"
timeout = 2.0
nominal_voltage = 220.0

[load]
kind = "modbus"
emulated = true
steps_a = [1.0, 2.0]

[[meter]]
id = "emu-1"
profile = "emulated-idis"
emulated = true

[meter.security]
password_file = "{PASSWORD_FILE}"
"""

REAL_AC_SOURCE = '\n[ac_source]\nresource = "TCPIP::192.0.2.20::5025::SOCKET"\ntimeout = 2.0\nnominal_voltage = 220.0\n'
REAL_LOAD = '\n[load]\nkind = "modbus"\nhost = "192.0.2.30"\nport = 502\nsteps_a = [1.0, 2.0]\nbaudrate = 9600\n'


def set_key(text: str, table: str, key: str, raw: str) -> str:
    """`text` with `key = raw` in `[table]` (replacing the key's line, or added to the table)."""
    lines = text.splitlines()
    start = lines.index(f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if lines[i].split("=")[0].strip() == key:
            lines[i] = f"{key} = {raw}"
            break
    else:
        lines.insert(start + 1, f"{key} = {raw}")
    return "\n".join(lines) + "\n"


def case(name, base, table, key, raw, named):
    return pytest.param(set_key(base, table, key, raw), named, id=name)


def raw_case(name, content, named):
    return pytest.param(content, named, id=name)


LINK = "meter.link"
BENCH_CASES = [
    # Timeouts: finite, positive, bounded, numbers.
    *[case(f"link-timeout-{label}", REAL_BENCH, LINK, "timeout", raw, "meter[0].link.timeout")
      for label, raw in [("inf", "inf"), ("minus-inf", "-inf"), ("nan", "nan"), ("1e12", "1e12"),
                         ("100000", "100000"), ("negative", "-1.0"), ("zero", "0"), ("true", "true"),
                         ("string", '"5"'), ("array", "[5]")]],
    *[case(f"link-connect-timeout-{label}", REAL_BENCH, LINK, "connect_timeout", raw,
           "meter[0].link.connect_timeout")
      for label, raw in [("inf", "inf"), ("1e12", "1e12"), ("negative", "-5.0"), ("true", "true")]],
    case("serial-timeout-inf", SERIAL_BENCH, LINK, "timeout", "inf", "meter[0].link.timeout"),
    case("serial-timeout-100000", SERIAL_BENCH, LINK, "timeout", "100000", "meter[0].link.timeout"),
    case("serial-retries-100", SERIAL_BENCH, LINK, "retries", "100", "meter[0].link.retries"),
    case("serial-retries-float", SERIAL_BENCH, LINK, "retries", "3.0", "meter[0].link.retries"),
    case("serial-window-9", SERIAL_BENCH, LINK, "window_size", "9", "meter[0].link.window_size"),
    case("serial-address-size-3", SERIAL_BENCH, LINK, "address_size", "3", "meter[0].link.address_size"),
    case("serial-physical-string", SERIAL_BENCH, LINK, "physical_address", '"17"', "meter[0].link.physical_address"),
    case("serial-baudrate-float", SERIAL_BENCH, LINK, "baudrate", "9600.0", "meter[0].link.baudrate"),
    # Ports and addresses: integers in range, not strings or floats.
    *[case(f"link-port-{label}", REAL_BENCH, LINK, "port", raw, "meter[0].link.port")
      for label, raw in [("string", '"4059"'), ("float", "4059.0"), ("70000", "70000"), ("zero", "0"),
                         ("true", "true"), ("nan", "nan")]],
    case("link-host-empty", REAL_BENCH, LINK, "host", '""', "meter[0].link.host"),
    case("link-host-number", REAL_BENCH, LINK, "host", "42", "meter[0].link.host"),
    case("link-wport-negative", REAL_BENCH, LINK, "server_wport", "-1", "meter[0].link.server_wport"),
    case("link-wport-string", REAL_BENCH, LINK, "server_wport", '"1"', "meter[0].link.server_wport"),
    case("link-unknown-kind", REAL_BENCH, LINK, "kind", '"carrier-pigeon"', "meter[0].link"),
    case("link-unknown-key", REAL_BENCH, LINK, "colour", '"red"', "meter[0].link.colour"),
    # Security.
    case("security-sap-zero", REAL_BENCH, "meter.security", "client_sap", "0", "meter[0].security.client_sap"),
    case("security-sap-string", REAL_BENCH, "meter.security", "client_sap", '"1"', "meter[0].security.client_sap"),
    case("security-sap-float", REAL_BENCH, "meter.security", "client_sap", "1.0", "meter[0].security.client_sap"),
    case("security-mechanism-unknown", REAL_BENCH, "meter.security", "authentication", '"medium"',
         "meter[0].security.authentication"),
    case("security-mechanism-bool", REAL_BENCH, "meter.security", "authentication", "true",
         "meter[0].security.authentication"),
    case("security-inline-password", REAL_BENCH, "meter.security", "password", '"hunter2"',
         "meter[0].security.password"),
    case("security-env-name-spaces", REAL_BENCH, "meter.security", "password_env", '"MY VAR"',
         "meter[0].security.password_env"),
    case("security-two-sources", REAL_BENCH, "meter.security", "password_env", '"LLS"', "meter[0].security"),
    case("security-key-file-missing", REAL_BENCH, "meter.security", "password_file", '"/nonexistent/lls"',
         "meter[0].security.password_file"),
    # Meters.
    case("meter-id-space", REAL_BENCH, "[meter]", "id", '"m 1"', "meter[0].id"),
    case("meter-id-number", REAL_BENCH, "[meter]", "id", "5", "meter[0].id"),
    case("meter-emulated-string", REAL_BENCH, "[meter]", "emulated", '"yes"', "meter[0].emulated"),
    case("meter-emulated-int", REAL_BENCH, "[meter]", "emulated", "1", "meter[0].emulated"),
    case("meter-profile-empty", REAL_BENCH, "[meter]", "profile", '""', "meter[0].profile"),
    case("meter-profile-unknown", REAL_BENCH, "[meter]", "profile", '"no-such-profile"', "meter[0].profile"),
    raw_case("meter-id-repeated", EMULATED_BENCH + EMULATED_BENCH[EMULATED_BENCH.index("[[meter]]"):], "meter[1].id"),
    raw_case("meter-no-link", REAL_BENCH[:REAL_BENCH.index("[meter.link]")]
             + REAL_BENCH[REAL_BENCH.index("[meter.security]"):], "meter[0]"),
    raw_case("meter-none", REAL_BENCH[:REAL_BENCH.index("[[meter]]")], "meter"),
    # The station and the emulator.
    case("station-id-empty", REAL_BENCH, "bench", "station_id", '""', "bench.station_id"),
    case("station-id-number", REAL_BENCH, "bench", "station_id", "7", "bench.station_id"),
    case("station-unknown-key", REAL_BENCH, "bench", "colour", '"red"', "bench.colour"),
    raw_case("station-missing", REAL_BENCH.replace("[bench]", "[ignored]"), "ignored"),
    case("emulator-offset-inf", EMULATED_BENCH, "emulator", "initial_clock_offset", "inf",
         "emulator.initial_clock_offset"),
    case("emulator-offset-1e12", EMULATED_BENCH, "emulator", "initial_clock_offset", "1e12",
         "emulator.initial_clock_offset"),
    case("emulator-offset-string", EMULATED_BENCH, "emulator", "initial_clock_offset", '"10"',
         "emulator.initial_clock_offset"),
    case("emulator-enabled-string", EMULATED_BENCH, "emulator", "enabled", '"no"', "emulator.enabled"),
    # The head-end.
    case("head-end-port-70000", EMULATED_BENCH, "head_end", "port", "70000", "head_end.port"),
    case("head-end-port-string", EMULATED_BENCH, "head_end", "port", '"4060"', "head_end.port"),
    case("head-end-advertise-port", EMULATED_BENCH, "head_end", "advertise", '"192.0.2.5:99999"', "head_end.advertise"),
    case("head-end-advertise-no-port", EMULATED_BENCH, "head_end", "advertise", '"bench-pc"', "head_end.advertise"),
    # Instruments: a real meter with emulated instruments, and the instruments' own keys.
    raw_case("real-meter-emulated-ac-source", REAL_BENCH + "\n[ac_source]\nemulated = true\n", "ac_source.emulated"),
    raw_case("real-meter-emulated-load", REAL_BENCH + '\n[load]\nkind = "scpi"\nemulated = true\n', "load.emulated"),
    *[case(f"ac-source-timeout-{label}", REAL_BENCH + REAL_AC_SOURCE, "ac_source", "timeout", raw, "ac_source.timeout")
      for label, raw in [("inf", "inf"), ("nan", "nan"), ("1e12", "1e12"), ("100000", "100000"),
                         ("negative", "-2.0"), ("true", "true"), ("string", '"5"')]],
    case("ac-source-voltage-nan", REAL_BENCH + REAL_AC_SOURCE, "ac_source", "nominal_voltage", "nan",
         "ac_source.nominal_voltage"),
    case("ac-source-voltage-negative", REAL_BENCH + REAL_AC_SOURCE, "ac_source", "nominal_voltage", "-220.0",
         "ac_source.nominal_voltage"),
    case("ac-source-model-unknown", REAL_BENCH + REAL_AC_SOURCE, "ac_source", "model", '"acme-9000"', "ac_source.model"),
    case("load-step-negative", REAL_BENCH + REAL_LOAD, "load", "steps_a", "[1.0, -2.0]", "load"),
    case("load-step-inf", REAL_BENCH + REAL_LOAD, "load", "steps_a", "[1.0, inf]", "load.steps_a[1]"),
    case("load-port-string", REAL_BENCH + REAL_LOAD, "load", "port", '"502"', "load.port"),
    case("load-baudrate-float", REAL_BENCH + REAL_LOAD, "load", "baudrate", "9600.0", "load.baudrate"),
    case("load-timeout-inf", REAL_BENCH + REAL_LOAD, "load", "timeout", "inf", "load.timeout"),
    case("load-timeout-100000", REAL_BENCH + REAL_LOAD, "load", "timeout", "100000", "load.timeout"),
    # Not even TOML, or not UTF-8 text.
    raw_case("not-toml", REAL_BENCH + "\n[bench\n", "not valid TOML"),
    raw_case("unknown-table", REAL_BENCH + "\n[metre]\nid = 1\n", "metre"),
    raw_case("non-utf8-value", REAL_BENCH.replace('"J. Perez"', '"J. P\udce9rez"').encode("utf-8", "surrogateescape"),
             "bench.operator"),
    raw_case("non-utf8-comment", ("# Laboratorio de homologaci\udcf3n\n" + REAL_BENCH).encode("utf-8", "surrogateescape"),
             "line 1"),
    raw_case("utf16", REAL_BENCH.encode("utf-16"), "not UTF-8"),
]


def profile_case(name, table, key, raw, named):
    return pytest.param(set_key(PROFILE_TEXT, table, key, raw), named, id=name)


PROFILE_CASES = [
    *[profile_case(f"tolerance-{label}", "limits.clock_sync_tolerance", "value", raw,
                   "limits.clock_sync_tolerance.value")
      for label, raw in [("negative", "-2.0"), ("nan", "nan"), ("inf", "inf"), ("string", '"2.0"'),
                         ("true", "true"), ("1e12", "1e12")]],
    profile_case("shift-step-1e9", "limits.clock_shift_step", "value", "1e9", "limits.clock_shift_step.value"),
    profile_case("shift-step-901", "limits.clock_shift_step", "value", "901", "limits.clock_shift_step.value"),
    profile_case("shift-step-zero", "limits.clock_shift_step", "value", "0", "limits.clock_shift_step.value"),
    profile_case("desync-offset-1e7", "limits.clock_desync_offset", "value", "1e7", "limits.clock_desync_offset.value"),
    profile_case("observation-100000", "limits.disconnected_observation_time", "value", "100000",
                 "limits.disconnected_observation_time.value"),
    profile_case("energy-negative", "limits.energy_while_disconnected", "value", "-1.0",
                 "limits.energy_while_disconnected.value"),
    profile_case("supply-percent-150", "supply.limits.load_current_tolerance", "value", "150",
                 "supply.limits.load_current_tolerance.value"),
    profile_case("supply-outage-inf", "supply.limits.outage_length", "value", "inf", "supply.limits.outage_length.value"),
    profile_case("supply-outage-nan", "supply.limits.outage_length", "value", "nan", "supply.limits.outage_length.value"),
    profile_case("supply-emergency-1e12", "supply.limits.emergency_duration", "value", "1e12",
                 "supply.limits.emergency_duration.value"),
    profile_case("hdlc-no-answer-negative", "links.hdlc.no_answer_window", "value", "-0.3",
                 "links.hdlc.no_answer_window.value"),
    profile_case("article-words", "limits.clock_sync_tolerance", "article", '"three-eleven"',
                 "limits.clock_sync_tolerance.article"),
    profile_case("feature-unknown", "features", "teleportation", "true", "features"),
    profile_case("feature-string", "features", "disconnector", '"yes"', "features.disconnector"),
    profile_case("obis-short", "objects", "clock", '"0.0.1.0.0"', "objects.clock"),
    profile_case("event-code-300", "events", "remote_disconnect", "300", "events.remote_disconnect"),
    profile_case("event-code-string", "events", "remote_disconnect", '"62"', "events.remote_disconnect"),
    profile_case("control-mode-7", "disconnector", "control_modes", "[1, 7]", "disconnector.control_modes"),
    profile_case("hdlc-info-5000", "links.hdlc", "max_info_length", "5000", "links.hdlc.max_info_length"),
    profile_case("hdlc-window-float", "links.hdlc", "window_size", "1.0", "links.hdlc.window_size"),
    profile_case("mode-e-baud-zero", "links.mode_e", "min_baud", "0", "links.mode_e.min_baud"),
    profile_case("mode-e-pattern", "links.mode_e", "ident_pattern", '"("', "links.mode_e.ident_pattern"),
    profile_case("clients-sap-200", "clients", "management_sap", "200", "clients.management_sap"),
    profile_case("profile-unknown-key", "profile", "colour", '"red"', "profile.colour"),
    pytest.param(PROFILE_TEXT.replace('maker = "smmc-bench"', 'maker = "smmc-b\udce9nch"').encode("utf-8", "surrogateescape"),
                 "profile.maker", id="non-utf8-value"),
    pytest.param(PROFILE_TEXT + "\n[limits\n", "not valid TOML", id="not-toml"),
]


def run_cli_in_process(argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """`bench ...` in this process (60 files, no interpreter start each): its exit code and stderr.
    A file that loads would start a run: that is a failure of the case, not a run to sit through."""
    import smmc_bench.cli.run
    from smmc_bench.cli import main

    def no_run(*args, **kwargs):
        raise AssertionError("the malformed file was accepted: the suite was about to run")

    monkeypatch.setattr(smmc_bench.cli.run.pytest, "main", no_run)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _write_case(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("content, key", BENCH_CASES)
def test_malformed_bench_file_exits_2_naming_file_and_key(tmp_path, capsys, monkeypatch, content, key):
    bench_file = _write_case(tmp_path / "bench.toml", content)
    code, output = run_cli_in_process(["run", "--bench", str(bench_file)], capsys, monkeypatch)
    assert code == 2, output
    assert str(bench_file) in output and key in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("content, key", PROFILE_CASES)
def test_malformed_profile_exits_2_naming_file_and_key(tmp_path, capsys, monkeypatch, content, key):
    profile = _write_case(tmp_path / "my-meter.toml", content)
    bench_file = _write_case(tmp_path / "bench.toml", REAL_BENCH.replace('"emulated-idis"', f'"{profile}"'))
    code, output = run_cli_in_process(["run", "--bench", str(bench_file)], capsys, monkeypatch)
    assert code == 2, output
    assert str(profile) in output and key in output, output
    assert f"{bench_file}: meter[0].profile" in output, output
    assert "Traceback" not in output


def test_there_are_at_least_60_malformed_files():
    assert len(BENCH_CASES) + len(PROFILE_CASES) >= 60


def test_the_case_bases_are_well_formed(tmp_path):
    """Each malformed file differs from a good one in the key it names: the bases load."""
    for name, text in (("real", REAL_BENCH), ("serial", SERIAL_BENCH), ("emulated", EMULATED_BENCH),
                       ("real-ac", REAL_BENCH + REAL_AC_SOURCE + REAL_LOAD)):
        config = load_bench(write(tmp_path, text, f"{name}.toml"))
        from smmc_bench.station import Station
        Station(config)
    load_profile(str(write(tmp_path, PROFILE_TEXT, "p.toml")))
