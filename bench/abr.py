"""``cadenza bench abr``: the player's ABR rules on real 3G traces, next to the offline optimum.

Sessions are played as the player plays them (``player.simulate``): its default buffer (two
minutes), its bandwidth probe (the lowest rung's media playlist, fetched and timed before the
first choice), each track's playlist and init segment before its first segment, and four-minute
tracks of six-second segments back to back on the default ladder's lossy rungs. Every trace in
``<traces>/3g`` is played from three points (its start, a third and two thirds in), in sessions
of 40 segments (one track) and of 200 (a queue of five).

Score (QoE_lin, in kbit/s): the sum over segments of the rung's bitrate, less the top bitrate
per second of stall (the startup included), less the bitrate change at each switch. The optimum
is the best score any rung sequence reaches on the same session knowing the trace in advance,
found exactly. A rule's figure is its mean QoE over the mean optimum; per-trace medians (over
the three starting points) and stall seconds are reported too. The baselines play in the same
run: hls.js's default rule, robustMPC, BOLA and a plain throughput rule. The step trace (1
Mbit/s for 30 s, 30 kbit/s for longer than the buffer lasts, then 1 Mbit/s again) shows how soon
each rule is back on the top rung after the link recovers.
"""

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from player.abr import DEFAULT_MAX_BUFFER_S, DEFAULT_RULE, RULES, make_rule
from player.simulate import Content, SimResult, ladder_bitrates, optimum, playlist, simulate
from player.traces import ATTRIBUTION, DEFAULT_TRACES, Trace, load_folder, shifted, step_trace

