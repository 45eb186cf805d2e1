"""``cadenza bench cache``: the edge's eviction policies on music traces, next to LRU and OPT.

Each run draws one synthetic trace per Zipf exponent (``edge.trace``: Zipf track popularity,
sessions that play a track's segments in order and often skip early, one rung per player) and
replays it through LRU, S3-FIFO, W-TinyLFU and the music-aware policy (``edge.music_policy``),
and through Belady's furthest-next-use rule (OPT), for caches of 1%, 5% and 10% of the trace's
footprint: the bytes of the distinct objects it requests, not of the whole catalog, much of
which is never requested (both are printed). The report gives, per Zipf exponent, medians over
the runs (one seed each) of the miss ratios, by requests and by bytes, of the share of the
LRU-to-OPT gap in request miss ratio that each policy closes, and of the waited-on miss ratio.

Waited-on misses are the misses a player actually waits for. An edge reads ahead: when it
serves segment k of a stream it fetches segment k + 1 at the same rung, a segment's duration
(6 s) before the player asks. So a miss on segment k >= 1 of a session whose previous request
was segment k - 1 at the same rung is hidden; every other miss is waited on (a play's first
segment, the first segment after a rung switch). The waited-on miss ratio is those misses over
all requests. Readahead's own fetches are not replayed through the caches.
"""

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from cadenza.errors import ConfigError
from edge.policy import DEFAULT_POLICY, make_policy
from edge.trace import (
    Outcome,
    TraceModel,
    belady,
    catalog_bytes,
    footprint,
    generate_marked,
    simulate,
)

