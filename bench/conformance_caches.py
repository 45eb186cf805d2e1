"""The processes of ``cadenza bench conformance``: the caches under test, and a bounded launcher.

Every process writes to a log file rather than a pipe (a run lasts a minute and a pipe nobody
reads would stall a chatty process), is found ready by polling its log or port with a deadline,
and is stopped by the caller's ExitStack, SIGTERM first and SIGKILL after a bound.
"""

import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.edge import nginx_scratch

CACHE_LABEL_NGINX = "nginx"
START_SECONDS = 20.0
LISTENING = re.compile(r"[Ll]istening on (http://[\w.\[\]:]+)")


@dataclass(frozen=True)
class Launched:
    name: str
    popen: "subprocess.Popen[bytes]"
    log: Path
    stdout: Path | None = None  # when stdout has a file of its own
    url: str = ""

    def tail(self, chars: int = 500) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.strip()[-chars:]


def launch(
    stack: ExitStack,
    name: str,
    command: list[str | Path],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
) -> Launched:
    """Start ``command`` logging to ``log`` (stdout to a file of its own if given).

    The process is stopped when ``stack`` closes.
    """
    with log.open("wb") as err, stdout.open("wb") if stdout else err as out:
        popen = subprocess.Popen(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
        )
    stack.callback(stop, popen)
    return Launched(name, popen, log, stdout)


def stop(popen: "subprocess.Popen[bytes]") -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=processes.STOP_SECONDS)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=processes.STOP_SECONDS)


def wait_for_url(process: Launched) -> str:
    """The ``http://HOST:PORT`` the process says it listens on, polling its log until a deadline."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        found = LISTENING.search(process.log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.popen.poll() is not None:
            raise processes.ServiceFailed(
                f"{process.name} exited at start ({process.popen.returncode}): {process.tail()}"
            )
        time.sleep(0.05)
    raise processes.ServiceFailed(f"{process.name} did not listen within {START_SECONDS:g} s")


def start_edge(stack: ExitStack, folder: Path, origin: str, workers: int | None) -> Launched:
    """The edge as a generic RFC 9111 cache in front of ``origin``."""
    command: list[str | Path] = [
        sys.executable, "-m", "cadenza", "edge", "--generic", "--allow-unsigned",
        "--origin", origin, "--listen", "127.0.0.1:0", "--cache-dir", folder / "cache",
    ]  # fmt: skip
    if workers is not None:
        command += ["--workers", str(workers)]
    edge = launch(stack, "cadenza edge", command, folder / "edge.log")
    return Launched(edge.name, edge.popen, edge.log, url=wait_for_url(edge))


def nginx_config(directory: Path, port: int, origin: str) -> str:
    """A caching reverse proxy with nginx's defaults: a cache zone and proxy_pass, nothing tuned.

    Only what running unprivileged from a scratch folder needs is set besides (pid, logs and
    temporary paths); as root, workers keep root's identity so they can write there.
    """
    user, temp = nginx_scratch(directory)
    return f"""\
{user}daemon off;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ }}
http {{
    access_log off;
{temp}
    proxy_cache_path {directory / "cache"} keys_zone=cache:10m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {origin};
            proxy_cache cache;
        }}
    }}
}}
"""


def start_nginx(stack: ExitStack, folder: Path, origin: str) -> Launched:
    port = processes.free_port()  # nginx cannot report a port it picked itself
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, port, origin))
    command: list[str | Path] = ["nginx", "-p", folder, "-c", config, "-e", folder / "error.log"]
    nginx = launch(stack, "nginx", command, folder / "nginx.log")
    _wait_for_port(nginx, port)
    return Launched(nginx.name, nginx.popen, folder / "error.log", url=f"http://127.0.0.1:{port}")


def _wait_for_port(process: Launched, port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise processes.ServiceFailed(f"{process.name} exited at start: {process.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise processes.ServiceFailed(f"{process.name} did not listen on 127.0.0.1:{port}")
