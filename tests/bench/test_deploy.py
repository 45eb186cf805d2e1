"""A deployment on loopback with a parent tier: the edges name the parent and fetch through it."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.deploy import DEFAULT_EDGES, EdgeOptions, deploy, edge_specs, run_edges, run_origin
from cadenza.tokens import TokenClaims, sign


def _metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return response.read().decode()


def test_edges_fetch_their_misses_through_the_parent(tmp_path: Path):
    with deploy(tmp_path / "fleet", DEFAULT_EDGES[:1], EdgeOptions(parents=1)) as fleet:
        (edge,) = fleet.edges.values()
        (parent,) = fleet.parents.values()
        config = (tmp_path / "fleet" / f"edge-{DEFAULT_EDGES[0].id}.toml").read_text()
        assert f'parents = ["{parent.url}"]' in config
        with urllib.request.urlopen(f"{fleet.locator.url}/v1/edges", timeout=10) as response:
            ids = [e["id"] for e in json.loads(response.read())["edges"]]
        assert ids == [DEFAULT_EDGES[0].id]  # players are never sent to the parent
        kid, secret = fleet.env["CADENZA_TOKEN_KEYS"].split(":", 1)
        track = "0123456789abcdef"
        claims = TokenClaims(f"/tracks/{track}/", int(time.time()) + 60, kid, "FR")
        missing = f"{edge.url}/p/{sign(claims, secret.encode())}/tracks/{track}/master.m3u8"
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(missing, timeout=10)
        answer.value.close()
        assert answer.value.code == 404  # no such track: the origin said so, through the parent
        asked = 'cadenza_edge_upstream_fetches_total{kind="parent",result="404"'
        assert asked in _metrics(edge.url)
        assert 'cadenza_edge_origin_fetches_total{result="404"} 1.0' in _metrics(parent.url)


def test_edge_specs_add_cities_to_both_regions_after_the_default_three():
    assert edge_specs(3) == DEFAULT_EDGES
    nine = edge_specs(9)
    assert len({spec.id for spec in nine}) == 9
    assert sum(spec.region == "eu-west" for spec in nine) == 5
    assert len({(spec.latitude, spec.longitude) for spec in nine}) == 9
    with pytest.raises(ValueError, match="from 1 to 12"):
        edge_specs(13)


def test_fleets_follow_each_other_on_one_origin_each_with_its_own_caches(tmp_path: Path):
    with run_origin(tmp_path / "fleet") as origin:
        urls = []
        for n in (1, 2):
            folder = tmp_path / "fleet" / f"run-{n}"
            with run_edges(folder, origin, DEFAULT_EDGES[:n]) as fleet:
                assert fleet.origin is origin.service and len(fleet.edges) == n
                assert (folder / "cache-eu-west-1").is_dir()
                urls.append(fleet.locator.url)
            with pytest.raises(urllib.error.URLError):  # stopped with its block
                urllib.request.urlopen(f"{urls[-1]}/v1/edges", timeout=2)
        assert 'cadenza_origin_requests_total{route="events"' in _metrics(origin.service.url)
