"""The pure plan of ``cadenza fleet up``: order, command lines, environment."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet, parse_fleet
from cadenza.settings import ENV_TOKEN_KEYS
from encoder.cli import ENV_API_KEY as INGEST_API_KEY
from fleet.plan import ENV_API_KEY, ENV_OPERATOR_KEY, plan_fleet, service_environment
from origin.settings import ENV_OPERATOR_KEY as ORIGIN_OPERATOR_KEY

CADENZA = ("python", "-m", "cadenza")
FILE = Path("/srv/fleet.toml")
SECRETS = {ENV_TOKEN_KEYS: "k1:token-secret-0123456789", ENV_OPERATOR_KEY: "operator"}


def fleet_table(edges: int = 3, origins: int = 1, **edge_extra: Any) -> dict[str, Any]:
    return {
        "origin": [
            {
                "id": f"origin-{n}",
                "url": f"http://127.0.0.1:{8080 + 100 * n}",
                "data_dir": f"data/origin-{n}",
                "config": "configs/origin.toml",
            }
            for n in range(origins)
        ],
        "locator": {"url": "http://127.0.0.1:8070"},
        "edge": [
            {
                "id": f"edge-{n}",
                "region": ("eu", "us")[n % 2],
                "latitude": 1.0,
                "longitude": 2.0,
                "url": f"http://127.0.0.1:{9000 + n}",
                **edge_extra,
            }
            for n in range(edges)
        ],
    }


def test_the_shipped_fleet_starts_the_origin_then_the_edges_then_the_locator():
    fleet = load_fleet(Path("configs/fleet.toml"))
    plan = plan_fleet(fleet, FILE, CADENZA)
    assert [x.name for x in plan.launches] == [
        "origin-1", "eu-west-1", "eu-west-2", "us-east-1", "locator",
    ]  # fmt: skip
    assert plan.origins[0].command == (*CADENZA, "origin", "--fleet", str(FILE))
    assert plan.edges[1].command == (*CADENZA, "edge", "--fleet", str(FILE), "--id", "eu-west-2")
    assert plan.locator.command == (*CADENZA, "locator", "--fleet", str(FILE))
    assert {x.region for x in plan.edges} == {"eu-west", "us-east"}
    assert plan.origins[0].health_url == "http://127.0.0.1:8080/v1/status"
    assert plan.edges[0].health_url == "http://127.0.0.1:8081/status"
    assert plan.locator.health_url == "http://127.0.0.1:8070/v1/edges"
    assert plan.label_command == (
        *CADENZA, "origin", "add-label", "lab", "--config", "configs/origin.toml",
        "--data-dir", "data/origin",
    )  # fmt: skip


def test_several_origins_are_each_named_by_id():
    plan = plan_fleet(parse_fleet(fleet_table(origins=2), FILE), FILE, CADENZA)
    assert [x.command[-2:] for x in plan.origins] == [("--id", "origin-0"), ("--id", "origin-1")]
    assert "--data-dir" in plan.label_command and "data/origin-0" in plan.label_command


def test_an_origin_without_config_or_data_dir_creates_its_label_with_the_defaults():
    table = fleet_table()
    del table["origin"][0]["config"], table["origin"][0]["data_dir"]
    plan = plan_fleet(parse_fleet(table, FILE), FILE, CADENZA)
    assert plan.label_command == (*CADENZA, "origin", "add-label", "lab")


def test_port_zero_is_refused_since_the_others_could_not_find_the_service():
    table = fleet_table()
    table["edge"][1]["listen"] = "127.0.0.1:0"
    with pytest.raises(ConfigError, match="edge-1 listens on port 0"):
        plan_fleet(parse_fleet(table, FILE), FILE, CADENZA)


def test_an_edge_called_like_an_origin_or_the_locator_is_refused():
    table = fleet_table()
    table["edge"][0]["id"] = "locator"
    with pytest.raises(ConfigError, match="'locator' names two services"):
        plan_fleet(parse_fleet(table, FILE), FILE, CADENZA)
    table["edge"][0]["id"] = "origin-0"
    with pytest.raises(ConfigError, match="'origin-0' names two services"):
        plan_fleet(parse_fleet(table, FILE), FILE, CADENZA)


def test_each_service_gets_only_its_own_secrets_and_no_cadenza_variable_of_the_shell():
    plan = plan_fleet(parse_fleet(fleet_table(), FILE), FILE, CADENZA)
    shell = {"PATH": "/bin", "CADENZA_LISTEN": "0.0.0.0:1", ENV_TOKEN_KEYS: "k9:other-fleets"}
    origin = service_environment(plan.origins[0], shell, SECRETS)
    assert origin == {"PATH": "/bin", ENV_OPERATOR_KEY: "operator"}
    for launch in (*plan.edges, plan.locator):
        env = service_environment(launch, shell, SECRETS)
        assert env == {"PATH": "/bin", ENV_TOKEN_KEYS: SECRETS[ENV_TOKEN_KEYS]}


def test_the_variable_names_are_the_services_own():
    assert ENV_OPERATOR_KEY == ORIGIN_OPERATOR_KEY
    assert ENV_API_KEY == INGEST_API_KEY


@given(
    edges=st.integers(1, 12),
    origins=st.integers(1, 3),
    shell=st.dictionaries(st.from_regex(r"(CADENZA_)?[A-Z]{1,8}", fullmatch=True), st.text()),
)
def test_any_fleet_starts_every_service_once_origins_first_locator_last(edges, origins, shell):
    plan = plan_fleet(parse_fleet(fleet_table(edges, origins), FILE), FILE, CADENZA)
    kinds = [x.kind for x in plan.launches]
    assert kinds == ["origin"] * origins + ["edge"] * edges + ["locator"]
    assert len({x.name for x in plan.launches}) == len(plan.launches)
    assert len({x.address for x in plan.launches}) == len(plan.launches)
    for launch in plan.launches:
        assert launch.command[: len(CADENZA) + 1] == (*CADENZA, launch.kind)
        assert launch.command.count(str(FILE)) == 1
        env = service_environment(launch, shell, SECRETS)
        own = {k for k in env if k.startswith("CADENZA_")}
        assert own == ({ENV_OPERATOR_KEY} if launch.kind == "origin" else {ENV_TOKEN_KEYS})
        assert {k: v for k, v in env.items() if k not in own} == {
            k: v for k, v in shell.items() if not k.startswith("CADENZA_")
        }
