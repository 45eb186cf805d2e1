"""Processes that ``fleet up`` starts detached, found again later by pid and start time only.

A pid alone may name another program by the time ``down`` runs (pids are reused), so every
service is recorded with its start time (``/proc/PID/stat``, field 22) and starts a session of
its own: its workers share the session id, which the kernel never hands out again while any of
them lives. ``down`` signals only processes of a recorded session whose leader is the recorded
process or gone, never a name or a process group it did not make.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_SECONDS = 15.0  # SIGTERM's grace (an edge drains its requests), then SIGKILL
KILL_SECONDS = 5.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str
    session: int
    start_time: int

    @property
    def running(self) -> bool:
        """Zombies and dead processes hold no resources of ours and cannot be signalled away."""
        return self.state not in {"Z", "X", "x"}


def parse_stat(pid: int, text: str) -> Stat:
    """``/proc/PID/stat``; the command name may hold spaces and parentheses, so split after
    its last ')'."""
    rest = text[text.rindex(")") + 2 :].split()
    # Fields are numbered from 1 (pid) and rest starts at field 3 (state).
    return Stat(pid, rest[0], int(rest[6 - 3]), int(rest[22 - 3]))


def read_stat(pid: int) -> Stat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        return parse_stat(pid, text)
    except (ValueError, IndexError):
        return None


def start_detached(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
) -> "tuple[subprocess.Popen[bytes], int]":
    """Start ``command`` in a session of its own, output to ``log``; its pid's start time."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(env), cwd=cwd, start_new_session=True, close_fds=True,
        )  # fmt: skip
    stat = read_stat(process.pid)
    # A process that already ended has no start time to check; 0 makes it "not ours" later.
    return process, stat.start_time if stat else 0


def is_leader(pid: int, start_time: int) -> bool:
    """Whether ``pid`` still runs and is the process that was recorded."""
    stat = read_stat(pid)
    return stat is not None and stat.running and stat.start_time == start_time


def members(pid: int, start_time: int, stats: Iterable[Stat]) -> list[int]:
    """The running processes of the session that recorded process ``pid`` leads.

    If ``pid`` now names a process with another start time, the pid was reused after every
    process of the session ended (the kernel keeps a session id while it has members), so
    none is ours. If ``pid`` is gone, the session's remaining members are its orphans.
    """
    stats = list(stats)
    leader = next((s for s in stats if s.pid == pid), None)
    if leader is not None and leader.start_time != start_time:
        return []
    return [s.pid for s in stats if s.session == pid and s.running and s.start_time >= start_time]


def all_stats() -> list[Stat]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                found.append(stat)
    return found


def running(pid: int, start_time: int) -> list[int]:
    """The processes of a recorded service that still run."""
    return members(pid, start_time, all_stats())


def stop(services: Sequence[tuple[int, int]]) -> list[int]:
    """SIGTERM every recorded service (in the order given), SIGKILL what outlives the grace;
    the pids that still run after both (an empty list when all are gone)."""
    for pid, start_time in services:
        # The leader drains its own workers; orphans of a dead leader get the signal themselves.
        targets = [pid] if is_leader(pid, start_time) else running(pid, start_time)
        for target in targets:
            _signal(target, signal.SIGTERM)
    if _wait_gone(services, STOP_SECONDS):
        return []
    for pid, start_time in services:
        for member in running(pid, start_time):
            _signal(member, signal.SIGKILL)
    _wait_gone(services, KILL_SECONDS)
    return [p for pid, start in services for p in running(pid, start)]


def _wait_gone(services: Sequence[tuple[int, int]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        stats = all_stats()
        if not any(members(pid, start, stats) for pid, start in services):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
