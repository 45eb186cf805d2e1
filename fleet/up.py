"""``cadenza fleet up|down|status``: a whole fleet as background processes on one machine.

``up`` starts the plan's services in order, each waited for (its health URL answers 200)
within a deadline, then waits until the locator sees every edge up; if anything fails, it
stops what it started and says why, with the end of the service's log. ``down`` stops only
what ``up`` recorded. ``status`` asks every service of the fleet, started here or not.
"""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza import log
from cadenza.errors import CadenzaError, ConfigError
from cadenza.fleet import load_fleet
from fleet import procs
from fleet.plan import LABEL, Launch, Plan, plan_fleet, service_environment
from fleet.state import STATE_FILE, Record, State, StateFolder

# -P: services run in the operator's folder, whose own folders (a data folder named "origin")
# must not shadow Cadenza's packages, as ``python -m`` would let them.
CADENZA = (sys.executable, "-P", "-m", "cadenza")
START_SECONDS = 60.0  # per group of services (the origin, the edges, the locator)
LABEL_SECONDS = 60.0
PROBE_SECONDS = 2.0
POLL_SECONDS = 0.1
MAX_BODY = 1 << 20
LOG_TAIL_LINES = 15


class ServiceFailed(CadenzaError):
    """A service did not come up; the message carries the end of its log."""


@dataclass(frozen=True)
class UpResult:
    state: StateFolder
    services: tuple[Record, ...]
    api_key: str | None  # the lab label's key, when this run created it (shown once)
    label_note: str  # where the label's key is, or why there is none


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    kind: str
    url: str
    pid: int | None  # None: not started by ``fleet up`` on this machine
    running: bool | None
    healthy: bool
    detail: str = ""  # why it is not healthy, or what the locator sees
    region: str | None = None
    hit_ratio: float | None = None

    @property
    def ok(self) -> bool:
        return self.healthy and self.running is not False


def up(fleet_file: Path, state_dir: Path, cwd: Path, environ: Mapping[str, str]) -> UpResult:
    fleet_file = fleet_file.resolve()
    plan = plan_fleet(load_fleet(fleet_file), fleet_file, CADENZA)
    folder = StateFolder(state_dir)
    with folder.locked():
        _refuse_if_running(folder)
        taken = [x for x in plan.launches if not port_free(*x.address)]
        if taken:
            names = ", ".join(f"{x.name} ({x.listen})" for x in taken)
            raise ConfigError(
                f"port taken: {names}; stop what listens there, or change the urls in {fleet_file}"
            )
        secrets = folder.secrets()
        log.hide(secrets.values())
        api_key, note = _label(plan, folder, cwd, environ)
        started: list[tuple[Record, subprocess.Popen[bytes]]] = []
        try:
            for group in (plan.origins, plan.edges, (plan.locator,)):
                for launch in group:
                    env = service_environment(launch, environ, secrets)
                    env["PYTHONUNBUFFERED"] = "1"
                    started.append(_start(launch, env, cwd, folder))
                    folder.write_state(State(str(fleet_file), str(cwd), _records(started)))
                _until_healthy([s for s in started if s[0].name in {x.name for x in group}])
            _until_edges_up(plan, started)
        except BaseException:
            procs.stop([(r.pid, r.start_time) for r, _ in reversed(started)])
            _reap(started)
            folder.forget_state()
            raise
        return UpResult(folder, _records(started), api_key, note)


def down(state_dir: Path) -> tuple[list[str], list[int]]:
    """Stop what ``up`` recorded: the names stopped and any pid that outlived SIGKILL."""
    folder = StateFolder(state_dir)
    if not (folder.path / STATE_FILE).exists():
        return [], []
    with folder.locked():
        state = folder.read_state()
        if state is None:
            return [], []
        ordered = list(reversed(state.services))  # the locator first, the origin last
        left = procs.stop([(r.pid, r.start_time) for r in ordered])
        if not left:
            folder.forget_state()
        return [r.name for r in ordered], left


