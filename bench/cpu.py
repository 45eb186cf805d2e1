"""CPU time of the fleet's processes and a description of the machine, read from /proc.

The fleet benchmark reports what serving costs: the CPU seconds that origin, edges and locator
(each with the processes it forked) used per hour of audio played. ``/proc/PID/stat`` gives a
process's user and system time in clock ticks, its own and that of the children it waited for.
"""

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(text: str) -> list[str]:
    """The fields of a ``/proc/PID/stat`` line after the command name (which may hold spaces
    and parentheses): field 3 of proc(5) comes first."""
    return text[text.rindex(")") + 2 :].split()


def cpu_ticks(text: str) -> int:
    """utime + stime + cutime + cstime (proc(5) fields 14 to 17) of one stat line."""
    fields = stat_fields(text)
    return sum(int(v) for v in fields[11:15])


def parent_of(text: str) -> int:
    return int(stat_fields(text)[1])


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process below it, from a pid -> parent pid table."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _stats() -> dict[int, str]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text()
            except (OSError, ValueError):
                continue  # it ended meanwhile
    return stats


def cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by ``roots`` and the processes below them (0 without /proc)."""
    if not PROC.is_dir():
        return 0.0
    stats = _stats()
    parents = {pid: parent_of(text) for pid, text in stats.items()}
    pids = set().union(*(descendants(root, parents) for root in roots))
    return sum(cpu_ticks(stats[pid]) for pid in pids if pid in stats) / TICKS


def machine() -> dict[str, object]:
    """Cores, CPU model and load average, for the report: the figures depend on them."""
    model = "unknown"
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cores": os.cpu_count() or 1, "cpu": model, "load_average": [round(x, 2) for x in load]}
