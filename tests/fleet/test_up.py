"""``cadenza fleet up|status|down`` end to end: a whole fleet on loopback, as real processes.

Every test writes a fleet file with free ports into its own folder and, whatever happens, kills
every process that ``up`` recorded (their process groups) before it ends.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.catalog import MasterSpec, write_master
from bench.processes import free_port
from cadenza.errors import ConfigError
from fleet.up import port_free, probe

# The command as operators run it, in the fleet's folder (``python -m`` would put that folder,
# with its "origin" data folder, before Cadenza's packages).
CADENZA = str(Path(sys.executable).parent / "cadenza")
TIMEOUT = 240  # one command, at most
EDGES = (("eu-west-1", "eu-west", 48.86, 2.35), ("eu-west-2", "eu-west", 50.11, 8.68),
         ("us-east-1", "us-east", 38.90, -77.04))  # fmt: skip


def write_fleet(folder: Path, **edge_extra: dict[str, Any]) -> Path:
    """A fleet file of free loopback ports; ``edge_extra`` changes an edge's keys."""
    tables: list[tuple[str, dict[str, Any]]] = [
        ("[[origin]]", {"id": "origin-1", "url": _url(), "data_dir": str(folder / "origin")}),
        ("[locator]", {"url": _url()}),
    ]
    for n, (edge_id, region, lat, lon) in enumerate(EDGES):
        edge = {
            "id": edge_id, "region": region, "url": _url(), "latitude": lat, "longitude": lon,
            "cache_dir": str(folder / edge_id),
            "workers": 2 if n == 1 else 1,  # one edge with workers, as on a real host
        }  # fmt: skip
        tables.append(("[[edge]]", {**edge, **edge_extra.get(edge_id, {})}))
    path = folder / "fleet.toml"
    path.write_text(
        "".join(
            header + "\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
            for header, keys in tables
        )
    )
    return path


