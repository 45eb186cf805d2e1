"""Headless Chromium driven over the Chrome DevTools Protocol, for tests that need a real browser.

Just enough of the protocol to open a page and evaluate JavaScript in it. Chromium runs in its own
process group on a fresh profile; both are gone when the block ends, whatever happened in it.
"""

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiohttp

START_SECONDS = 20.0
COMMAND_SECONDS = 10.0
STOP_SECONDS = 5.0

# Headless as root, and quiet: without the background-networking flags Chromium keeps calling
# home, which a closed network refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class ChromiumFailed(AssertionError):
    """Chromium did not start or stopped answering; the message carries what it printed."""


class Page:
    """One tab, attached through the browser's connection (a flat CDP session)."""

    def __init__(self, browser: "Browser", session_id: str) -> None:
        self._browser = browser
        self.session_id = session_id
        self.console: list[str] = []  # console messages and uncaught exceptions, for failures

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (awaited if it is a promise)."""
        result = await self._browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session_id,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise AssertionError(f"{expression[:80]!r} threw in the page: {text}")
        return result["result"].get("value")

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        """Keep what the page printed or threw."""
        if method == "Runtime.consoleAPICalled":
            words = (str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"console.{params['type']}: {' '.join(words)}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"uncaught: {text}")


class Browser:
    """A connection to Chromium's browser target: commands by id, events to their page."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, stderr: IO[bytes]) -> None:
        self._ws = ws
        self._stderr = stderr
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def open(self, url: str) -> Page:
        """A new tab showing ``url``, its console recorded."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        await self.send("Runtime.enable", session_id=page.session_id)
        await self.send("Page.navigate", {"url": url}, page.session_id)
        return page

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait (bounded) for its result; ChromiumFailed on a protocol error."""
        if self._reader.done():
            raise ChromiumFailed(f"Chromium hung up before {method}\n{_tail(self._stderr)}")
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        answer = asyncio.get_running_loop().create_future()
        self._pending[message["id"]] = answer
        try:
            await self._ws.send_str(json.dumps(message))
            reply = await asyncio.wait_for(answer, COMMAND_SECONDS)
        except (TimeoutError, ConnectionError) as e:
            raise ChromiumFailed(f"{method}: no answer ({e!r})\n{_tail(self._stderr)}") from e
        finally:
            self._pending.pop(message["id"], None)
        if "error" in reply:
            raise ChromiumFailed(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                if "id" in message:
                    answer = self._pending.get(message["id"])
                    if answer is not None and not answer.done():
                        answer.set_result(message)
                elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                    page.on_event(message["method"], message.get("params", {}))
        finally:
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(ConnectionError("the DevTools connection closed"))


@contextlib.asynccontextmanager
async def chromium(binary: str = "chromium") -> AsyncIterator[Browser]:
    """Start headless Chromium on a fresh profile, connected over CDP; stop it when done."""
    path = shutil.which(binary)
    if path is None:
        raise ChromiumFailed(f"{binary} is not installed: run 'make setup' as root")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    scratch = profile / "tmp"  # Chromium's own temporary files go with the profile
    scratch.mkdir()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [path, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            env={**os.environ, "TMPDIR": str(scratch)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own group, so the renderer and helpers go with it
        )
        try:
            endpoint = await _devtools_endpoint(process, profile, stderr)
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(endpoint, max_msg_size=0) as ws,
            ):
                browser = Browser(ws, stderr)
                try:
                    yield browser
                finally:
                    await browser.close()
        finally:
            _stop(process)
            shutil.rmtree(profile, ignore_errors=True)


async def _devtools_endpoint(
    process: "subprocess.Popen[bytes]", profile: Path, stderr: IO[bytes]
) -> str:
    """The browser's websocket URL, from the DevToolsActivePort file that Chromium writes."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChromiumFailed(
                f"Chromium exited with {process.returncode} at start\n{_tail(stderr)}"
            )
        lines = active.read_text().splitlines() if active.exists() else []
        if len(lines) == 2:
            port, path = lines
            return f"ws://127.0.0.1:{port}{path}"
        await asyncio.sleep(0.05)
    raise ChromiumFailed(f"no DevToolsActivePort in {START_SECONDS:.0f} s\n{_tail(stderr)}")


def _tail(stderr: IO[bytes], lines: int = 40) -> str:
    stderr.seek(0)
    text = stderr.read().decode(errors="replace")
    return "Chromium's stderr:\n" + "\n".join(text.splitlines()[-lines:])


def _stop(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to Chromium, which closes its helpers; SIGKILL to any left; bounded."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    deadline = time.monotonic() + STOP_SECONDS
    with contextlib.suppress(ProcessLookupError):  # the group is gone
        while time.monotonic() < deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.poll()
            time.sleep(0.05)  # helpers orphaned by Chromium's exit are reaped by init
        raise ChromiumFailed(f"Chromium's processes outlived {2 * STOP_SECONDS:.0f} s")
