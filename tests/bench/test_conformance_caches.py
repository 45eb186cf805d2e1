"""The conformance benchmark's processes: nginx as a default caching proxy, and the launcher."""

import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bench.conformance_caches import launch, nginx_config, start_nginx, wait_for_url
from bench.processes import ServiceFailed
from tests.loopback import serve


def test_nginx_config_is_valid_and_only_a_default_cache(tmp_path: Path):
    config = nginx_config(tmp_path, 8001, "http://127.0.0.1:8002")
    assert "listen 127.0.0.1:8001;" in config
    assert "proxy_pass http://127.0.0.1:8002;" in config
    assert "proxy_cache cache;" in config
    for tuning in ("proxy_cache_valid", "proxy_ignore_headers", "proxy_cache_lock", "upstream"):
        assert tuning not in config
    (tmp_path / "nginx.conf").write_text(config)
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", "nginx.conf", "-e", "/dev/stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


async def test_nginx_caches_what_the_origin_lets_it_and_stops(tmp_path: Path):
    fetches = []

    async def handler(request: web.Request) -> web.Response:
        fetches.append(request.path_qs)
        return web.Response(text="hello", headers={"Cache-Control": "max-age=60"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner, origin = await serve(app)
    try:
        with ExitStack() as stack:
            nginx = start_nginx(stack, tmp_path, origin)
            async with aiohttp.ClientSession() as client:
                for _ in range(2):
                    async with client.get(nginx.url + "/test/x?y=1") as response:
                        assert (response.status, await response.text()) == (200, "hello")
        assert nginx.popen.returncode is not None
    finally:
        await runner.cleanup()
    assert fetches == ["/test/x?y=1"]


def test_the_url_a_process_announces_is_found_and_the_process_stopped(tmp_path: Path):
    announce = "print('x listening on http://127.0.0.1:4321', flush=True)"
    script = f"import time; {announce}; time.sleep(60)"
    with ExitStack() as stack:
        process = launch(stack, "announcer", [sys.executable, "-c", script], tmp_path / "log")
        assert wait_for_url(process) == "http://127.0.0.1:4321"
    assert process.popen.returncode is not None


def test_a_process_that_exits_at_start_is_reported_with_its_output(tmp_path: Path):
    script = "import sys; print('port in use', file=sys.stderr); sys.exit(3)"
    with ExitStack() as stack:
        process = launch(stack, "quitter", [sys.executable, "-c", script], tmp_path / "log")
        with pytest.raises(ServiceFailed, match=r"quitter exited at start \(3\): port in use"):
            wait_for_url(process)


def test_stdout_can_have_a_file_of_its_own(tmp_path: Path):
    script = "import sys; print('{}'); print('note', file=sys.stderr)"
    with ExitStack() as stack:
        process = launch(
            stack, "printer", [sys.executable, "-c", script], tmp_path / "log",
            stdout=tmp_path / "out",
        )  # fmt: skip
        process.popen.wait(timeout=30)
    assert (tmp_path / "out").read_text() == "{}\n"
    assert process.tail() == "note"
