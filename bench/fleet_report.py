"""The fleet benchmark's report: Markdown for people, JSON for scripts, PNG plots for both.

matplotlib draws the plots off-screen (the Agg backend): hit ratio and origin egress over time
from the counter samples, the distribution of the plays' startup time and bitrate, and the
segments each edge served.
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
        f"{plan['players']} virtual players for {plan['seconds']:g} s (playback sped up "
        f"{plan['speed']:g}x), {len(summary['catalog'])} tracks, Zipf {plan['zipf']:g}, "
        f"{plan['skip']:.0%} early skips, ABR rule {plan['rule']}; links shaped by 3G traces "
        f"({summary['traces']}).",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {render(f)} |" for name, render in ROWS),
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
    ]
    if summary["errors"]:
        lines += ["", "Failed plays:", *(f"- {e}" for e in summary["errors"][:20])]
    return "\n".join(lines) + "\n"


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
