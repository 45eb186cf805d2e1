"""The fleet file: the shipped one loads, every service's part is derived, mistakes are named."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet, parse_fleet

SHIPPED = Path(__file__).parents[2] / "configs" / "fleet.toml"


def minimal(**edge: Any) -> dict[str, Any]:
    return {
        "origin": [{"url": "http://127.0.0.1:8080"}],
        "locator": {"url": "http://127.0.0.1:8070"},
        "edge": [
            {"id": "a-1", "region": "a", "url": "http://127.0.0.1:8081", "latitude": 1,
             "longitude": 2, **edge},
        ],
    }  # fmt: skip


def test_the_shipped_fleet_has_three_edges_in_two_regions():
    fleet = load_fleet(SHIPPED)
    assert [e.id for e in fleet.edges] == ["eu-west-1", "eu-west-2", "us-east-1"]
    assert fleet.regions == ("eu-west", "us-east")
    assert [e.listen for e in fleet.edges] == [f"127.0.0.1:{p}" for p in (8081, 8082, 8083)]
    assert fleet.origin_urls == ["http://127.0.0.1:8080"]
    assert fleet.locator.listen == "127.0.0.1:8070"


def test_each_service_reads_the_same_place_for_an_edge():
    fleet = load_fleet(SHIPPED)
    edge = fleet.edge_table("eu-west-2")
    (seen,) = [e for e in fleet.locator_table()["edge"] if e["id"] == "eu-west-2"]
    for key in ("region", "latitude", "longitude", "capacity_bps"):
        assert edge[key] == seen[key]
    assert edge["locator"] == fleet.locator.url and edge["origin"] == fleet.origin_urls
    assert seen["url"] == "http://127.0.0.1:8082"


def test_defaults_listen_on_the_url_port_and_name_the_origin():
    fleet = parse_fleet(minimal(url="https://edge.example"), Path("f.toml"))
    assert fleet.edges[0].listen == "edge.example:443"
    assert fleet.origins[0].id == "origin"
    assert fleet.edges[0].capacity_bps == 1e9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regoin": "x"}, "unknown key 'regoin'"),
        ({"url": "http://127.0.0.1:8081/path"}, "without a path"),
        ({"url": "ftp://x"}, "must be http"),
        ({"url": "http://127.0.0.1:99999"}, "bad port"),
        ({"latitude": 91}, "latitude is -90..90"),
        ({"id": "Bad Id"}, "not a valid id"),
        ({"capacity_bps": 0}, "must be positive"),
        ({"latitude": "north"}, "must be float"),
    ],
)
def test_edge_mistakes_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_fleet(minimal(**change), Path("f.toml"))


def test_missing_parts_and_duplicates_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[locator\]"):
        parse_fleet({"origin": [{"url": "http://h:1"}], "edge": []}, Path("f.toml"))
    with pytest.raises(ConfigError, match="at least one \\[\\[edge\\]\\]"):
        parse_fleet({**minimal(), "edge": []}, Path("f.toml"))
    twice = minimal()
    twice["edge"] = twice["edge"] * 2
    with pytest.raises(ConfigError, match="edge ids must be unique"):
        parse_fleet(twice, Path("f.toml"))
    clash = minimal(url="http://127.0.0.1:8070")
    with pytest.raises(ConfigError, match="listen addresses must be unique"):
        parse_fleet(clash, Path("f.toml"))
    with pytest.raises(ConfigError, match="no edge 'zz'; the edges are a-1"):
        parse_fleet(minimal(), Path("f.toml")).edge("zz")
    with pytest.raises(ConfigError, match="not found"):
        load_fleet(tmp_path / "missing.toml")


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
            st.floats(-90, 90),
            st.floats(-180, 180),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    )
)
def test_every_edge_is_found_by_its_id_with_its_place(edges):
    table = minimal()
    table["edge"] = [
        {"id": i, "region": "r", "url": f"http://127.0.0.1:{9000 + n}", "latitude": lat,
         "longitude": lon}
        for n, (i, lat, lon) in enumerate(edges)
    ]  # fmt: skip
    fleet = parse_fleet(table, Path("f.toml"))
    for i, lat, lon in edges:
        member = fleet.edge(i)
        assert (member.latitude, member.longitude) == (lat, lon)
        assert fleet.edge_table(i)["listen"] == member.listen


def two_tier(**parent: Any) -> dict[str, Any]:
    """Two origins, a parent and two children."""
    table = minimal(parents=["p-1"])
    table["origin"] = [{"id": "o-1", "url": "http://127.0.0.1:8080"},
                       {"id": "o-2", "url": "http://127.0.0.1:8090"}]  # fmt: skip
    table["edge"] += [
        {"id": "a-2", "region": "a", "url": "http://127.0.0.1:8082", "latitude": 1,
         "longitude": 2, "parents": ["p-1"]},
        {"id": "p-1", "region": "a", "url": "http://127.0.0.1:8091", "latitude": 1,
         "longitude": 2, "role": "parent", **parent},
    ]  # fmt: skip
    return table


def test_every_origin_in_order_and_parents_by_their_urls():
    fleet = parse_fleet(two_tier(), Path("f.toml"))
    child = fleet.edge_table("a-2")
    assert child["origin"] == ["http://127.0.0.1:8080", "http://127.0.0.1:8090"]
    assert child["parents"] == ["http://127.0.0.1:8091"]
    assert "parents" not in fleet.edge_table("p-1")
    # A parent-only edge serves edges, not players: the locator does not know it.
    assert [e["id"] for e in fleet.locator_table()["edge"]] == ["a-1", "a-2"]
    assert fleet.locator_table()["origin"] == child["origin"]


def test_the_fleet_file_part_loads_into_edge_and_locator_settings(tmp_path):
    from edge.settings import load_settings as edge_settings
    from locator.settings import load_settings as locator_settings

    path = tmp_path / "fleet.toml"
    path.write_text(FLEET_TOML)
    edge = edge_settings(fleet=path, edge_id="a-1", environ={})
    assert edge.origins == ("http://127.0.0.1:8080", "http://127.0.0.1:8090")
    assert edge.parents == ("http://127.0.0.1:8091",)
    keys = {"CADENZA_TOKEN_KEYS": "k1:0123456789abcdef"}
    locator = locator_settings(fleet=path, environ=keys)
    assert locator.origins == edge.origins and [e.id for e in locator.edges] == ["a-1"]


FLEET_TOML = """
[[origin]]
id = "o-1"
url = "http://127.0.0.1:8080"
[[origin]]
id = "o-2"
url = "http://127.0.0.1:8090"
[locator]
url = "http://127.0.0.1:8070"
[[edge]]
id = "a-1"
region = "a"
url = "http://127.0.0.1:8081"
latitude = 1
longitude = 2
parents = ["p-1"]
[[edge]]
id = "p-1"
region = "a"
url = "http://127.0.0.1:8091"
latitude = 1
longitude = 2
role = "parent"
"""


@pytest.mark.parametrize(
    ("parent", "message"),
    [
        ({"parents": ["p-1"]}, "'p-1' names itself as its parent"),
        ({"parents": ["a-1"]}, "parents form a cycle: a-1 -> p-1 -> a-1"),
        ({"parents": ["zz"]}, "names parent 'zz', which is no edge of this file"),
        ({"parents": "a-1"}, "parents is a list of edge ids"),
        ({"parents": ["a-2", "a-2"]}, "parents must be unique"),
        ({"role": "shield"}, "role must be one of 'edge', 'parent'"),
    ],
)
def test_parent_mistakes_are_named(parent, message):
    with pytest.raises(ConfigError, match=message):
        parse_fleet(two_tier(**parent), Path("f.toml"))


def test_a_fleet_of_parents_only_has_no_edge_for_players():
    table = minimal(role="parent")
    with pytest.raises(ConfigError, match="players need at least one"):
        parse_fleet(table, Path("f.toml"))


@given(st.lists(st.lists(st.integers(0, 5), max_size=3, unique=True), min_size=1, max_size=6))
def test_parents_are_accepted_exactly_when_they_form_no_cycle(graph):
    """Any graph of parents: refused when some edge reaches itself, else every edge loads."""
    n = len(graph)
    ups = [[p for p in parents if p < n] for parents in graph]
    table = minimal()
    table["edge"] = [
        {"id": f"e-{i}", "region": "r", "url": f"http://127.0.0.1:{9000 + i}", "latitude": 0,
         "longitude": 0, "parents": [f"e-{p}" for p in ps]}
        for i, ps in enumerate(ups)
    ]  # fmt: skip

    def reaches_itself(start: int) -> bool:
        seen, todo = set(), list(ups[start])
        while todo:  # at most n distinct nodes are pushed on
            i = todo.pop()
            if i == start:
                return True
            if i not in seen:
                seen.add(i)
                todo.extend(ups[i])
        return False

    if any(reaches_itself(i) for i in range(n)):
        with pytest.raises(ConfigError, match="parent"):
            parse_fleet(table, Path("f.toml"))
    else:
        fleet = parse_fleet(table, Path("f.toml"))
        for i, ps in enumerate(ups):
            assert fleet.edge(f"e-{i}").parents == tuple(f"e-{p}" for p in ps)