def _url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def fleet(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    return subprocess.run(
        [CADENZA, "fleet", *args, "--state", str(folder / "state")],
        capture_output=True, text=True, cwd=folder, env=env, timeout=TIMEOUT,
    )  # fmt: skip


def recorded(folder: Path) -> list[dict[str, Any]]:
    state = folder / "state" / "state.json"
    return json.loads(state.read_text())["services"] if state.exists() else []


def same_process(pid: int, start_time: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0] != "Z" and int(fields[19]) == start_time


def session_members(session: int) -> list[int]:
    """Running processes of a session (a service and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def ours(folder: Path) -> list[int]:
    """Running processes with this test's fleet file on their command line (and workers)."""
    needle = str(folder / "fleet.toml").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The test's folder; whatever ``up`` started is killed at the end, recorded or not."""
    yield tmp_path
    groups = {s["pid"] for s in recorded(tmp_path) if same_process(s["pid"], s["start_time"])}
    groups.update(os.getpgid(pid) for pid in ours(tmp_path) if _exists(pid))
    groups.discard(os.getpgid(0))  # never the test's own
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def _exists(pid: int) -> bool:
    try:
        os.getpgid(pid)
    except ProcessLookupError:
        return False
    return True


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_a_fleet_comes_up_serves_a_play_and_goes_down_leaving_no_process(folder: Path):
    fleet_file = write_fleet(folder)
    done = fleet(folder, "up", "--fleet", str(fleet_file), "--json")
    assert done.returncode == 0, done.stderr
    up = json.loads(done.stdout)
    services = {s["name"]: s for s in up["services"]}
    assert list(services) == ["origin-1", "eu-west-1", "eu-west-2", "us-east-1", "locator"]
    pids = {(s["pid"], s["start_time"]) for s in recorded(folder)}
    assert len(pids) == 5 and all(same_process(*p) for p in pids)
    api_key = up["label"]["api_key"]
    assert api_key and api_key.startswith("cdz_")

    # Secrets: private files, never printed (but the label key, once), never in a log.
    state = folder / "state"
    for name in ("secrets.env", "label.env"):
        assert (state / name).stat().st_mode & 0o777 == 0o600
    secrets = [line.partition("=")[2] for line in (state / "secrets.env").read_text().split()]
    token_secret = secrets[0].partition(":")[2] if ":" in secrets[0] else secrets[1]

    status = fleet(folder, "status", "--json")
    assert status.returncode == 0, status.stdout
    rows = json.loads(status.stdout)["services"]
    assert all(r["ok"] and r["running"] for r in rows)
    assert {r["region"] for r in rows if r["kind"] == "edge"} == {"eu-west", "us-east"}
    assert "sees 3 of 3 edges up" in rows[-1]["detail"]
    code, body = get(services["eu-west-2"]["url"] + "/status")
    assert code == 200 and json.loads(body)["region"] == "eu-west"

    # A play through the locator: ingest one short track, ask for it, fetch its playlist.
    master = write_master(folder / "masters" / "one.flac", MasterSpec(seconds=7.0, seed=3))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env["CADENZA_API_KEY"] = (state / "label.env").read_text().strip().partition("=")[2]
    ingest = subprocess.run(
        [sys.executable, "-m", "cadenza", "ingest", str(master), "--origin",
         services["origin-1"]["url"], "--label", "lab", "--json"],
        capture_output=True, text=True, env=env, timeout=TIMEOUT,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    track = json.loads(ingest.stdout)["tracks"][0]["track_id"]
    locator = services["locator"]["url"]
    code, playlist = get(f"{locator}/v1/play/{track}?lat=48.86&lon=2.35&territory=FR")
    assert code == 200 and playlist.startswith(b"#EXTM3U")
    variant = next(line for line in playlist.decode().splitlines() if line.startswith("http"))
    assert variant.startswith(tuple(s["url"] for s in services.values() if s["kind"] == "edge"))
    code, media = get(variant)
    assert code == 200 and b"#EXTINF" in media

    # Up again is refused while it runs; down stops every process, and again is a no-op.
    again = fleet(folder, "up", "--fleet", str(fleet_file))
    assert again.returncode == 2 and "up already" in again.stderr
    down = fleet(folder, "down", "--json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout) == {
        "stopped": ["locator", "us-east-1", "eu-west-2", "eu-west-1", "origin-1"], "left": [],
    }  # fmt: skip
    assert not any(same_process(*p) or session_members(p[0]) for p in pids)
    assert ours(folder) == []
    assert fleet(folder, "down").returncode == 0
    after = fleet(folder, "status", "--fleet", str(fleet_file))
    assert after.returncode == 1 and after.stdout.count("DOWN") == 5

    # Up again: the same keys and label, the track still there; the key is not shown again.
    keys = (state / "secrets.env").read_text()
    restart = fleet(folder, "up", "--fleet", str(fleet_file), "--json")
    assert restart.returncode == 0, restart.stderr
    assert json.loads(restart.stdout)["label"]["api_key"] is None
    assert api_key not in restart.stdout and (state / "secrets.env").read_text() == keys
    code, _ = get(f"{locator}/v1/play/{track}?lat=48.86&lon=2.35&territory=FR")
    assert code == 200
    assert fleet(folder, "down").returncode == 0
    assert ours(folder) == []

    everything = done.stdout + done.stderr + status.stdout + down.stdout
    everything += "".join(p.read_text() for p in (state / "logs").iterdir())
    assert token_secret not in everything
    assert done.stdout.count(api_key) == 1


def test_a_taken_port_is_refused_before_anything_starts(folder: Path):
    fleet_file = write_fleet(folder)
    locator = tomllib.loads(fleet_file.read_text())["locator"]["url"]
    port = int(locator.rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert not port_free("127.0.0.1", port)
        done = fleet(folder, "up", "--fleet", str(fleet_file))
    assert done.returncode == 2
    assert f"port taken: locator (127.0.0.1:{port})" in done.stderr
    assert recorded(folder) == []
    assert not (folder / "origin").exists()  # not even the label was made


def test_a_service_that_cannot_start_stops_the_others_and_is_named(folder: Path):
    (folder / "not-a-folder").write_text("a file where a cache folder should be")
    fleet_file = write_fleet(folder, **{"us-east-1": {"cache_dir": str(folder / "not-a-folder")}})
    done = fleet(folder, "up", "--fleet", str(fleet_file))
    assert done.returncode != 0
    assert "us-east-1" in done.stderr and "us-east-1.log" in done.stderr
    assert recorded(folder) == []  # nothing left to stop
    assert "listening on" in (folder / "state" / "logs" / "origin-1.log").read_text()
    assert ours(folder) == []  # the origin and the other edges were stopped


async def test_a_probe_of_a_service_that_answers_garbage_or_nothing_is_a_reason_not_a_crash():
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ok, doc, reason = await asyncio.to_thread(probe, f"http://127.0.0.1:{port}/status")
        assert (ok, doc) == (False, None) and reason
    finally:
        server.close()
        await server.wait_closed()
    ok, _, reason = await asyncio.to_thread(probe, f"http://127.0.0.1:{port}/status")
    assert not ok and "refused" in reason


def test_status_names_a_missing_fleet_file(folder: Path):
    done = fleet(folder, "status", "--fleet", str(folder / "nowhere.toml"))
    assert done.returncode == 2 and "nowhere.toml" in done.stderr


def test_an_unknown_listen_host_is_a_configuration_error():
    with pytest.raises(ConfigError, match="no such host"):
        port_free("no-such-host.invalid", 8080)
