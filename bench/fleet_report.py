"""The fleet benchmark's report: Markdown for people, JSON for scripts, PNG plots for both.

matplotlib draws the plots off-screen (the Agg backend). Per step: hit ratio and origin egress
over time from the counter samples, the distribution of the plays' startup time and bitrate,
and the segments each edge served. Over the steps (``write_scaling``): one table with a column
per player count, and each figure plotted against the load.
"""

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

ROWS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("plays (failed)", lambda f: f"{f['plays']} ({f['failed_plays']})"),
    ("media played", lambda f: f"{f['played_media_s']:.0f} s in {f['elapsed_s']:.0f} s"),
    ("startup p50 / p95", lambda f: f"{f['startup_p50_s']:.2f} s / {f['startup_p95_s']:.2f} s"),
    ("stall ratio", lambda f: f"{f['stall_ratio']:.2%}"),
    ("average bitrate", lambda f: f"{f['average_kbps']:.0f} kbit/s"),
    ("edge hit ratio", lambda f: f"{f['edge_hit_ratio']:.1%}"),
    ("origin offload", lambda f: f"{f['origin_offload']:.1%}"),
    (
        "segment time p50 / p95 / p99",
        lambda f: (
            f"{f['segment_ms_p50']:.0f} / {f['segment_ms_p95']:.0f} / "
            f"{f['segment_ms_p99']:.0f} ms (shaped links)"
        ),
    ),
    (
        "load across edges",
        lambda f: (
            ", ".join(f"{e} {n}" for e, n in sorted(f["segments_per_edge"].items()))
            + f" segments (max / mean {f['edge_load_max_over_mean']:.2f})"
        ),
    ),
)


STEP_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("origin requests per play", lambda f: f"{f['origin_requests_per_play']:.2f}"),
    (
        "fleet CPU per hour played",
        lambda f: f"{f['cpu_s_per_played_hour']:.1f} s ({f['fleet_cpu_s']:.1f} s in all)",
    ),
    ("pre-positioned (used, wasted)", lambda f: _prepositioned(f["preposition"])),
    ("warm-up (origin share at its end)", lambda f: _warmup_figure(f)),
    (
        "load generators",
        lambda f: f"{f['generators']} processes, {f.get('generators_cpu_s', 0):.0f} s CPU",
    ),
)
# The scaling table: the figures that show how the fleet copes as the load grows.
SCALING: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("plays (failed)", "plays", lambda f: f"{f['plays']} ({f['failed_plays']})"),
    ("startup p95", "startup_p95_s", lambda f: f"{f['startup_p95_s']:.2f} s"),
    ("stall ratio", "stall_ratio", lambda f: f"{f['stall_ratio']:.2%}"),
    ("average bitrate", "average_kbps", lambda f: f"{f['average_kbps']:.0f} kbit/s"),
    ("edge hit ratio", "edge_hit_ratio", lambda f: f"{f['edge_hit_ratio']:.1%}"),
    ("origin offload", "origin_offload", lambda f: f"{f['origin_offload']:.1%}"),
    (
        "origin requests per play",
        "origin_requests_per_play",
        lambda f: f"{f['origin_requests_per_play']:.2f}",
    ),
    (
        "origin requests per hour played",
        "origin_requests_per_played_hour",
        lambda f: f"{f.get('origin_requests_per_played_hour', 0):.0f}",
    ),
    (
        "fleet CPU s per hour played",
        "cpu_s_per_played_hour",
        lambda f: f"{f['cpu_s_per_played_hour']:.1f}",
    ),
    ("segment time p95", "segment_ms_p95", lambda f: f"{f['segment_ms_p95']:.0f} ms"),
    ("pre-positioned (used, wasted)", "", lambda f: _prepositioned(f["preposition"])),
    ("warm-up (origin share at its end)", "", lambda f: _warmup_figure(f)),
    ("load-generator processes", "", lambda f: str(f["generators"])),
)


