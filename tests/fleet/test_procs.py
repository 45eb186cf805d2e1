"""Processes of a fleet: found again by pid and start time, stopped, and only those."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fleet import procs
from fleet.procs import Stat, members, parse_stat


def test_stat_is_read_after_the_last_parenthesis_of_the_name():
    fields = ["S", "1", "77", "77"] + ["0"] * 15 + ["9876"] + ["0"] * 10
    line = "77 (a) (b c) " + " ".join(fields)
    assert parse_stat(77, line) == Stat(77, "S", 77, 9876)


@given(st.text(st.characters(blacklist_characters="\n\x00"), max_size=15))
def test_any_command_name_parses(name):
    fields = ["R", "1", "5", "6"] + ["0"] * 15 + ["42"]
    assert parse_stat(5, f"5 ({name}) " + " ".join(fields)) == Stat(5, "R", 6, 42)


def test_members_are_the_session_of_the_recorded_leader_or_its_orphans():
    leader, worker = Stat(10, "S", 10, 100), Stat(11, "S", 10, 105)
    other, zombie = Stat(12, "S", 12, 90), Stat(13, "Z", 10, 106)
    assert members(10, 100, [leader, worker, other, zombie]) == [10, 11]
    assert members(10, 100, [worker, other]) == [11]  # the leader died, its worker did not
    assert members(10, 100, [other]) == []


def test_a_reused_pid_is_not_ours():
    stranger, its_child = Stat(10, "S", 10, 500), Stat(11, "S", 10, 501)
    assert members(10, 100, [stranger, its_child]) == []


def test_this_process_is_found_by_its_own_start_time():
    me = procs.read_stat(os.getpid())
    assert me is not None and me.running
    assert procs.is_leader(os.getpid(), me.start_time)
    assert not procs.is_leader(os.getpid(), me.start_time + 1)


WORKERS = textwrap.dedent(
    """
    import os, signal, sys, time
    # a leader and a worker, as an edge runs; the worker outlives a SIGTERM of the leader
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
        sys.exit(0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    time.sleep(120)
    """
)


def test_stop_ends_a_detached_service_and_the_workers_it_left(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(procs, "STOP_SECONDS", 1.0)
    log = tmp_path / "logs" / "svc.log"
    command = [sys.executable, "-c", WORKERS]
    process, start_time = procs.start_detached(command, dict(os.environ), tmp_path, log)
    try:
        assert start_time > 0
        for _ in range(200):  # bounded: at most about 10 s
            if "ready" in log.read_text() and len(procs.running(process.pid, start_time)) == 2:
                break
            procs.time.sleep(0.05)
        found = procs.running(process.pid, start_time)
        assert len(found) == 2 and process.pid in found
        assert os.getsid(process.pid) == process.pid  # a session of its own
        assert procs.stop([(process.pid, start_time)]) == []
        assert procs.running(process.pid, start_time) == []
        assert procs.stop([(process.pid, start_time)]) == []  # again: nothing to do
    finally:
        for pid in procs.running(process.pid, start_time):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_a_process_that_is_not_the_recorded_one_is_never_signalled():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = procs.read_stat(sleeper.pid)
        assert me is not None
        assert procs.stop([(sleeper.pid, me.start_time + 1)]) == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