TRACK_SEGMENTS = 40  # a four-minute track of six-second segments
SEGMENT_S = 6.0
LENGTHS = (TRACK_SEGMENTS, 5 * TRACK_SEGMENTS)
OFFSETS = (0.0, 1 / 3, 2 / 3)  # where sessions start, as shares of each trace's length
# The player's requests besides segments, as the encoder writes them for a four-minute track.
PLAYLIST_BYTES = 1_700.0
INIT_BYTES = 770.0
BASELINES = tuple(name for name in RULES if name != DEFAULT_RULE)
REFERENCE = "hlsjs"  # the rule whose total stall the default may not exceed
TARGET_SHARE = 0.90
TARGET_RECOVERY_S = 10.0
# 1 Mbit/s, then 30 kbit/s for longer than the buffer lasts, then 1 Mbit/s again: every rule has
# to come down, and the step shows how soon it is back on the top rung.
STEP_LOW_S = DEFAULT_MAX_BUFFER_S + 30.0
STEP = step_trace(low_s=STEP_LOW_S)
STEP_RECOVERY_S = 30.0 + STEP_LOW_S  # when the step trace's bandwidth comes back


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "abr",
        help="ABR rules on 3G traces, played like the player, against the offline optimum",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--traces",
        type=Path,
        default=DEFAULT_TRACES,
        help="folder holding 3g/*.json (default: the shared traces next to the repository)",
    )
    parser.add_argument(
        "--segments",
        default=",".join(map(str, LENGTHS)),
        metavar="N[,N...]",
        help=f"session lengths in segments, in tracks of {TRACK_SEGMENTS} (default "
        f"{','.join(map(str, LENGTHS))}); the targets are judged on the first",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that play sessions side by side (default: one per CPU)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    lengths = _lengths(args.segments)
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    started = time.perf_counter()
    folder = args.traces / "3g"
    traces = load_folder(folder)
    bitrates = ladder_bitrates()
    jobs = [(trace, share, n) for n in lengths for trace in traces for share in OFFSETS]
    if args.jobs == 1:
        sessions = [_measure_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(min(args.jobs, len(jobs))) as pool:
            sessions = list(pool.map(_measure_job, jobs, chunksize=1))
    recovery = {name: step_recovery(name, bitrates) for name in RULES}
    report = _report(folder, bitrates, lengths, sessions, recovery, time.perf_counter() - started)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _lengths(text: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--segments takes counts separated by commas, got {text!r}") from None
    if not lengths or min(lengths) < 1:
        raise ConfigError(f"--segments counts must be at least 1, got {text!r}")
    return lengths


def session(segments: int) -> Content:
    """``segments`` six-second segments, in four-minute tracks and a shorter last one."""
    whole, rest = divmod(segments, TRACK_SEGMENTS)
    seconds = [TRACK_SEGMENTS * SEGMENT_S] * whole + ([rest * SEGMENT_S] if rest else [])
    return playlist(seconds, SEGMENT_S, track_start_bytes=PLAYLIST_BYTES + INIT_BYTES)


def play(name: str, trace: Trace, bitrates: tuple[float, ...], content: Content) -> SimResult:
    """One rule, fresh, through one session as the player plays it."""
    return simulate(make_rule(name), trace, bitrates, content, DEFAULT_MAX_BUFFER_S, PLAYLIST_BYTES)


def _measure_job(job: tuple[Trace, float, int]) -> dict[str, Any]:
    trace, share, segments = job
    return measure(shifted(trace, share * trace.seconds), ladder_bitrates(), segments, trace.name)


def measure(
    trace: Trace, bitrates: tuple[float, ...], segments: int, source: str | None = None
) -> dict[str, Any]:
    """Every rule through one session on ``trace``, and the exact optimum."""
    content = session(segments)
    results = {name: play(name, trace, bitrates, content) for name in RULES}
    best = optimum(
        trace,
        bitrates,
        content,
        DEFAULT_MAX_BUFFER_S,
        resolution_s=0.0,
        reached=max(r.qoe for r in results.values()),
        probe_bytes=PLAYLIST_BYTES,
    )
    return {
        "trace": source or trace.name,
        "session": trace.name,
        "segments": segments,
        "optimum": round(best, 1),
        "rules": {name: _summary(result) for name, result in results.items()},
    }


def _summary(result: SimResult) -> dict[str, Any]:
    return {
        "qoe": round(result.qoe, 1),
        "stall_s": round(result.stall_s, 2),
        "stalls": result.stalls,
        "switches": result.switches,
        "mean_kbps": round(result.mean_kbps, 1),
        "startup_s": round(result.startup_s, 2),
    }


def step_recovery(name: str, bitrates: tuple[float, ...]) -> float | None:
    """Seconds from the step trace's recovery to the rule's first request for the top rung."""
    result = play(name, STEP, bitrates, session(2 * TRACK_SEGMENTS))  # outlasts the step
    top = len(bitrates) - 1
    for sent, rung in zip(result.requests_s, result.rungs, strict=True):
        if sent >= STEP_RECOVERY_S and rung == top:
            return round(sent - STEP_RECOVERY_S, 2)
    return None


def share(qoe: float, best: float) -> float | None:
    """A score's share of the optimum; None when the optimum is not positive."""
    return qoe / best if best > 0 else None


def _report(
    folder: Path,
    bitrates: tuple[float, ...],
    lengths: tuple[int, ...],
    sessions: list[dict[str, Any]],
    recovery: dict[str, float | None],
    seconds: float,
) -> dict[str, Any]:
    by_length = {
        str(n): _length_report([s for s in sessions if s["segments"] == n], recovery)
        for n in lengths
    }
    judged = by_length[str(lengths[0])]
    return {
        "traces": {
            "folder": str(folder),
            "count": len({s["trace"] for s in sessions}),
            "source": ATTRIBUTION,
        },
        "player": {
            "max_buffer_s": DEFAULT_MAX_BUFFER_S,
            "probe_bytes": PLAYLIST_BYTES,
            "track_start_bytes": PLAYLIST_BYTES + INIT_BYTES,
            "segment_s": SEGMENT_S,
            "offsets": [round(o, 4) for o in OFFSETS],
            "bitrates_kbps": list(bitrates),
        },
        "qoe": {
            "bitrate": "kbit/s of each segment's rung",
            "stall_per_s": max(bitrates),
            "switch": "the bitrate change, kbit/s",
        },
        "default": DEFAULT_RULE,
        "lengths": by_length,
        "targets": _targets(judged, lengths[0]),
        "seconds": round(seconds, 1),
    }


def _length_report(
    sessions: list[dict[str, Any]], recovery: dict[str, float | None]
) -> dict[str, Any]:
    mean_optimum = statistics.mean(s["optimum"] for s in sessions)
    by_trace = _by_trace(sessions)
    rules = {}
    for name in RULES:
        runs = [s["rules"][name] for s in sessions]
        mean_qoe = statistics.mean(r["qoe"] for r in runs)
        rules[name] = {
            "mean_qoe": round(mean_qoe, 1),
            "optimum_share": _rounded(share(mean_qoe, mean_optimum)),
            "median_trace_share": _rounded(_median_trace_share(by_trace, name)),
            "total_stall_s": round(sum(r["stall_s"] for r in runs), 1),
            "median_stall_s": round(statistics.median(r["stall_s"] for r in runs), 2),
            "mean_switches": round(statistics.mean(r["switches"] for r in runs), 2),
            "mean_kbps": round(statistics.mean(r["mean_kbps"] for r in runs), 1),
            "mean_startup_s": round(statistics.mean(r["startup_s"] for r in runs), 2),
            "step_recovery_s": recovery[name],
        }
    return {
        "sessions": len(sessions),
        "segments": sessions[0]["segments"],
        "optimum": {"mean_qoe": round(mean_optimum, 1)},
        "rules": rules,
        "per_trace": _per_trace(by_trace),
    }


def _by_trace(sessions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The sessions of each trace (one per starting point), traces by name."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for s in sessions:
        grouped.setdefault(s["trace"], []).append(s)
    return dict(sorted(grouped.items()))


def _median_trace_share(by_trace: dict[str, list[dict[str, Any]]], name: str) -> float | None:
    """The median over traces of each trace's median share (over its starting points)."""
    medians = []
    for mine in by_trace.values():
        shares = [s["rules"][name]["qoe"] / s["optimum"] for s in mine if s["optimum"] > 0]
        if shares:
            medians.append(statistics.median(shares))
    return statistics.median(medians) if medians else None


def _per_trace(by_trace: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per trace: the median over its starting points of the optimum and of each rule."""
    rows = []
    for trace, mine in by_trace.items():
        rows.append(
            {
                "trace": trace,
                "optimum": statistics.median(s["optimum"] for s in mine),
                "rules": {
                    name: {
                        "qoe": statistics.median(s["rules"][name]["qoe"] for s in mine),
                        "stall_s": statistics.median(s["rules"][name]["stall_s"] for s in mine),
                    }
                    for name in RULES
                },
                "sessions": [
                    {"session": s["session"], "optimum": s["optimum"], "rules": s["rules"]}
                    for s in mine
                ],
            }
        )
    return rows


def _targets(judged: dict[str, Any], segments: int) -> dict[str, Any]:
    rules = judged["rules"]
    default = rules[DEFAULT_RULE]
    value = default["optimum_share"]
    rival = max(BASELINES, key=lambda name: rules[name]["mean_qoe"])
    recovered = default["step_recovery_s"]
    return {
        "segments": segments,
        "optimum_share": {
            "target": f">= {TARGET_SHARE}",
            "value": value,
            "met": value is not None and value >= TARGET_SHARE,
        },
        "beats_baselines": {
            "target": f"mean QoE above {', '.join(BASELINES)}",
            "value": default["mean_qoe"],
            "best_baseline": rival,
            "met": default["mean_qoe"] > rules[rival]["mean_qoe"],
        },
        "stall_vs_reference": {
            "target": f"total stall <= {REFERENCE}'s",
            "value": default["total_stall_s"],
            "reference": rules[REFERENCE]["total_stall_s"],
            "met": default["total_stall_s"] <= rules[REFERENCE]["total_stall_s"],
        },
        "step_recovery": {
            "target": f"<= {TARGET_RECOVERY_S} s",
            "value": recovered,
            "met": recovered is not None and recovered <= TARGET_RECOVERY_S,
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _print(r: dict[str, Any]) -> None:
    player, targets = r["player"], r["targets"]
    rungs = "/".join(f"{b:.0f}" for b in player["bitrates_kbps"])
    print(
        f"{r['traces']['count']} traces from {r['traces']['folder']}, each from "
        f"{len(player['offsets'])} starting points; buffer {player['max_buffer_s']:.0f} s, "
        f"probe {player['probe_bytes']:.0f} B, rungs {rungs} kbit/s; {r['seconds']} s"
    )
    print(r["traces"]["source"])
    print(
        f"QoE: bitrate kbit/s per segment, less {r['qoe']['stall_per_s']:.0f} per second of "
        "stall, less the bitrate change at each switch"
    )
    for segments, length in r["lengths"].items():
        print(f"\nsessions of {segments} segments ({length['sessions']} sessions)")
        print(
            f"{'rule':12}{'mean QoE':>10}{'of optimum':>12}{'trace median':>14}{'stall s':>9}"
            f"{'median':>8}{'switches':>10}{'kbit/s':>8}{'startup s':>10}{'step back s':>12}"
        )
        for name, rule in length["rules"].items():
            print(
                f"{name + ('*' if name == r['default'] else ''):12}{rule['mean_qoe']:>10.0f}"
                f"{_percent(rule['optimum_share']):>12}"
                f"{_percent(rule['median_trace_share']):>14}{rule['total_stall_s']:>9.1f}"
                f"{rule['median_stall_s']:>8.2f}{rule['mean_switches']:>10.1f}"
                f"{rule['mean_kbps']:>8.0f}{rule['mean_startup_s']:>10.2f}"
                f"{_seconds(rule['step_recovery_s']):>12}"
            )
        print(f"{'optimum':12}{length['optimum']['mean_qoe']:>10.0f}")
    print(
        "\n* default rule; 'of optimum' is mean QoE over mean optimum; 'trace median' the median "
        "over traces of each trace's median share"
    )
    share, rival = targets["optimum_share"], targets["beats_baselines"]
    stall, step = targets["stall_vs_reference"], targets["step_recovery"]
    print(f"targets for {r['default']}, on sessions of {targets['segments']} segments:")
    print(f"  share of the optimum {_percent(share['value'])} (>= 90%): {_mark(share)}")
    print(f"  mean QoE above the best baseline, {rival['best_baseline']}: {_mark(rival)}")
    print(
        f"  total stall {stall['value']:.1f} s, no more than {REFERENCE}'s "
        f"{stall['reference']:.1f} s: {_mark(stall)}"
    )
    print(f"  back on the top rung {_seconds(step['value'])} s after the step: {_mark(step)}")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def _mark(target: dict[str, Any]) -> str:
    return "met" if target["met"] else "MISSED"
