"""A stand-in origin for edge benchmarks: fixed-size immutable segments, an optional delay.

It plays the origin's part of the contract that edges and the locator rely on
(``Cache-Control: immutable``, strong ETags, the event stream, every track licensed everywhere,
a master playlist per track) with no catalog behind it, so a benchmark measures the edge, its
reference proxy or the locator, not the origin. ``GET /_stats`` tells how often each path was
fetched.

    python -m bench.stub_origin [--listen HOST:PORT] [--size BYTES] [--delay SECONDS]
"""

import argparse
import asyncio
import hashlib

from aiohttp import web

from cadenza import hls, serving
from cadenza.settings import parse_listen

FETCHES = web.AppKey("fetches", dict[str, int])
SEGMENT_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "Content-Type": "audio/mp4",
}


def body_for(path: str, size: int) -> bytes:
    """Deterministic bytes for ``path``, so both sides of a comparison serve the same object."""
    seed = hashlib.sha256(path.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


MASTER = hls.write_multivariant(
    hls.MultivariantPlaylist(
        tuple(
            hls.Variant(f"v0/aac_{kbps}/index.m3u8", kbps * 1100, codecs="mp4a.40.2")
            for kbps in (256, 160, 96, 48)
        ),
        hls.VERSION,
        independent_segments=True,
    )
)


def create_app(size: int, delay: float) -> web.Application:
    app = web.Application()
    app[FETCHES] = {}

    async def segment(request: web.Request) -> web.Response:
        app[FETCHES][request.path] = app[FETCHES].get(request.path, 0) + 1
        if delay:
            await asyncio.sleep(delay)
        if request.path.endswith("/master.m3u8"):
            return web.Response(text=MASTER, content_type="application/vnd.apple.mpegurl")
        body = body_for(request.path, size)
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {**SEGMENT_HEADERS, "ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers)

    async def rights(request: web.Request) -> web.Response:
        return web.json_response({"licensed": True, "reason": "worldwide"})

    async def track(request: web.Request) -> web.Response:
        """Every track is the label "bench"'s (the stream counts ask)."""
        return web.json_response({"track_id": request.match_info["track_id"], "label": "bench"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(app[FETCHES])

    async def events(request: web.Request) -> web.Response:
        """No takedowns ever: answer the long poll after a short wait."""
        await asyncio.sleep(min(float(request.query.get("timeout", "1")), 1.0))
        return web.json_response({"events": [], "last": int(request.query.get("after", "0"))})

    app.router.add_get("/tracks/{tail:.*}", segment)
    app.router.add_get("/v1/tracks/{track_id}", track)
    app.router.add_get("/v1/tracks/{track_id}/rights", rights)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/v1/events", events)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stub_origin", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    parser.add_argument("--size", type=int, default=120 * 1024, help="segment bytes")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    host, port = parse_listen(args.listen, "--listen")
    return serving.run(create_app(args.size, args.delay), host, port, "stub origin")


if __name__ == "__main__":
    raise SystemExit(main())
