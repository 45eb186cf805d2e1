"""Where a play goes: an ordered list of edges, the first to play from, the others to fail over to.

Pure: the caller passes the edges as last polled, the client's location and the plays it has
assigned to each edge; nothing here reads a clock or the network.

**Rank.** Only healthy edges that are not draining are candidates. Each gets a score, lower is
better::

    score = (distance_km + NEAR_KM) * (1 + load)        load = egress_bps / capacity_bps

``distance_km`` is the great-circle distance to the client, or 0 for an edge of the client's
region (the coverage zone or the nearest region centre that named the region chose those edges
to serve it). ``NEAR_KM`` makes edges of one metro area compare by load alone, and an edge at
half its capacity counts as half as far again. Overloaded edges (load >= 1) rank after every
edge under capacity, whatever their distance.

**Primary.** The *nearest group* is the edges of the first rank's tier (under capacity, or all
overloaded) whose score is within ``GROUP_FACTOR`` of the best. Within it each track picks its
edge by consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent
Hashing with Bounded Loads", SODA 2018): walk clockwise from the track's hash on a ring of
virtual nodes, as many per edge as its capacity earns, and take the first edge whose assigned
plays are under its bound ``ceil(load_factor * (plays + 1) * weight / group_weight)``, where
``plays`` sums the group's assigned plays and ``weight`` is the edge's virtual nodes. A track's
plays thus concentrate on one edge, whose cache keeps its segments hot, and no edge takes more
than ``load_factor`` times its share of new plays.

**Fallbacks.** Next comes another edge of the primary's region: the next one under its bound on
the track's ring walk, so that the players of a track fail over together, to the edge that new
plays of the track go to once the primary is gone (or the best-ranked one, when the group holds
no other). Then the best-ranked edge of another region, both fallbacks from the primary's tier;
then every other candidate by rank.
"""

import hashlib
import math
from bisect import bisect_right
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, repeat

from locator.geo import EARTH_RADIUS_KM, Location, unit_vector

NEAR_KM = 50.0
GROUP_FACTOR = 1.5
DEFAULT_LOAD_FACTOR = 1.25  # the paper's c: a bound of 1.25 times the average
VNODES_PER_GBPS = 64  # virtual nodes per Gb/s of capacity, within the two limits below
MIN_VNODES = 8
MAX_VNODES = 1024
RING_CACHE_SIZE = 256  # distinct nearest groups remembered
MAX_RANKINGS = 4096  # client places whose ranking a caller's ``rankings`` keeps
# Overloaded edges score this much more, so that they rank after every other one; the load in
# their score is capped so that the sum keeps its precision.
OVERLOADED = 1e12
MAX_LOAD = 1e3
DIAMETER_KM = 2 * EARTH_RADIUS_KM
HALF_KM = math.pi * EARTH_RADIUS_KM  # to the antipode


# The candidates ranked for a client place (latitude, longitude, region): (score, id, index).
Rankings = dict[tuple[float, float, str | None], list[tuple[float, str, int]]]


@dataclass(frozen=True, slots=True)
class EdgeView:
    """An edge as the locator last saw it: where it is, how to reach it, how busy it is."""

    id: str
    region: str
    url: str
    lat: float
    lon: float
    capacity_bps: float
    healthy: bool = True
    draining: bool = False
    active_requests: int = 0
    egress_bps: float = 0.0
    # Derived once per view, so that a decision does no trigonometry on the edges' side.
    load: float = field(init=False, repr=False, compare=False)
    vnodes: int = field(init=False, repr=False, compare=False)
    _xyz: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    _penalty: float = field(init=False, repr=False, compare=False)
    _tier: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"edge {self.id!r}: ({self.lat}, {self.lon}) is not a position")
        capacity, egress = self.capacity_bps, max(0.0, self.egress_bps)
        load = egress / capacity if capacity > 0 else math.inf
        object.__setattr__(self, "load", load)
        object.__setattr__(self, "vnodes", virtual_nodes(capacity))
        object.__setattr__(self, "_xyz", unit_vector(self.lat, self.lon))
        object.__setattr__(self, "_penalty", 1 + min(load, MAX_LOAD))
        object.__setattr__(self, "_tier", OVERLOADED if load >= 1 else 0.0)


def virtual_nodes(capacity_bps: float) -> int:
    """An edge's weight on the ring: proportional to its capacity, within limits."""
    if not capacity_bps > 0:
        return MIN_VNODES
    scaled = round(VNODES_PER_GBPS * min(capacity_bps, 1e15) / 1e9)
    return max(MIN_VNODES, min(MAX_VNODES, scaled))


