"""Whether an edge is up, judged from its status polls with hysteresis against flapping.

Pure: the poller passes each outcome and the time; this module keeps the state. An edge is
unknown, not up, until its first successful poll, and up from then: a locator that restarts
sends players to its edges as soon as it has heard from them once. After that it takes
``fall`` consecutive failures (2) to mark an edge down and ``rise`` consecutive successes (2)
to mark it up again, so one lost poll never moves players and an edge that comes back must
stay back. Polling every half second, players leave a dead edge within about a second.

The document an edge's ``GET /status`` returns is ``cadenza.status.EdgeStatus``.
"""

from collections.abc import Mapping
from typing import Any, Literal

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

    def to_json(self) -> dict[str, Any]:
        """The whole state, for the locator's other workers (``from_json`` reads it back)."""
        return {
            "fall": self.fall, "rise": self.rise, "state": self.state,
            "status": None if self.status is None else self.status.to_json(),
            "transitions": self.transitions, "last_change": self.last_change,
            "last_success": self.last_success, "streak": self._streak,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "EdgeHealth":
        """The health that ``to_json`` wrote (by this same program: not checked again)."""
        health = cls(fall=doc["fall"], rise=doc["rise"])
        health.state = doc["state"]
        status = doc["status"]
        health.status = None if status is None else EdgeStatus.from_json(status)
        health.transitions = doc["transitions"]
        health.last_change = doc["last_change"]
        health.last_success = doc["last_success"]
        health._streak = doc["streak"]
        return health

    def _change(self, state: State, now: float) -> bool:
        self.state = state
        self._streak = 0
        self.transitions += 1
        self.last_change = now
        return True
