"""No secret in any log line: redaction as a pure function, then the origin, an edge and the
locator as real processes, driven to log all they can, with every line of their output searched
for the tokens, token secrets and API keys they were given or handed out."""

import asyncio
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from bench.stub_origin import create_app as create_stub_origin
from cadenza import log
from cadenza.tokens import TokenClaims, sign
from tests.loopback import serve
from tests.processes import Service, cadenza, start_service

TOKEN_CHARS = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1
)


@given(TOKEN_CHARS, st.sampled_from(["/", "'", '"', " ", "\\x01"]))
def test_a_path_token_is_redacted_wherever_it_ends(token, end):
    line = f"b'GET https://edge.example/p/{token}{end}tracks HTTP/1.1'"
    assert log.redact(line) == f"b'GET https://edge.example/p/[redacted]{end}tracks HTTP/1.1'"


@given(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=8))
def test_bearer_credentials_and_label_api_keys_are_redacted(key):
    assert key not in log.redact(f"b'Authorization: Bearer {key}\\x01'")
    assert key not in log.redact(f"api key cdz_{key} refused")
    assert key not in log.redact(f"Authorization: Bearer <{key}")


def test_a_placeholder_in_a_help_text_is_kept():
    assert log.redact("send Authorization: Bearer <api key>") == (
        "send Authorization: Bearer <api key>"
    )


def test_known_secrets_are_redacted_and_ordinary_text_kept():
    log.hide([b"token-key-secret-0123", "op"])  # too short a secret is not one
    assert log.redact("keys: token-key-secret-0123") == "keys: [redacted]"
    assert log.redact("operator said stop") == "operator said stop"
    assert log.redact("GET /tracks/0123456789abcdef/master.m3u8") == (
        "GET /tracks/0123456789abcdef/master.m3u8"
    )


TRACK = "0123456789abcdef"
SEGMENT = f"/tracks/{TRACK}/v0/aac_96/seg_00001.m4s"


