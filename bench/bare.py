"""The yardstick of ``cadenza bench locator`` and ``cadenza bench plays``: bare aiohttp
handlers for the same requests.

``GET /v1/locate/{track_id}`` answers a fixed JSON document of the locator's answer's size and
shape, with no decision behind it; ``POST /v1/plays`` reads and parses the batch and answers
202 with its count, checking and logging nothing. Both are served as the locator is
(``cadenza.serving``, the same workers on one port, the same connection limits), so that the
locator's figures read as a share of what this stack allows on this machine.

    python -m bench.bare [--listen HOST:PORT] [--workers N]
"""

import argparse
import json
import os

from aiohttp import web

from cadenza import serving
from cadenza.settings import parse_listen

EDGE = {"region": "eu-west", "url": "http://127.0.0.1:8081", "distance_km": 1234.5, "load": 0.0}
CLIENT = {"latitude": 48.86, "longitude": 2.35, "region": "eu-west", "territory": "FR"}
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Location"}


def create_app() -> web.Application:
    async def locate(request: web.Request) -> web.Response:
        track_id = request.match_info["track_id"]
        edges = [{"id": f"eu-west-{n}", **EDGE} for n in range(3)]
        return web.json_response(
            {"track_id": track_id, "client": CLIENT, "edges": edges}, headers=CORS
        )

    async def plays(request: web.Request) -> web.Response:
        events = json.loads(await request.read())["events"]
        return web.json_response({"accepted": len(events)}, status=202, headers=CORS)

    app = web.Application(client_max_size=4 << 20)
    app.router.add_get("/v1/locate/{track_id}", locate)
    app.router.add_post("/v1/plays", plays)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N")
    args = parser.parse_args()
    host, port = parse_listen(args.listen, "--listen")
    service = serving.Service("bare handler", host, port)
    return serving.run_workers(lambda _worker: create_app(), service, max(1, args.workers))


if __name__ == "__main__":
    raise SystemExit(main())
