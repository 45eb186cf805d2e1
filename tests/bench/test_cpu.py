"""CPU time of process trees from /proc, and the machine's description."""

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from bench.cpu import cpu_seconds, cpu_ticks, descendants, machine, parent_of, stat_fields

# A command name with spaces and parentheses, as proc(5) allows.
STAT = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 150 30 5 2 20 0 1 0 100 0 0"


def test_stat_lines_are_read_after_the_command_name():
    assert stat_fields(STAT)[:2] == ["S", "7"]
    assert parent_of(STAT) == 7
    assert cpu_ticks(STAT) == 150 + 30 + 5 + 2


def test_descendants_follow_the_parent_table():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 20: 1, 30: 99}
    assert descendants(10, parents) == {10, 11, 12}
    assert descendants(1, parents) == {1, 10, 11, 12, 20}
    assert descendants(77, parents) == {77}


@given(st.dictionaries(st.integers(1, 30), st.integers(0, 30)), st.integers(0, 30))
def test_descendants_are_closed_under_children_and_hold_the_root(parents, root):
    found = descendants(root, parents)
    assert root in found
    assert all(pid in found for pid, parent in parents.items() if parent in found)


def test_a_child_processes_cpu_counts_for_its_parents_tree():
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", burn + "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        before = cpu_seconds([os.getpid()])
        deadline_rounds = 200
        while cpu_seconds([child.pid]) < 0.25 and deadline_rounds:  # bounded: about 10 s
            deadline_rounds -= 1
            subprocess.run(["sleep", "0.05"], check=True)
        assert cpu_seconds([os.getpid()]) - before >= 0.25
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_the_machine_is_described():
    about = machine()
    assert about["cores"] == os.cpu_count()
    assert isinstance(about["cpu"], str) and about["cpu"]
    assert len(about["load_average"]) == 3  # type: ignore[arg-type]
