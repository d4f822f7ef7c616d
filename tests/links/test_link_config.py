"""Link tables in bench.toml and the [links] profile section: validation that names the
key, defaults that describe the emulated meter, and the links() marker's selection."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError
from smmc_bench.config import ConfigError, load_bench
from smmc_bench.fixtures.links.cosem_port import HdlcPortSettings
from smmc_bench.profile.links import LINK_FEATURES, LinkProfile
from smmc_bench.profile.meter import KNOWN_FEATURES, load_profile

REPO = Path(__file__).resolve().parents[2]
SECRET = REPO / "fixtures" / "secrets" / "lls-password.txt"


def bench_file(tmp_path: Path, links: str, emulated: bool = False) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(textwrap.dedent(f"""
        [bench]
        station_id = "T"
        [[meter]]
        id = "m"
        profile = "emulated-idis"
        emulated = {str(emulated).lower()}
        """) + textwrap.dedent(links))
    return path


@pytest.mark.parametrize("links, message", [
    ('[[meter.links]]\nkind = "rs485"\nport = "/dev/ttyUSB0"\n', "links[0]: a meter that is not emulated needs "
                                                                   "physical_address"),
    ('[[meter.links]]\nkind = "optical"\nport = "/dev/ttyUSB0"\nmax_info_length = 4096\n',
     "meter[0].links[0].max_info_length: Input should be less than or equal to 2030"),
    ('[meter.link]\nkind = "gateway"\nhost = "h"\nport = 4059\n', "link: a meter that is not emulated needs wport"),
    ('[meter.link]\nkind = "serial"\nport = "rfc2217://"\n', "link: a meter that is not emulated needs port"),
    ('[meter.link]\nkind = "hdlc-tcp"\nhost = "h"\nport = 1\nwindow = 3\n', "meter[0].link.window: Extra inputs"),
    ('[meter.link]\nkind = "rs485"\nport = "p"\nphysical_address = 17\nphysical_from_serial = "1"\n',
     "not both"),
])
def test_bench_file_link_errors_name_the_key(tmp_path, links, message):
    with pytest.raises(ConfigError) as error:
        load_bench(bench_file(tmp_path, links))
    assert message in str(error.value)


def test_a_real_meter_on_every_link_kind_loads(tmp_path):
    config = load_bench(bench_file(tmp_path, """
        [[meter.links]]
        kind = "optical"
        port = "/dev/ttyUSB0"
        [[meter.links]]
        kind = "rs485"
        port = "/dev/ttyUSB1"
        physical_from_serial = "LGZ12345678"
        [[meter.links]]
        kind = "hdlc-tcp"
        host = "192.0.2.20"
        port = 4001
        [[meter.links]]
        kind = "serial"
        name = "remote"
        port = "rfc2217://192.0.2.21:2217"
        [[meter.links]]
        kind = "gateway"
        host = "192.0.2.30"
        port = 4059
        wport = 7
        """))
    links = config.meter[0].all_links
    assert [link.kind for link in links] == ["optical", "rs485", "hdlc-tcp", "serial", "gateway"]
    assert links[1].physical == 6678 and links[4].server_logical == 7
    assert all(link.describe() for link in links)


def test_profile_links_section_defaults_and_validation():
    profile = load_profile("emulated-idis").links
    assert profile == LinkProfile()
    assert set(LINK_FEATURES) <= KNOWN_FEATURES
    # The defaults describe the emulated port (what fixtures/links installs when the model has none).
    port = HdlcPortSettings()
    setup = profile.hdlc.setup
    assert (setup.max_info_field_length_transmit, setup.window_size_transmit, setup.inactivity_time_out) == \
        (port.max_info_field_length_transmit, port.window_size_transmit, port.inactivity_time_out)
    assert all(limit.article for limit in (profile.hdlc.min_info_length, profile.hdlc.no_answer_window,
                                           profile.mode_e.reaction_time))
    with pytest.raises(ValidationError, match="mandatory_objects lists 0.0.1.0.0.255 more than once"):
        LinkProfile(mandatory_objects=[{"class_id": 8, "version": 0, "obis": "0.0.1.0.0.255"}] * 2)
    with pytest.raises(ValidationError, match="not an OBIS code"):
        LinkProfile(programming={"obis": "1.2.3"})
    with pytest.raises(ValidationError, match="regular expression"):
        LinkProfile(mode_e={"ident_pattern": "("})


def test_links_marker_runs_a_test_over_its_kinds_only(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_kinds.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.smmc_aspect(1)
        @pytest.mark.smmc_links("optical", "rs485")
        def test_hdlc_only(meter, usecase):
            assert meter.link.kind in ("optical", "rs485")

        @pytest.mark.smmc_aspect(1)
        @pytest.mark.smmc_links("gateway")
        def test_nowhere(meter, usecase):
            raise AssertionError("there is no gateway on this bench")

        @pytest.mark.smmc_aspect(1)
        def test_everywhere(meter, usecase):
            assert meter.session.is_associated
        """))
    bench = tmp_path / "bench.toml"
    bench.write_text(textwrap.dedent(f"""
        [bench]
        station_id = "T"
        [[meter]]
        id = "m"
        profile = "emulated-idis"
        emulated = true
        [[meter.links]]
        kind = "optical"
        [[meter.links]]
        kind = "tcp"
        [[meter.links]]
        kind = "rs485"
        [meter.security]
        client_sap = 1
        authentication = "low"
        password_file = "{SECRET}"
        """))
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                             f"--rootdir={REPO}", "--smmc-bench", str(bench), "--smmc-run-dir", str(run)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed, 4 deselected" in result.stdout
    record = json.loads((run / "record.json").read_text())
    ran = sorted((t["name"], t["meter"], t["link"]) for t in record["tests"])
    assert ran == [("test_everywhere", "m", "optical"), ("test_everywhere", "m", "rs485"), ("test_everywhere", "m", "tcp"),
                   ("test_hdlc_only", "m", "optical"), ("test_hdlc_only", "m", "rs485")]
    wire = sorted(p.name for p in (run / "traces" / "m-optical").glob("*.wire.txt"))
    assert wire == ["test_everywhere_m-optical_.wire.txt", "test_hdlc_only_m-optical_.wire.txt"]
    text = (run / "traces" / "m-optical" / wire[0]).read_text()
    assert "mode E sign-on request" in text and SECRET.read_bytes().strip().hex() not in text
