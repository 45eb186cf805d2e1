"""The state folder of a fleet run by ``cadenza fleet up``: what it started and its secrets.

    state.json     the fleet file, working folder and, per service, pid, start time, url, log
    secrets.env    CADENZA_TOKEN_KEYS and CADENZA_OPERATOR_KEY (mode 0600), kept across runs
    label.env      CADENZA_API_KEY of the lab label (mode 0600)
    logs/NAME.log  each service's stdout and stderr
    lock           held while up or down runs, so that two of them never interleave

Secrets files are written 0600 from the start (never a moment world-readable) and are read,
not regenerated, on the next ``up``, so a restarted fleet keeps its keys and its label.
"""

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from cadenza.errors import ConfigError
from cadenza.settings import ENV_TOKEN_KEYS
from cadenza.tokens import new_secret
from fleet.plan import ENV_OPERATOR_KEY

DEFAULT_FOLDER = Path("data/fleet")
STATE_FILE = "state.json"
SECRETS_FILE = "secrets.env"
LABEL_FILE = "label.env"
MAX_STATE_BYTES = 1 << 20
MAX_ENV_BYTES = 64 << 10


@dataclass(frozen=True)
class Record:
    """A service that ``up`` started: enough to find it again, and only it."""

    name: str
    kind: str
    url: str
    health_url: str
    pid: int
    start_time: int  # clock ticks after boot (/proc/PID/stat field 22): tells a reused pid
    log: str
    region: str | None = None


@dataclass(frozen=True)
class State:
    fleet: str  # the fleet file, absolute
    cwd: str  # the folder its relative paths are read from
    services: tuple[Record, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "State":
        try:
            doc = json.loads(text)
            services = tuple(Record(**s) for s in doc["services"])
            state = cls(str(doc["fleet"]), str(doc["cwd"]), services)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"{where} is damaged ({e}); stop what it started by hand if anything runs, "
                "then remove it"
            ) from None
        if not all(isinstance(s.pid, int) and s.pid > 1 for s in services):
            raise ConfigError(f"{where}: a pid is not a process number; remove the file")
        return state


def new_secrets() -> dict[str, str]:
    """Fresh keys shared by the fleet's services (the edges' and locator's token keys agree)."""
    return {
        ENV_TOKEN_KEYS: f"k1:{new_secret(32)}",
        ENV_OPERATOR_KEY: new_secret(24),
    }


def render_env(values: Mapping[str, str]) -> str:
    """KEY=VALUE lines, readable by systemd's EnvironmentFile and by ``set -a; . FILE``."""
    for key, value in values.items():
        if not key.isidentifier() or any(c in value for c in "\n\r'\"\\$` "):
            raise ConfigError(f"{key}: a secret must be one word of printable characters")
    return "".join(f"{key}={value}\n" for key, value in values.items())


def parse_env(text: str, where: str) -> dict[str, str]:
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{where}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


class StateFolder:
    """The files of one state folder; every read is bounded, every secret written 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.logs = path / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_state(self) -> State | None:
        file = self.path / STATE_FILE
        if not file.exists():
            return None
        return State.from_json(_read_bounded(file, MAX_STATE_BYTES), str(file))

    def write_state(self, state: State) -> None:
        _write_atomic(self.path / STATE_FILE, state.to_json(), 0o644)

    def forget_state(self) -> None:
        (self.path / STATE_FILE).unlink(missing_ok=True)

    def secrets(self) -> dict[str, str]:
        """The fleet's service secrets: those written before, or new ones, saved 0600."""
        file = self.path / SECRETS_FILE
        if file.exists():
            values = parse_env(_read_bounded(file, MAX_ENV_BYTES), str(file))
            missing = {ENV_TOKEN_KEYS, ENV_OPERATOR_KEY} - values.keys()
            if not missing:
                return values
            values = {**new_secrets(), **values}
        else:
            values = new_secrets()
        _write_atomic(file, render_env(values), 0o600)
        return values

    def api_key(self) -> str | None:
        file = self.path / LABEL_FILE
        if not file.exists():
            return None
        return parse_env(_read_bounded(file, MAX_ENV_BYTES), str(file)).get("CADENZA_API_KEY")

    def save_api_key(self, key: str) -> None:
        _write_atomic(self.path / LABEL_FILE, render_env({"CADENZA_API_KEY": key}), 0o600)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock; another ``up`` or ``down`` under way is an error, not a wait."""
        self.logs.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"{self.path}: another 'cadenza fleet up' or 'down' is running on this "
                    "state folder; wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)


def _read_bounded(file: Path, limit: int) -> str:
    with file.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{file} is larger than {limit} bytes; it is not one Cadenza wrote")
    return data.decode("utf-8", errors="replace")


def _write_atomic(file: Path, text: str, mode: int) -> None:
    """Write aside with ``mode`` from creation, then rename over ``file``."""
    file.parent.mkdir(parents=True, exist_ok=True)
    aside = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(aside, file)
