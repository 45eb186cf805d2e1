"""Whether a process still runs: what sweeps of a killed process's leftovers rely on."""

import os
import subprocess

from cadenza.process import alive


def test_a_running_process_is_alive_and_a_finished_one_is_not():
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert alive(os.getpid())
    assert alive(1)  # init: not ours to signal, still alive
    assert not alive(finished.pid)
