"""Child processes that do not outlive their parent (Linux's parent-death signal)."""

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1
# Loaded once in the parent: a child between fork and exec only makes the call.
_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(sig))