def _fleet_words(summary: dict[str, Any]) -> str:
    tier = summary.get("tier", {"edges": 3, "parents": 0})
    parents = tier["parents"]
    tiered = f" behind {parents} parent edge{'s' if parents > 1 else ''}" if parents else ""
    return f"One origin, {tier['edges']} edges in two regions{tiered} and the locator"


def _warmup_figure(f: dict[str, Any]) -> str:
    share = f.get("warmup_origin_share")
    return f"{f.get('warmup_s', 0):.0f} s ({'-' if share is None else f'{share:.1%}'})"


def _prepositioned(p: dict[str, int]) -> str:
    mb = p.get("bytes_warmed", 0) / 1e6
    return (
        f"{p.get('objects_warmed', 0)} objects, {mb:.1f} MB "
        f"({p.get('objects_used', 0)}, {p.get('objects_wasted', 0)})"
    )


def write_scaling(out: Path, summary: dict[str, Any]) -> list[Path]:
    """The top report of a run of steps: report.md, report.json and scaling.png in ``out``."""
    (out / "report.json").write_text(json.dumps(_without_detail(summary), indent=2))
    plot = _plot_scaling(out / "scaling.png", summary["steps"])
    (out / "report.md").write_text(scaling_markdown(summary, plot))
    return [out / "report.md", out / "report.json", plot]


def _without_detail(summary: dict[str, Any]) -> dict[str, Any]:
    """Each step's plays and samples stay in its own report.json."""
    steps = [{"plan": s["plan"], "figures": s["figures"]} for s in summary["steps"]]
    return {**summary, "steps": steps}


def scaling_markdown(summary: dict[str, Any], plot: Path) -> str:
    steps, m = summary["steps"], summary["machine"]
    plan = steps[0]["plan"]
    counts = [s["plan"]["players"] for s in steps]
    lines = [
        "# Fleet benchmark: scaling",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}; load average {m['load_average'][0]:g} at "
        f"the start (a shared machine runs other work too). {_fleet_words(summary)}, each one "
        "process, on loopback.",
        "",
        f"{len(summary['catalog'])} tracks ({summary['ingest_s']:.0f} s to ingest), Zipf "
        f"{plan['zipf']:g}, {plan['skip']:.0%} early skips, ABR rule {plan['rule']}, playback "
        f"at {plan['speed']:g}x; each step warms up for {plan['warmup']:g} s and then until the "
        f"origin sends under 5% of the edges' bytes (at most {plan.get('warmup_max', 0):g} s), "
        f"then measures {plan['seconds']:g} s, on the same fleet as the steps before; links "
        f"shaped by {summary.get('links', 'the')} 3G traces (those averaging 0.2 Mbit/s or more; "
        f"{summary['traces']}).",
        "",
        "| players | " + " | ".join(str(n) for n in counts) + " |",
        "|---|" + "---|" * len(counts),
        *(
            f"| {name} | " + " | ".join(render(s["figures"]) for s in steps) + " |"
            for name, _, render in SCALING
        ),
        "",
        f"![{plot.stem}]({plot.name})",
        "",
        "Each step's own report: "
        + ", ".join(f"[{n} players](players-{n}/report.md)" for n in counts),
    ]
    return "\n".join(lines) + "\n"


def _plot_scaling(path: Path, steps: list[dict[str, Any]]) -> Path:
    plotted = [(name, key) for name, key, _ in SCALING if key and key != "plays"]
    figure, grid = plt.subplots(2, (len(plotted) + 1) // 2, figsize=(12, 5))
    counts = [s["plan"]["players"] for s in steps]
    for axes, (name, key) in zip(grid.flat, plotted, strict=False):
        axes.plot(counts, [s["figures"].get(key, 0) for s in steps], marker="o")
        if len(set(counts)) > 1:
            axes.set_xscale("log")
        axes.set_xlabel("players")
        axes.set_title(name, fontsize=9)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(plotted) :]:
        axes.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(out: Path, summary: dict[str, Any]) -> list[Path]:
    """report.md, report.json and the plots in ``out``; returns their paths."""
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    plots = [
        _plot_over_time(out / "hit_ratio.png", summary["samples"], _hit_ratio, "edge hit ratio"),
        _plot_over_time(
            out / "origin_egress.png", summary["samples"], _origin_mbps, "origin egress, Mbit/s"
        ),
        _plot_qoe(out / "qoe.png", summary["plays"]),
        _plot_edges(out / "edge_load.png", summary["figures"]["segments_per_edge"]),
    ]
    (out / "report.md").write_text(markdown(summary, plots))
    return [out / "report.md", out / "report.json", *plots]


