"""What ``cadenza fleet up`` starts, in which order, with which command line and environment.

Pure: a fleet file in, a plan out. The origin comes first (edges and the locator ask it at
start-up), then the edges, then the locator (which polls the edges and would otherwise start by
marking them all down). Every service reads its own part of the same fleet file, so the plan
passes nothing but the file, the service's id and the secrets its kind needs.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cadenza.errors import ConfigError
from cadenza.fleet import Fleet
from cadenza.settings import ENV_TOKEN_KEYS, parse_listen

ENV_OPERATOR_KEY = "CADENZA_OPERATOR_KEY"  # the origin's admin API key (origin.settings)
ENV_API_KEY = "CADENZA_API_KEY"  # a label's key, as ``cadenza ingest`` reads it
LABEL = "lab"  # the label ``fleet up`` creates, as ``make demo`` creates one

Kind = Literal["origin", "edge", "locator"]
# What each kind of service is asked for its health; 200 means it serves.
HEALTH_PATHS: Mapping[Kind, str] = {
    "origin": "/v1/status",
    "edge": "/status",
    "locator": "/v1/edges",
}
# The secrets each kind of service gets; no service sees another's.
SECRETS_OF: Mapping[Kind, tuple[str, ...]] = {
    "origin": (ENV_OPERATOR_KEY,),
    "edge": (ENV_TOKEN_KEYS,),
    "locator": (ENV_TOKEN_KEYS,),
}


@dataclass(frozen=True)
class Launch:
    """One service of the fleet as a process on this machine."""

    name: str  # unique in the fleet: the origin's id, the edge's id, "locator"
    kind: Kind
    url: str
    listen: str
    command: tuple[str, ...]
    region: str | None = None

    @property
    def health_url(self) -> str:
        return self.url + HEALTH_PATHS[self.kind]

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen, self.name)


@dataclass(frozen=True)
class Plan:
    launches: tuple[Launch, ...]  # in start order; stopped in the reverse order
    label_command: tuple[str, ...]  # creates the lab label in the first origin's data

    @property
    def origins(self) -> tuple[Launch, ...]:
        return tuple(x for x in self.launches if x.kind == "origin")

    @property
    def locator(self) -> Launch:
        return self.launches[-1]

    @property
    def edges(self) -> tuple[Launch, ...]:
        return tuple(x for x in self.launches if x.kind == "edge")


def plan_fleet(fleet: Fleet, fleet_file: Path, cadenza: tuple[str, ...]) -> Plan:
    """The processes of ``fleet``; ``cadenza`` is how to run the command (argv prefix)."""
    file = str(fleet_file)
    several = len(fleet.origins) > 1
    launches: list[Launch] = []
    for origin in fleet.origins:
        # Replicas share a catalog server; with one origin, its id need not be said.
        pick = ("--id", origin.id) if several else ()
        command = (*cadenza, "origin", "--fleet", file, *pick)
        launches.append(Launch(origin.id, "origin", origin.url, origin.listen, command))
    for edge in fleet.edges:
        command = (*cadenza, "edge", "--fleet", file, "--id", edge.id)
        launches.append(Launch(edge.id, "edge", edge.url, edge.listen, command, edge.region))
    locator = fleet.locator
    command = (*cadenza, "locator", "--fleet", file)
    launches.append(Launch("locator", "locator", locator.url, locator.listen, command))
    _check_names_and_ports(launches, file)
    first = fleet.origins[0]
    label = [*cadenza, "origin", "add-label", LABEL]
    if first.config is not None:
        label += ["--config", str(first.config)]
    if first.data_dir is not None:
        label += ["--data-dir", str(first.data_dir)]
    return Plan(tuple(launches), tuple(label))


def service_environment(
    launch: Launch, base: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """``base`` without any CADENZA_ variable, plus the secrets ``launch``'s kind needs.

    The fleet file and the state folder's secrets are the whole configuration: a CADENZA_
    variable left in the operator's shell (a listen address, another fleet's keys) would
    otherwise reach every service at once.
    """
    env = {k: v for k, v in base.items() if not k.startswith("CADENZA_")}
    for name in SECRETS_OF[launch.kind]:
        if name in secrets:
            env[name] = secrets[name]
    return env


def _check_names_and_ports(launches: list[Launch], where: str) -> None:
    names = [x.name for x in launches]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"{where}: {name!r} names two services; fleet up needs a unique id for each "
                "(and no edge called 'locator')"
            )
    for launch in launches:
        _, port = launch.address
        if port == 0:
            raise ConfigError(
                f"{where}: {launch.name} listens on port 0; fleet up needs the ports that the "
                "urls name, so that every service can find the others"
            )