SHARES = (0.01, 0.05, 0.10)
POLICIES = ("lru", "s3fifo", "wtinylfu", "music")
CANDIDATES = POLICIES[1:]
ZIPFS = (0.7, 0.8, 0.9)
TARGET_GAP = 0.60  # of the LRU-to-OPT gap, closed by the default policy at the largest cache
TARGET_ZIPF = 0.8  # the target holds for this exponent and above
DEFAULTS = TraceModel()


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "cache",
        help="eviction policies on a synthetic music trace, against LRU and OPT",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tracks", type=int, default=DEFAULTS.tracks, help="catalog size")
    parser.add_argument("--requests", type=int, default=DEFAULTS.requests, help="per trace")
    parser.add_argument(
        "--zipf",
        type=float,
        nargs="+",
        default=list(ZIPFS),
        help="popularity exponents, one table each (default 0.7 0.8 0.9)",
    )
    parser.add_argument("--seed", type=int, default=1, help="first trace's seed (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="traces, one seed each (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tracks < 1 or args.requests < 1 or args.runs < 1 or args.jobs < 1:
        raise ConfigError("--tracks, --requests, --runs and --jobs must be at least 1")
    if any(zipf < 0 for zipf in args.zipf):
        raise ConfigError(f"--zipf must be at least 0, got {args.zipf}")
    started = time.perf_counter()
    zipfs = sorted(set(args.zipf))
    models = [
        TraceModel(tracks=args.tracks, requests=args.requests, zipf=zipf, seed=args.seed + i)
        for zipf in zipfs
        for i in range(args.runs)
    ]
    if args.jobs > 1 and len(models) > 1:
        with ProcessPoolExecutor(min(args.jobs, len(models))) as pool:
            results = list(pool.map(measure, models))
    else:
        results = [measure(model) for model in models]
    tables = [
        _table(models[i : i + args.runs], results[i : i + args.runs])
        for i in range(0, len(models), args.runs)
    ]
    report = _report(tables, args.runs, time.perf_counter() - started)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def measure(model: TraceModel) -> dict[str, Any]:
    """One trace through every policy and OPT at every cache size."""
    marked = list(generate_marked(model))
    requests = [(key, size) for key, size, _ in marked]
    ahead = [is_ahead for _, _, is_ahead in marked]
    total = footprint(requests)
    sizes = []
    for share in SHARES:
        capacity = int(total * share)
        outcomes = {
            name: simulate(make_policy(name, capacity), requests, ahead) for name in POLICIES
        }
        outcomes["opt"] = belady(requests, capacity, ahead)
        sizes.append(
            {
                "capacity_bytes": capacity,
                "miss_ratio": {k: _ratio(o.misses, o.hits + o.misses) for k, o in outcomes.items()},
                "byte_miss_ratio": {k: _byte_ratio(o) for k, o in outcomes.items()},
                "waited_ratio": {
                    k: _ratio(o.waited, o.hits + o.misses) for k, o in outcomes.items()
                },
            }
        )
    return {
        "footprint_bytes": total,
        "objects": len({key for key, _ in requests}),
        "catalog_bytes": catalog_bytes(model),
        "sizes": sizes,
    }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _byte_ratio(outcome: Outcome) -> float:
    return _ratio(outcome.miss_bytes, outcome.hit_bytes + outcome.miss_bytes)


def gap_closed(lru: float, policy: float, opt: float) -> float | None:
    """How much of LRU's excess misses over OPT ``policy`` avoids; None when there are none."""
    return (lru - policy) / (lru - opt) if lru > opt else None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 4) if known else None


def _table(models: list[TraceModel], results: list[dict[str, Any]]) -> dict[str, Any]:
    """One Zipf exponent: medians over its runs."""
    first = models[0]
    return {
        "trace": {
            "tracks": first.tracks,
            "requests": first.requests,
            "zipf": first.zipf,
            "seeds": [m.seed for m in models],
            "objects": int(statistics.median(r["objects"] for r in results)),
            "footprint_bytes": int(statistics.median(r["footprint_bytes"] for r in results)),
            "catalog_bytes": int(statistics.median(r["catalog_bytes"] for r in results)),
        },
        "sizes": [
            _size_report(share, [r["sizes"][i] for r in results]) for i, share in enumerate(SHARES)
        ],
    }


def _report(tables: list[dict[str, Any]], runs: int, seconds: float) -> dict[str, Any]:
    targets = []
    for table in tables:
        zipf = table["trace"]["zipf"]
        if zipf < TARGET_ZIPF:
            continue
        value = table["sizes"][-1]["gap_closed"][DEFAULT_POLICY]
        targets.append(
            {
                "zipf": zipf,
                "policy": DEFAULT_POLICY,
                "share": SHARES[-1],
                "target": f">= {TARGET_GAP}",
                "value": value,
                "met": value is not None and value >= TARGET_GAP,
            }
        )
    return {
        "runs": runs,
        "default": DEFAULT_POLICY,
        "cache_size_of": "footprint: bytes of the distinct objects requested",
        "waited_on": "misses not hidden by readahead of the next segment, over all requests",
        "tables": tables,
        "targets": {"gap_closed": targets},
        "seconds": round(seconds, 1),
    }


def _size_report(share: float, per_run: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [run["miss_ratio"] for run in per_run]
    gaps = {
        name: _median([gap_closed(r["lru"], r[name], r["opt"]) for r in ratios])
        for name in CANDIDATES
    }
    return {
        "share": share,
        "capacity_bytes": int(statistics.median(r["capacity_bytes"] for r in per_run)),
        "miss_ratio": _medians(per_run, "miss_ratio"),
        "byte_miss_ratio": _medians(per_run, "byte_miss_ratio"),
        "waited_ratio": _medians(per_run, "waited_ratio"),
        "gap_closed": gaps,
    }


def _medians(per_run: list[dict[str, Any]], field: str) -> dict[str, float | None]:
    return {name: _median([run[field][name] for run in per_run]) for name in (*POLICIES, "opt")}


def _print(r: dict[str, Any]) -> None:
    names = (*POLICIES, "opt")
    columns = "".join(f"{n:>9}" for n in names)
    gaps = "".join(f"{n:>9}" for n in CANDIDATES)
    print(
        f"cache size as a share of the footprint; gap closed = (LRU - policy) / (LRU - OPT); "
        f"medians of {r['runs']} seeds, {r['seconds']} s"
    )
    for table in r["tables"]:
        trace = table["trace"]
        print(
            f"\nzipf {trace['zipf']}: {trace['tracks']} tracks "
            f"({trace['catalog_bytes'] / 1e9:.1f} GB at every rung), {trace['requests']} requests "
            f"for {trace['objects']} objects ({trace['footprint_bytes'] / 1e9:.2f} GB footprint)"
        )
        print(f"{'':15}{'miss ratio by requests':^45}  {'gap closed':^27}")
        print(f"{'cache':15}{columns}  {gaps}")
        _rows(table["sizes"], ("miss_ratio", names, ".4f"), ("gap_closed", CANDIDATES, ".1%"))
        print(f"{'':15}{'miss ratio by bytes':^45}  {'waited-on miss ratio':^45}")
        print(f"{'cache':15}{columns}  {columns}")
        _rows(table["sizes"], ("byte_miss_ratio", names, ".4f"), ("waited_ratio", names, ".4f"))
    print("\nwaited on: the misses that readahead of a session's next segment does not hide")
    for target in r["targets"]["gap_closed"]:
        mark = "met" if target["met"] else "MISSED"
        value = "n/a" if target["value"] is None else f"{target['value']:.1%}"
        print(
            f"zipf {target['zipf']}: default policy {target['policy']} closes {value} of the "
            f"LRU-to-OPT gap at a {target['share']:.0%} cache (target >= {TARGET_GAP:.0%}: {mark})"
        )


def _rows(sizes: list[dict[str, Any]], *halves: tuple[str, tuple[str, ...], str]) -> None:
    """One line per cache size: its label, then each half's field for its columns."""
    for size in sizes:
        cells = (
            "".join(_cell(size[field][n], spec) for n in names) for field, names, spec in halves
        )
        print(_label(size) + "  ".join(cells))


def _label(size: dict[str, Any]) -> str:
    return f"{size['share']:.0%} {_megabytes(size['capacity_bytes'])}".ljust(15)


def _megabytes(size: int) -> str:
    return f"({size / 1e6:,.0f} MB)" if size >= 1e6 else f"({size / 1e3:,.0f} kB)"


def _cell(value: float | None, spec: str) -> str:
    return f"{'n/a':>9}" if value is None else f"{value:>9{spec}}"
