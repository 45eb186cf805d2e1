"""Whether an edge is up, judged from its status polls with hysteresis against flapping.

Pure: the poller passes each outcome and the time; this module keeps the state. An edge is
unknown, not up, until its first successful poll, and up from then: a locator that restarts
sends players to its edges as soon as it has heard from them once. After that it takes
``fall`` consecutive failures (2) to mark an edge down and ``rise`` consecutive successes (2)
to mark it up again, so one lost poll never moves players and an edge that comes back must
stay back. Polling every half second, players leave a dead edge within about a second.

The document an edge's ``GET /status`` returns is ``cadenza.status.EdgeStatus``.
"""

from typing import Literal

from cadenza.status import EdgeStatus

State = Literal["unknown", "up", "down"]
DEFAULT_FALL = 2
DEFAULT_RISE = 2


class EdgeHealth:
    """The hysteresis of one edge; ``healthy`` says whether to send players to it."""

    def __init__(self, *, fall: int = DEFAULT_FALL, rise: int = DEFAULT_RISE) -> None:
        if fall < 1 or rise < 1:
            raise ValueError(f"fall {fall} and rise {rise} must be at least 1 poll")
        self.fall, self.rise = fall, rise
        self.state: State = "unknown"
        self.status: EdgeStatus | None = None  # from the last successful poll
        self.transitions = 0  # changes of state, leaving "unknown" included
        self.last_change: float | None = None
        self.last_success: float | None = None
        self._streak = 0  # consecutive outcomes that disagree with the state

    @property
    def healthy(self) -> bool:
        return self.state == "up"

    @property
    def draining(self) -> bool:
        """Whether the edge said it is draining: it serves its players but wants no new ones."""
        return self.status is not None and self.status.draining

    def observe_success(self, status: EdgeStatus, now: float) -> bool:
        """A poll that returned ``status``; True if the edge came up."""
        self.status = status
        self.last_success = now
        if self.state == "up":
            self._streak = 0
            return False
        self._streak += 1
        if self.state == "unknown" or self._streak >= self.rise:
            return self._change("up", now)
        return False

    def observe_failure(self, now: float) -> bool:
        """A poll that failed (refused, timed out, bad status); True if the edge went down."""
        if self.state == "down":
            self._streak = 0
            return False
        self._streak += 1
        if self.state == "unknown" or self._streak >= self.fall:
            return self._change("down", now)
        return False

    def _change(self, state: State, now: float) -> bool:
        self.state = state
        self._streak = 0
        self.transitions += 1
        self.last_change = now
        return True
