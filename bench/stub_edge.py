"""Stand-in edges for locator benchmarks: each answers ``/status`` like a healthy, idle edge.

One process serves many of them, one port each, so a locator can be benchmarked against dozens
of configured edges; ``kill -9`` of the process is an edge (or several) dying at once.

    python -m bench.stub_edge [--count N]
"""

import argparse
import asyncio
import signal

import uvloop
from aiohttp import web

STATUS = {
    "healthy": True, "state": "healthy", "region": "bench", "latitude": 0.0, "longitude": 0.0,
    "capacity_bps": 1e9, "active_requests": 0, "egress_bps": 0.0, "hit_ratio": 0.0, "hits": 0,
    "misses": 0, "workers": 1,
    "cache": {"memory": {"bytes": 0, "objects": 0}, "disk": {"bytes": 0, "objects": 0}},
}  # fmt: skip


async def serve(count: int) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.json_response(STATUS)

    app = web.Application()
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for _ in range(count):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    urls = ",".join(f"http://{host}:{port}" for host, port, *_ in runner.addresses)
    print(f"stub edges listening on {urls}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stub_edge", description=__doc__)
    parser.add_argument("--count", type=int, default=1, help="edges (ports) to serve")
    args = parser.parse_args()
    uvloop.run(serve(args.count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