def markdown(summary: dict[str, Any], plots: list[Path]) -> str:
    f, plan = summary["figures"], summary["plan"]
    lines = [
        "# Fleet benchmark",
        "",
        f"{plan['players']} virtual players for {plan['seconds']:g} s{_warmup(plan)} (playback "
        f"sped up {plan['speed']:g}x), {len(summary['catalog'])} tracks, Zipf {plan['zipf']:g}, "
        f"{plan['skip']:.0%} early skips, ABR rule {plan['rule']}; links shaped by 3G traces "
        f"({summary['traces']}).",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {render(f)} |" for name, render in ROWS),
        *(f"| {name} | {render(f)} |" for name, render in STEP_ROWS if "preposition" in f),
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
    ]
    if summary["errors"]:
        lines += ["", "Failed plays:", *(f"- {e}" for e in summary["errors"][:20])]
    return "\n".join(lines) + "\n"


def _warmup(plan: dict[str, Any]) -> str:
    return " after a warm-up" if plan.get("warmup") else ""


def _deltas(samples: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    return [(b["t"], a, b) for a, b in itertools.pairwise(samples)]


def _hit_ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    hits = sum(e["hits"] for e in b["edges"].values()) - sum(e["hits"] for e in a["edges"].values())
    misses = sum(e["misses"] for e in b["edges"].values()) - sum(
        e["misses"] for e in a["edges"].values()
    )
    return hits / (hits + misses) if hits + misses > 0 else None


def _origin_mbps(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if "origin_bytes" not in a or "origin_bytes" not in b or b["t"] <= a["t"]:
        return None
    return float((b["origin_bytes"] - a["origin_bytes"]) * 8 / (b["t"] - a["t"]) / 1e6)


Sample = dict[str, Any]


def _plot_over_time(
    path: Path,
    samples: list[Sample],
    value: Callable[[Sample, Sample], float | None],
    label: str,
) -> Path:
    points = [(t, v) for t, a, b in _deltas(samples) if (v := value(a, b)) is not None]
    figure, axes = plt.subplots(figsize=(7, 3))
    if points:
        axes.plot([t for t, _ in points], [v for _, v in points])
    axes.set_xlabel("seconds")
    axes.set_ylabel(label)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _plot_qoe(path: Path, plays: list[dict[str, Any]]) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    left.hist([p["startup_s"] for p in plays] or [0], bins=20)
    left.set_xlabel("startup, s")
    left.set_ylabel("plays")
    right.hist([p["average_kbps"] for p in plays] or [0], bins=20)
    right.set_xlabel("average bitrate, kbit/s")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _plot_edges(path: Path, per_edge: dict[str, int]) -> Path:
    figure, axes = plt.subplots(figsize=(6, 3))
    names = sorted(per_edge)
    axes.bar(names, [per_edge[n] for n in names])
    axes.set_ylabel("segments served")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# The tier comparison: per step, one row per fleet.
TIER_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("origin requests / h played", lambda f: f"{f['origin_requests_per_played_hour']:.0f}"),
    (
        "origin requests (304s)",
        lambda f: f"{f['origin_object_requests']} ({f.get('origin_revalidations', 0)})",
    ),
    ("origin MB / h played", lambda f: f"{f['origin_mb_per_played_hour']:.1f}"),
    ("stall ratio", lambda f: f"{f['stall_ratio']:.2%}"),
    ("edge hit ratio", lambda f: f"{f['edge_hit_ratio']:.1%}"),
    ("startup p95", lambda f: f"{f['startup_p95_s']:.2f} s"),
    ("plays (failed)", lambda f: f"{f['plays']} ({f['failed_plays']})"),
)


def tier_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step and fleet: the fleet's figures, and for a fleet with parents how many times
    fewer origin requests and bytes it caused than the same edges alone (None without them)."""
    alone = {
        s["tier"]["edges"]: [step["figures"] for step in s["steps"]]
        for s in summaries
        if not s["tier"]["parents"]
    }
    rows = []
    for summary in summaries:
        tier = summary["tier"]
        for n, step in enumerate(summary["steps"]):
            f = step["figures"]
            base = alone.get(tier["edges"]) if tier["parents"] else None
            rows.append(
                {
                    "players": step["plan"]["players"],
                    **tier,
                    "figures": f,
                    "fewer_requests": _times(base, n, f, "origin_requests_per_played_hour"),
                    "fewer_bytes": _times(base, n, f, "origin_mb_per_played_hour"),
                }
            )
    return rows


def _times(
    base: list[dict[str, Any]] | None, step: int, tiered: dict[str, Any], key: str
) -> float | None:
    """How many times ``base`` (the edges alone) exceeds ``tiered`` in ``key``."""
    if base is None or not tiered[key]:
        return None
    times: float = round(base[step][key] / tiered[key], 2)
    return times


def write_tiers(out: Path, summaries: list[dict[str, Any]]) -> list[Path]:
    """The comparison of fleets with and without parents: report.md and report.json."""
    rows = tier_rows(summaries)
    (out / "report.json").write_text(
        json.dumps({"fleets": [_without_detail(s) for s in summaries], "rows": rows}, indent=2)
    )
    (out / "report.md").write_text(tiers_markdown(summaries, rows))
    return [out / "report.md", out / "report.json"]


def tiers_markdown(summaries: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    first, m = summaries[0], summaries[0]["machine"]
    plan = first["steps"][0]["plan"]
    lines = [
        "# Fleet benchmark: cache tiers",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}; load average {m['load_average'][0]:g} at "
        "the start. One origin and one ingest; each fleet (edges in two regions, with or "
        "without parent edges in front of them, and a locator) then starts from empty caches "
        f"and plays the same load: {len(first['catalog'])} tracks, Zipf {plan['zipf']:g}, "
        f"{plan['skip']:.0%} early skips, ABR rule {plan['rule']}, playback at "
        f"{plan['speed']:g}x, {plan['warmup']:g} s of warm-up, then {plan['seconds']:g} s "
        f"measured; links shaped by {first.get('links', 'the')} 3G traces ({first['traces']}). "
        "Origin requests are object requests (`/tracks/...`); hours played are the measured "
        "plays' media time.",
        "",
    ]
    for players in dict.fromkeys(r["players"] for r in rows):
        lines += [
            f"## {players} players",
            "",
            "| edges | parents | "
            + " | ".join(name for name, _ in TIER_COLUMNS)
            + " | fewer origin requests | fewer origin bytes |",
            "|---|---|" + "---|" * (len(TIER_COLUMNS) + 2),
        ]
        for r in (r for r in rows if r["players"] == players):
            lines.append(
                f"| {r['edges']} | {r['parents']} | "
                + " | ".join(render(r["figures"]) for _, render in TIER_COLUMNS)
                + f" | {_fewer(r['fewer_requests'])} | {_fewer(r['fewer_bytes'])} |"
            )
        lines.append("")
    lines.append(
        "Each fleet's own report: "
        + ", ".join(f"[{s['tier']['name']}]({s['tier']['name']}/report.md)" for s in summaries)
    )
    return "\n".join(lines) + "\n"


def _fewer(times: float | None) -> str:
    return "-" if times is None else f"{times:.2f}x"
