"""Asking one of several origin replicas: the healthy ones first, in the order configured, and
an idempotent request asked once more of the next replica when the first cannot answer.

``Origins`` is what the edge's fetcher, the locator and both event followers share: the list
of replicas and a passive health view of them (``cadenza.upstreams.Health``), logged once per
change rather than once per request.
"""

import asyncio
import logging
import socket
import time
from collections.abc import Mapping, Sequence

import aiohttp

from cadenza.errors import ConfigError
from cadenza.http import authority
from cadenza.upstreams import DOWN_SECONDS, Health

ATTEMPTS = 2  # the first replica, then one retry on the next


class Origins:
    def __init__(
        self, urls: Sequence[str], logger: logging.Logger, down_seconds: float = DOWN_SECONDS
    ) -> None:
        if not urls:
            raise ValueError("at least one origin URL")
        self.urls = tuple(u.rstrip("/") for u in urls)
        self.health = Health(down_seconds)
        self.logger = logger

    def ordered(self) -> list[str]:
        """The replicas to ask, best first: those not marked down, in the configured order."""
        if len(self.urls) == 1:
            return list(self.urls)
        return self.health.ordered(self.urls, time.time())

    def failed(self, url: str, why: object) -> None:
        if self.health.failed(url, time.time()) and len(self.urls) > 1:
            self.logger.warning("origin %s is failing (%s); asking the others first", url, why)

    def succeeded(self, url: str) -> None:
        if self.health.succeeded(url):
            self.logger.info("origin %s answers again", url)

    async def get(
        self,
        client: aiohttp.ClientSession,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: float,
    ) -> tuple[int, bytes]:
        """Status and body of ``GET {origin}{path}``; a replica that cannot be reached, times
        out or answers 5xx is marked down and the next one asked, once. The last replica's
        5xx is returned as it is; its connection error or timeout is raised."""
        attempts = self.ordered()[:ATTEMPTS]
        for n, url in enumerate(attempts, 1):
            try:
                async with client.get(
                    url + path, params=params, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                self.failed(url, e or type(e).__name__)
                if n == len(attempts):
                    raise
                continue
            if response.status >= 500:
                self.failed(url, f"status {response.status}")
                if n < len(attempts):
                    continue
            else:
                self.succeeded(url)
            return response.status, body
        raise AssertionError("unreachable: the last attempt returns or raises")


def require_any_reachable(urls: Sequence[str], seconds: float, what: str, flag: str) -> None:
    """Wait up to ``seconds`` for one of ``urls``' hosts to take a TCP connection; else a
    ConfigError naming them (a service that would start blind exits 2). 0: not checked."""
    if seconds <= 0:
        return
    deadline = time.monotonic() + seconds
    problems: dict[str, str] = {}
    while True:
        for url in urls:
            try:
                with socket.create_connection(authority(url), timeout=min(1.0, seconds)):
                    return
            except OSError as e:
                problems[url] = e.strerror or type(e).__name__
        if time.monotonic() >= deadline:
            shown = "; ".join(f"{u} ({p})" for u, p in problems.items())
            raise ConfigError(
                f"cannot reach {what} at {shown} for {seconds:g} s: start it first, or fix {flag}"
            )
        time.sleep(0.2)


async def sleep_between_rounds(tried: set[str], origins: Origins, seconds: float) -> None:
    """After every replica failed once, wait before going round again."""
    if tried >= set(origins.urls):
        tried.clear()
        await asyncio.sleep(seconds)