def key_hash(key: str) -> int:
    """A stable 64-bit hash: the same on every host and run (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class Ring:
    """A consistent-hash ring: each member's virtual nodes at stable points of a 64-bit circle.

    A member's points depend only on its id and its number of virtual nodes, so removing one
    member moves only the keys that were on it. Build a ring once per set, with ``ring_for``.
    """

    __slots__ = ("_owners", "_points", "weights")

    def __init__(self, members: Collection[tuple[str, int]]) -> None:
        """``members``: (id, virtual nodes) pairs with distinct ids."""
        self.weights = dict(sorted(members))
        if len(self.weights) != len(members):
            raise ValueError("ring members must have distinct ids")
        points = sorted(
            (key_hash(f"{member}#{i}"), member) for member, n in members for i in range(n)
        )
        self._points = [point for point, _ in points]
        self._owners = [owner for _, owner in points]

    def walk(self, key: int) -> Iterator[str]:
        """Every member once, in the order met walking clockwise from ``key``."""
        owners, count = self._owners, len(self.weights)
        start = bisect_right(self._points, key)
        seen: set[str] = set()
        for i in chain(range(start, len(owners)), range(start)):
            owner = owners[i]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == count:
                    return


@lru_cache(maxsize=RING_CACHE_SIZE)
def ring_for(members: frozenset[tuple[str, int]]) -> Ring:
    """The ring of ``members``, (id, virtual nodes) pairs, built once per set."""
    return Ring(members)


def choose_edges(
    edges: Sequence[EdgeView],
    client: Location,
    track_id: str,
    assigned: Mapping[str, int],
    *,
    load_factor: float = DEFAULT_LOAD_FACTOR,
    rankings: Rankings | None = None,
) -> tuple[EdgeView, ...]:
    """The edges to play ``track_id`` from, primary first; empty when none is available.

    ``assigned`` counts the plays currently on each edge, by id: what the locator sent there
    lately (a decayed or windowed count of its own decisions) or the edges' active requests.
    An edge missing from it has none, and only the nearest group's counts matter.
    ``load_factor`` (>= 1) bounds an edge's share of the group's plays, relative to its weight.
    ``rankings``: the edges ranked for client places seen before, kept by the caller for these
    ``edges`` exactly (empty it when they change); ranking is most of a decision's time, and
    clients come from few places (GeoIP cities, coverage zones).
    ValueError if two edges of the nearest group have the same id.
    """
    if not load_factor >= 1:
        raise ValueError(f"load factor {load_factor!r} must be at least 1")
    if rankings is None:
        ranked = _rank(edges, client)
    else:
        place = (client.lat, client.lon, client.region)
        found = rankings.get(place)
        if found is None:
            found = _rank(edges, client)
            if len(rankings) < MAX_RANKINGS:
                rankings[place] = found
        ranked = found
    if not ranked:
        return ()
    best = ranked[0][0]
    limit = best + (best % OVERLOADED) * (GROUP_FACTOR - 1)  # the same tier, within the factor
    group = [edges[i] for score, _, i in ranked if score <= limit]
    if len(group) == 1:
        primary, same_region = group[0], None
    else:
        primary, same_region = _hash_pick(group, track_id, assigned, load_factor)
    return _order(primary, same_region, [edges[i] for _, _, i in ranked])


def _rank(edges: Sequence[EdgeView], client: Location) -> list[tuple[float, str, int]]:
    """(score, id, index) of the candidates, best first; overloaded ones score OVERLOADED more."""
    cx, cy, cz = unit_vector(client.lat, client.lon)
    region, asin, sqrt = client.region, math.asin, math.sqrt
    ranked = []
    for i, edge in enumerate(edges):
        if not edge.healthy or edge.draining:
            continue
        if edge.region == region:
            distance = 0.0
        else:  # the haversine formula, with hav(angle) = chord ** 2 / 4 between unit vectors
            x, y, z = edge._xyz
            dx, dy, dz = x - cx, y - cy, z - cz
            h = 0.25 * (dx * dx + dy * dy + dz * dz)
            distance = DIAMETER_KM * asin(sqrt(h)) if h < 1.0 else HALF_KM
        ranked.append(((distance + NEAR_KM) * edge._penalty + edge._tier, edge.id, i))
    ranked.sort()
    return ranked


def _hash_pick(
    group: list[EdgeView], track_id: str, assigned: Mapping[str, int], load_factor: float
) -> tuple[EdgeView, EdgeView | None]:
    """The primary and the next edge of its region on the track's walk, both under bound."""
    by_id = {edge.id: edge for edge in group}
    if len(by_id) != len(group):
        raise ValueError(f"edge ids must be distinct: {sorted(e.id for e in group)}")
    ring = ring_for(frozenset([(edge.id, edge.vnodes) for edge in group]))
    weights = ring.weights
    plays = sum(map(assigned.get, by_id, repeat(0)))
    share = load_factor * (plays + 1) / sum(weights.values())
    key = key_hash(track_id)
    primary: EdgeView | None = None
    for edge_id in ring.walk(key):
        if assigned.get(edge_id, 0) >= math.ceil(share * weights[edge_id]):
            continue
        edge = by_id[edge_id]
        if primary is None:
            primary = edge
            if not any(e.region == edge.region and e is not edge for e in group):
                return primary, None
        elif edge.region == primary.region:
            return primary, edge
    if primary is None:  # the bounds add up to more than the plays unless some count is < 0
        primary = by_id[next(ring.walk(key))]
    return primary, None


def _order(
    primary: EdgeView, same_region: EdgeView | None, ranked: list[EdgeView]
) -> tuple[EdgeView, ...]:
    tier = primary._tier  # fallbacks come from the primary's tier, the best one
    if same_region is None:
        same_region = next(
            (
                e
                for e in ranked
                if e.region == primary.region and e is not primary and e._tier == tier
            ),
            None,
        )
    chosen = [primary] if same_region is None else [primary, same_region]
    other_region = next((e for e in ranked if e.region != primary.region and e._tier == tier), None)
    if other_region is not None:
        chosen.append(other_region)
    rest = [
        e for e in ranked if e is not primary and e is not same_region and e is not other_region
    ]
    return (*chosen, *rest)
