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
    assert fleet.origin_url == "http://127.0.0.1:8080"
    assert fleet.locator.listen == "127.0.0.1:8070"


def test_each_service_reads_the_same_place_for_an_edge():
    fleet = load_fleet(SHIPPED)
    edge = fleet.edge_table("eu-west-2")
    (seen,) = [e for e in fleet.locator_table()["edge"] if e["id"] == "eu-west-2"]
    for key in ("region", "latitude", "longitude", "capacity_bps"):
        assert edge[key] == seen[key]
    assert edge["locator"] == fleet.locator.url and edge["origin"] == fleet.origin_url
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