def status(state_dir: Path, fleet_file: Path | None) -> list[ServiceStatus]:
    """Every service: from the fleet file (or, without one, what ``up`` recorded)."""
    folder = StateFolder(state_dir)
    state = folder.read_state()
    records = {r.name: r for r in state.services} if state else {}
    launches: list[Launch | Record]
    if fleet_file is not None:  # a missing or bad file is named by load_fleet
        launches = list(plan_fleet(load_fleet(fleet_file), fleet_file, CADENZA).launches)
    elif state is not None and Path(state.fleet).is_file():
        recorded = Path(state.fleet)
        launches = list(plan_fleet(load_fleet(recorded), recorded, CADENZA).launches)
    elif state is not None:  # the fleet file is gone: what up started is still known
        launches = list(state.services)
    else:
        raise ConfigError(f"no fleet: name it with --fleet FILE (nothing recorded in {state_dir})")
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda x: _status_of(x, records.get(x.name)), launches))


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (with SO_REUSEADDR, as aiohttp does)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(f"listen address {host}:{port}: no such host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def probe(url: str) -> tuple[bool, Any, str]:
    """GET ``url``: (answered 200, its JSON document or None, what went wrong)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as response:
            body = response.read(MAX_BODY)
    except urllib.error.HTTPError as e:
        return False, None, f"HTTP {e.code}"
    except (OSError, ValueError, http.client.HTTPException) as e:  # refused, timeout, garbage
        reason = getattr(e, "reason", e)
        return False, None, str(reason) or type(e).__name__
    try:
        return True, json.loads(body), ""
    except ValueError:
        return True, None, ""


def _refuse_if_running(folder: StateFolder) -> None:
    state = folder.read_state()
    if state is None:
        return
    alive = [r.name for r in state.services if procs.running(r.pid, r.start_time)]
    if alive:
        raise ConfigError(
            f"the fleet of {folder.path} is up already ({', '.join(alive)} running); "
            f"'cadenza fleet down --state {folder.path}' stops it"
        )
    folder.forget_state()  # a machine restarted, or everything was killed: nothing to stop


def _label(
    plan: Plan, folder: StateFolder, cwd: Path, environ: Mapping[str, str]
) -> tuple[str | None, str]:
    """Create the lab label before the origin runs (as ``make demo`` does); its key is shown
    once and kept in the state folder."""
    key_file = folder.path / "label.env"
    if folder.api_key():
        return None, f"the key of label {LABEL!r} is in {key_file}"
    env = {k: v for k, v in environ.items() if not k.startswith("CADENZA_")}
    done = subprocess.run(
        plan.label_command, capture_output=True, text=True, env=env, cwd=cwd,
        timeout=LABEL_SECONDS,
    )  # fmt: skip
    if done.returncode != 0:
        if "exists already" in done.stderr:
            return None, (
                f"label {LABEL!r} exists in the origin's data already; its key was shown when "
                "it was created"
            )
        raise ServiceFailed(f"cannot create label {LABEL!r}: {done.stderr.strip()[-1000:]}")
    key = done.stdout.strip()
    folder.save_api_key(key)
    log.hide([key])
    return key, f"also in {key_file}, mode 0600"


def _start(
    launch: Launch, env: dict[str, str], cwd: Path, folder: StateFolder
) -> "tuple[Record, subprocess.Popen[bytes]]":
    log_file = folder.log_path(launch.name)
    process, start_time = procs.start_detached(launch.command, env, cwd, log_file)
    record = Record(
        name=launch.name, kind=launch.kind, url=launch.url, health_url=launch.health_url,
        pid=process.pid, start_time=start_time, log=str(log_file), region=launch.region,
    )  # fmt: skip
    return record, process


def _until_healthy(group: "Sequence[tuple[Record, subprocess.Popen[bytes]]]") -> None:
    waiting = list(group)
    deadline = time.monotonic() + START_SECONDS
    while waiting:
        for record, process in list(waiting):
            _check_alive(record, process)
            if probe(record.health_url)[0]:
                waiting.remove((record, process))
        if waiting and time.monotonic() >= deadline:
            names = ", ".join(r.name for r, _ in waiting)
            late = f"{names} did not answer within {START_SECONDS:.0f} s; "
            raise ServiceFailed(late + _tail(waiting[0][0]))
        if waiting:
            time.sleep(POLL_SECONDS)


def _until_edges_up(
    plan: Plan, started: "Sequence[tuple[Record, subprocess.Popen[bytes]]]"
) -> None:
    """The fleet is up when its locator has seen every edge answer its status."""
    want = {x.name for x in plan.edges}
    deadline = time.monotonic() + START_SECONDS
    seen: set[str] = set()
    while time.monotonic() < deadline:
        for record, process in started:
            _check_alive(record, process)
        ok, doc, _ = probe(plan.locator.health_url)
        if ok and isinstance(doc, dict):
            seen = {e.get("id") for e in doc.get("edges", []) if e.get("state") == "up"}
            if want <= seen:
                return
        time.sleep(POLL_SECONDS)
    missing = ", ".join(sorted(want - seen))
    raise ServiceFailed(
        f"the locator did not see every edge up within {START_SECONDS:.0f} s (missing: "
        f"{missing}); its log: {_log_of(started, 'locator')}"
    )


def _log_of(started: "Sequence[tuple[Record, subprocess.Popen[bytes]]]", name: str) -> str:
    return next((r.log for r, _ in started if r.name == name), "?")


def _check_alive(record: Record, process: "subprocess.Popen[bytes]") -> None:
    code = process.poll()
    if code is None:
        return
    error = ConfigError if code == ConfigError.exit_code else ServiceFailed
    raise error(f"{record.name} exited with code {code}; " + _tail(record))


def _tail(record: Record) -> str:
    """The end of a service's log, for the error that names it (secrets are redacted)."""
    try:
        with open(record.log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
            lines = f.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        lines = []
    text = "\n    ".join(log.redact(line) for line in lines)
    return f"the end of {record.log}:\n    {text}" if text else f"its log: {record.log}"


def _records(started: "Sequence[tuple[Record, subprocess.Popen[bytes]]]") -> tuple[Record, ...]:
    return tuple(r for r, _ in started)


def _reap(started: "Sequence[tuple[Record, subprocess.Popen[bytes]]]") -> None:
    for _, process in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=procs.KILL_SECONDS)


def _status_of(launch: "Launch | Record", record: Record | None) -> ServiceStatus:
    running: bool | None = None
    if record is not None:
        running = bool(procs.running(record.pid, record.start_time))
    ok, doc, error = probe(launch.health_url)
    detail, hit_ratio = error, None
    if ok and isinstance(doc, dict):
        if launch.kind == "edge":
            ratio = doc.get("hit_ratio")
            hit_ratio = float(ratio) if isinstance(ratio, int | float) else None
            ok = doc.get("healthy") is not False
            detail = "" if ok else str(doc.get("state", "unhealthy"))
        elif launch.kind == "locator":
            edges = doc.get("edges", [])
            up_count = sum(1 for e in edges if isinstance(e, dict) and e.get("state") == "up")
            detail = f"sees {up_count} of {len(edges)} edges up"
    return ServiceStatus(
        name=launch.name, kind=launch.kind, url=launch.url,
        pid=record.pid if record else None, running=running, healthy=ok, detail=detail,
        region=launch.region, hit_ratio=hit_ratio,
    )  # fmt: skip