class Output:
    """Everything a service prints, read as it comes (a full pipe would block the service)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.lines: list[str] = []
        self.readers = [
            threading.Thread(target=self.lines.extend, args=(stream,), daemon=True)
            for stream in (service.process.stdout, service.process.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        if self.service.process.poll() is None:
            self.service.process.terminate()
        try:
            self.service.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.service.process.kill()
            self.service.process.wait(timeout=20)
        for reader in self.readers:
            reader.join(timeout=10)
        self.service.stop()


async def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _malformed(secret_path: str, api_key: str) -> list[bytes]:
    """Requests aiohttp refuses while parsing, logging the line it choked on."""
    return [
        f"GET {secret_path}\x01 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        f"GET {secret_path} HTTP/1.1\r\nHost: x\r\nNot A Header\r\n\r\n".encode(),
        f"GET {secret_path} HTTP/1.1\r\nAuthorization: Bearer {api_key}\x01\r\n\r\n".encode(),
        f"PUT /v1/x HTTP/1.1\r\nAuthorization: Bearer {api_key}\r\n"
        "Content-Length: z\r\n\r\n".encode(),
    ]


async def test_no_service_logs_a_token_a_token_secret_or_an_api_key(tmp_path: Path):
    token_secret = "tks-" + secrets.token_hex(16)
    operator_key = "opk-" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(CADENZA_TOKEN_KEYS=f"k1:{token_secret}", CADENZA_OPERATOR_KEY=operator_key)
    data_dir = tmp_path / "origin"
    added = await asyncio.to_thread(cadenza, "origin", "add-label", "lbl", "--data-dir", data_dir)
    assert added.returncode == 0, added.stderr
    api_key = added.stdout.strip()
    wrong_key = "cdz_" + secrets.token_urlsafe(32)
    now = int(time.time())
    tokens = [
        sign(TokenClaims(f"/tracks/{TRACK}/", now + 3600, "k1", "FR"), token_secret.encode()),
        sign(TokenClaims(f"/tracks/{TRACK}/", now - 3600, "k1", "FR"), token_secret.encode()),
        sign(TokenClaims("/tracks/fedcba9876543210/", now + 3600, "k1", "FR"), b"x" * 32),
    ]
    stub_runner, stub = await serve(create_stub_origin(2000, 0))
    outputs: list[Output] = []
    try:
        origin = Output(await asyncio.to_thread(
            start_service, "-vv", "origin", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
            env=env,
        ))  # fmt: skip
        outputs.append(origin)
        edge = Output(await asyncio.to_thread(
            start_service, "-vv", "edge", "--listen", "127.0.0.1:0", "--origin", stub,
            "--workers", "2", "--cache-dir", tmp_path / "cache", env=env,
        ))  # fmt: skip
        outputs.append(edge)
        config = tmp_path / "locator.toml"
        config.write_text(
            f'origin = "{stub}"\n[[edge]]\nid = "e1"\nregion = "eu"\nurl = "{edge.service.url}"\n'
            "latitude = 48.8\nlongitude = 2.3\n"
        )
        locator = Output(await asyncio.to_thread(
            start_service, "-vv", "locator", "--config", config, "--listen", "127.0.0.1:0",
            env=env,
        ))  # fmt: skip
        outputs.append(locator)
        async with aiohttp.ClientSession() as client:
            # The locator hands out signed URLs: their tokens are secrets too.
            play = f"{locator.service.url}/v1/play/{TRACK}?lat=48.8&lon=2.3&territory=FR"
            deadline = time.monotonic() + 30
            while True:  # until the locator has seen the edge up
                async with client.get(play) as response:
                    playlist = await response.text()
                if response.status == 200:
                    break
                assert response.status == 503 and time.monotonic() < deadline, playlist
                await asyncio.sleep(0.2)
            handed_out = re.findall(r"/p/([^/]+)/", playlist)
            assert handed_out
            tokens += handed_out
            steer = re.search(r'SERVER-URI="([^"]+)"', playlist)
            assert steer is not None
            async with client.get(steer.group(1) + "?_HLS_pathway=e1") as response:
                assert response.status == 200
            for token in tokens:  # good, expired, forged: 200s, 403s, 404s, all logged
                for path in (SEGMENT, f"/tracks/{TRACK}/master.m3u8", "/nothing"):
                    async with client.get(f"{edge.service.url}/p/{token}{path}") as response:
                        await response.read()
            for key in (api_key, wrong_key, operator_key):
                auth = {"Authorization": f"Bearer {key}", "X-Cadenza-Label": "other"}
                for method, path in (
                    ("GET", "/v1/labels/me"),
                    ("PUT", f"/v1/tracks/{TRACK}/versions/v1"),
                    ("POST", "/v1/admin/takedown"),
                ):
                    url = origin.service.url + path
                    async with client.request(method, url, headers=auth, data=b"{") as response:
                        assert 400 <= response.status < 500
        for output in outputs:
            # Not an object in memory, which the edge's lean lane would answer itself.
            uncached = f"/p/{tokens[0]}/tracks/{TRACK}/v0/aac_96/seg_09999.m4s"
            for request in _malformed(uncached, api_key):
                answer = await _raw(output.service.url, request)
                assert answer.startswith(b"HTTP/1.") and b" 400 " in answer[:20], answer
            for request in _malformed(f"/v1/play/{urllib.parse.quote(wrong_key)}", wrong_key):
                await _raw(output.service.url, request)
    finally:
        for output in outputs:
            await asyncio.to_thread(output.stop)
        await stub_runner.cleanup()
    printed = {output.service.url: output.lines for output in outputs}
    every_line = [line for lines in printed.values() for line in lines]
    for secret in [token_secret, operator_key, api_key, wrong_key, *tokens]:
        leaks = [line for line in every_line if secret in line]
        assert not leaks, leaks[:3]
    # The services did log: access lines, parse errors with their tracebacks, redactions.
    for lines in printed.values():
        text = "".join(lines)
        assert "Error handling request" in text and "[redacted]" in text, text[-3000:]
    assert sum('"signed":true' in line for line in printed[edge.service.url]) >= len(tokens)
