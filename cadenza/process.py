"""Processes: children that do not outlive their parent (Linux's parent-death signal), and
whether a process still runs (to sweep what a killed one left behind)."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
# Loaded once in the parent: a child between fork and exec only makes the call.
_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(sig))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
