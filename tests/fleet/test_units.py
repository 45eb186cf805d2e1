"""The systemd units of deploy/systemd: valid for systemd itself, hardened, one fleet file."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "deploy" / "systemd"
NAMES = ("cadenza-origin.service", "cadenza-edge@.service", "cadenza-locator.service")
INSTALLED = "/opt/cadenza/bin/cadenza"
# The instances verified: the template with an edge id of configs/fleet.toml.
VERIFIED = ("cadenza-origin.service", "cadenza-edge@eu-west-1.service", "cadenza-locator.service")
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit(name: str) -> str:
    return (UNITS / name).read_text()


def settings(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in unit(name).splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.fixture
def runnable(tmp_path: Path) -> Path:
    """Copies of the units whose ExecStart is this environment's cadenza: systemd-analyze
    verify checks that the program exists."""
    program = Path(sys.executable).parent / "cadenza"
    assert program.is_file(), "cadenza is not installed in this environment (make setup)"
    for name in NAMES:
        (tmp_path / name).write_text(unit(name).replace(INSTALLED, str(program)))
    return tmp_path


@needs_systemd
def test_systemd_analyze_verify_accepts_every_unit_without_a_warning(runnable: Path):
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", *VERIFIED], cwd=runnable, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # unknown keys and bad values are only warnings


@needs_systemd
def test_systemd_analyze_verify_would_catch_a_mistake(runnable: Path):
    name = runnable / "cadenza-locator.service"
    name.write_text(name.read_text().replace("ProtectSystem=strict", "ProtectSystem=strickt"))
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", "cadenza-locator.service"], cwd=runnable,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "protect system value" in done.stderr


@needs_systemd
@pytest.mark.parametrize("name", VERIFIED)
def test_each_unit_is_rated_well_hardened_by_systemd(runnable: Path, name: str):
    done = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--threshold=20", "--no-pager", name],
        cwd=runnable, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert re.search(r"Overall exposure level for \S+: 1\.\d OK", done.stdout)


@pytest.mark.parametrize("name", NAMES)
def test_every_unit_is_hardened_and_restarted(name: str):
    s = settings(name)
    for key, value in {
        "DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
        "Restart": "on-failure", "LimitNOFILE": "65536", "PrivateTmp": "yes",
        "ProtectHome": "yes", "CapabilityBoundingSet": "", "KillMode": "mixed",
    }.items():  # fmt: skip
        assert s.get(key) == [value], (name, key)
    assert s["EnvironmentFile"][0].lstrip("-").startswith("/etc/cadenza/")


def test_the_units_run_each_service_s_part_of_one_fleet_file():
    fleet = "--fleet /etc/cadenza/fleet.toml"
    origin = settings("cadenza-origin.service")
    assert origin["ExecStart"] == [f"{INSTALLED} origin {fleet} --data-dir ${{STATE_DIRECTORY}}"]
    assert origin["StateDirectory"] == ["cadenza-origin"]
    edge = settings("cadenza-edge@.service")
    assert edge["ExecStart"] == [
        f"{INSTALLED} edge {fleet} --id %i --cache-dir ${{CACHE_DIRECTORY}}"
    ]
    assert edge["CacheDirectory"] == ["cadenza-edge-%i"]
    assert edge["EnvironmentFile"] == ["/etc/cadenza/tokens.env"]
    locator = settings("cadenza-locator.service")
    assert locator["ExecStart"] == [f"{INSTALLED} locator {fleet}"]
    assert locator["EnvironmentFile"] == ["/etc/cadenza/tokens.env", "-/etc/cadenza/locator.env"]
    assert locator["StateDirectory"] == ["cadenza-locator"]  # the play log, unless on Redis
    assert locator["Environment"] == [
        "CADENZA_LOCATOR_PLAYS_LOG=sqlite:////var/lib/cadenza-locator/plays.sqlite3"
    ]
