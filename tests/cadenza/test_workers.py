"""Workers that answer for their service: a private socket folder, and asking every other."""

import os
import subprocess
import tempfile
from pathlib import Path

from aiohttp import web

from cadenza import workers


async def test_each_worker_answers_the_others_on_its_socket(tmp_path: Path):
    folder = str(tmp_path)
    apps = []
    for n in range(3):

        async def own(request: web.Request, n: int = n) -> web.Response:
            return web.Response(text=f"worker {n}")

        app = web.Application()
        app.router.add_get(f"{workers.PEER_PREFIX}/own", own)
        apps.append(workers.listening(app, folder, n))
    for listening in apps[:2]:  # the third worker is down (restarting)
        await listening.__aenter__()
    peers = workers.Peers(folder, worker=0, workers=3)
    try:
        assert await peers.ask_all("/own") == [b"worker 1"]
        assert await peers.ask_all("/nothing-here") == []
    finally:
        await peers.close()
        for listening in apps[:2]:
            await listening.__aexit__(None, None, None)


def test_a_service_s_folder_is_its_own_and_dead_services_folders_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    prefix = "cadenza-test-"
    process = subprocess.Popen(["true"])
    process.wait()
    dead = tmp_path / f"{prefix}{process.pid}-abc"
    alive = tmp_path / f"{prefix}{os.getpid()}-xyz"
    other = tmp_path / f"cadenza-other-{process.pid}-abc"
    for folder in (dead, alive, other):
        folder.mkdir()
    made = Path(workers.make_folder(prefix))
    assert made.parent == tmp_path and made.name.startswith(f"{prefix}{os.getpid()}-")
    assert not dead.exists() and alive.exists() and other.exists()
    assert workers.socket_path(str(made), 2) == f"{made}/w2.sock"
