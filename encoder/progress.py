"""Reads ffmpeg's ``-progress`` output: blocks of ``key=value`` lines ending in ``progress=``.

Pure: feed it bytes as they arrive, get back how many seconds of output have been written.
"""

from dataclasses import dataclass, field


@dataclass
class ProgressReader:
    out_seconds: float = 0.0
    finished: bool = False
    _pending: bytes = field(default=b"", repr=False)

    def feed(self, chunk: bytes) -> bool:
        """Consume ``chunk``; True when a complete progress block was read."""
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        updated = False
        for line in lines:
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key == "out_time_us":
                self.out_seconds = _seconds(value, self.out_seconds)
            elif key == "progress":
                self.finished = value == "end"
                updated = True
        return updated


def _seconds(microseconds: str, previous: float) -> float:
    try:
        return max(0.0, int(microseconds) / 1_000_000)
    except ValueError:  # "N/A" before the first frame
        return previous
