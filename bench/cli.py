"""``cadenza bench``: generated catalogs and benchmarks that print Cadenza next to a reference."""

import argparse
from pathlib import Path
from typing import Any

from bench.catalog import write_album


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmarks and generated test catalogs",
        description="Benchmarks: each prints Cadenza's figure next to a reference run.",
    )
    benches = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")

    catalog = benches.add_parser(
        "catalog",
        help="write a generated, tagged album of FLAC masters",
        description="Write a generated album of music-like FLAC masters (tagged, with cover art).",
    )
    catalog.add_argument("folder", type=Path, help="where to write the masters")
    _catalog_options(catalog, tracks=4, min_seconds=20, max_seconds=40)
    catalog.set_defaults(run=run_catalog)

    from bench import encode

    encode.add_parser(benches, _catalog_options)
    from bench import abr, cache, conformance, demo, edge, fleet, locator, plays

    abr.add_parser(benches)
    cache.add_parser(benches)
    conformance.add_parser(benches)
    demo.add_parser(benches)
    edge.add_parser(benches)
    fleet.add_parser(benches)
    locator.add_parser(benches)
    plays.add_parser(benches)


def _catalog_options(
    parser: argparse.ArgumentParser, *, tracks: int, min_seconds: float, max_seconds: float
) -> None:
    parser.add_argument("--tracks", type=int, default=tracks, help=f"default {tracks}")
    parser.add_argument(
        "--min-seconds", type=float, default=min_seconds, help=f"default {min_seconds}"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=max_seconds, help=f"default {max_seconds}"
    )
    parser.add_argument("--seed", type=int, default=1, help="catalog seed (default 1)")


def run_catalog(args: argparse.Namespace) -> int:
    paths = write_album(args.folder, args.tracks, args.min_seconds, args.max_seconds, args.seed)
    for path in paths:
        print(path)
    return 0
