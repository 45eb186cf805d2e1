"""What the locator knows between requests: edge health and load, rights answers, what a play
session is. Pure state, the clock passed in; the app's tasks feed it.
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cadenza.status import EdgeStatus
from locator.decision import EdgeView, Rankings
from locator.health import EdgeHealth


@dataclass
class Fleet:
    """Every configured edge with its health, as decision inputs.

    ``views`` is rebuilt by ``refresh`` after each poll round, not per decision.
    """

    configured: Sequence[EdgeView]
    health: dict[str, EdgeHealth] = field(default_factory=dict)
    views: tuple[EdgeView, ...] = ()
    rankings: Rankings = field(default_factory=dict)  # of these views, for choose_edges

    def __post_init__(self) -> None:
        for edge in self.configured:
            self.health.setdefault(edge.id, EdgeHealth())
        self.refresh()

    def refresh(self) -> None:
        """The edges as the decision sees them now: health, draining, load from the last poll."""
        views = tuple(self._view(edge) for edge in self.configured)
        if views != self.views:
            self.views = views
            self.rankings = {}

    def _view(self, edge: EdgeView) -> EdgeView:
        health = self.health[edge.id]
        status: EdgeStatus | None = health.status
        if status is None:
            return replace(edge, healthy=health.healthy, draining=health.draining)
        return replace(
            edge,
            healthy=health.healthy,
            draining=health.draining,
            active_requests=status.active_requests,
            egress_bps=status.egress_bps,
        )

    def healthy_ids(self) -> set[str]:
        return {e.id for e in self.configured if self.health[e.id].healthy}

    def snapshot(self) -> dict[str, Any]:
        """Every edge's health as JSON, for the workers that do not poll (``restore``)."""
        return {edge_id: health.to_json() for edge_id, health in self.health.items()}

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Take the health of ``snapshot``'s configured edges, then refresh the views."""
        for edge_id, doc in snapshot.items():
            if edge_id in self.health:
                self.health[edge_id] = EdgeHealth.from_json(doc)
        self.refresh()


@dataclass(frozen=True)
class Rights:
    """The origin's answer for a track in a territory: ``status`` is what a play gets."""

    status: int  # 200 licensed, 404 unknown track, 410 withdrawn, 451 not here
    reason: str


@dataclass
class RightsCache:
    """Rights answers kept ``ttl`` seconds; a catalog event about a track forgets its answers."""

    ttl: float
    limit: int = 100_000
    _answers: OrderedDict[tuple[str, str], tuple[float, Rights]] = field(
        default_factory=OrderedDict
    )

    def get(self, track_id: str, territory: str, now: float) -> Rights | None:
        found = self._answers.get((track_id, territory))
        if found is None or found[0] <= now:
            return None
        return found[1]

    def put(self, track_id: str, territory: str, rights: Rights, now: float) -> None:
        self._answers[track_id, territory] = (now + self.ttl, rights)
        self._answers.move_to_end((track_id, territory))
        while len(self._answers) > self.limit:
            self._answers.popitem(last=False)

    def forget(self, track_ids: Iterable[str]) -> None:
        gone = set(track_ids)
        for key in [k for k in self._answers if k[0] in gone]:
            del self._answers[key]


def rights_from_origin(status: int, doc: dict[str, object] | None) -> Rights:
    """The origin's ``GET /v1/tracks/{id}/rights`` answer as what a play gets."""
    if status == 404:
        return Rights(404, "unknown track")
    if doc is None or status != 200:
        raise ValueError(f"the origin answered {status}")
    if doc.get("licensed") is True:
        return Rights(200, str(doc.get("reason", "licensed")))
    reason = str(doc.get("reason", "not_licensed"))
    return Rights(410 if reason == "withdrawn" else 451, reason)


@dataclass(frozen=True)
class Session:
    """One play: what its steering manifest is computed from on every reload."""

    track_id: str
    pathways: tuple[str, ...]  # edge ids in the multivariant playlist, in the play's order
    expires: float  # seconds since the epoch


def pathway_priority(session: Session, healthy: set[str], draining: set[str]) -> list[str]:
    """The session's pathways that can serve now, in the play's order; draining ones last.

    A dead edge is dropped at once; when none can serve, the play's order stands (the player
    keeps trying rather than being told that nothing exists).
    """
    serving = [p for p in session.pathways if p in healthy and p not in draining]
    tail = [p for p in session.pathways if p in healthy and p in draining]
    return serving + tail or list(session.pathways)
