"""``cadenza bench abr``: the player's ABR rules on real 3G traces, next to the offline optimum.

Every rule plays the same session (tracks of four minutes back to back, ``--segments`` in all,
on the default ladder's lossy rungs) over every trace in ``<traces>/3g``, in the offline
simulator (``player.simulate``). The optimum is the best score any rung sequence reaches on the
same trace, knowing it in advance. A rule's share of the optimum is averaged over the traces
whose optimum is positive (a trace with long outages can force a negative one). The step trace
(1 Mbit/s, 30 s at 30 kbit/s, then 1 Mbit/s again) shows how soon each rule is back on the
top rung after the link recovers.
"""

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from player.abr import DEFAULT_RULE, RULES, make_rule
from player.simulate import (
    MAX_BUFFER_S,
    Content,
    SimResult,
    ladder_bitrates,
    optimum,
    playlist,
    simulate,
)
from player.traces import ATTRIBUTION, DEFAULT_TRACES, Trace, load_folder, step_trace

TRACK_SEGMENTS = 40  # a four-minute track of six-second segments
BASELINES = tuple(name for name in RULES if name != DEFAULT_RULE)
TARGET_SHARE = 0.90
TARGET_RECOVERY_S = 10.0
STEP = step_trace()
STEP_RECOVERY_S = 60.0  # when the step trace's bandwidth comes back


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "abr",
        help="ABR rules on 3G traces, against the offline optimum",
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
        type=int,
        default=TRACK_SEGMENTS,
        help=f"segments per session, in tracks of {TRACK_SEGMENTS} (default {TRACK_SEGMENTS})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.segments < 1:
        raise ConfigError(f"--segments must be at least 1, got {args.segments}")
    started = time.perf_counter()
    folder = args.traces / "3g"
    traces = load_folder(folder)
    bitrates = ladder_bitrates()
    content = session(args.segments)
    per_trace = [measure(trace, bitrates, content) for trace in traces]
    recovery = {name: step_recovery(name, bitrates) for name in RULES}
    report = _report(folder, bitrates, content, per_trace, recovery, time.perf_counter() - started)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def session(segments: int) -> Content:
    """``segments`` six-second segments, in four-minute tracks and a shorter last one."""
    whole, rest = divmod(segments, TRACK_SEGMENTS)
    seconds = [TRACK_SEGMENTS * 6.0] * whole + ([rest * 6.0] if rest else [])
    return playlist(seconds, 6.0)


def measure(trace: Trace, bitrates: tuple[float, ...], content: Content) -> dict[str, Any]:
    """Every rule on one trace, and the optimum."""
    results = {name: simulate(make_rule(name), trace, bitrates, content) for name in RULES}
    best = optimum(trace, bitrates, content, reached=max(r.qoe for r in results.values()))
    return {
        "trace": trace.name,
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
    result = simulate(make_rule(name), STEP, bitrates, session(TRACK_SEGMENTS))
    top = len(bitrates) - 1
    for sent, rung in zip(result.requests_s, result.rungs, strict=True):
        if sent >= STEP_RECOVERY_S and rung == top:
            return round(sent - STEP_RECOVERY_S, 2)
    return None


def share(qoe: float, best: float) -> float | None:
    """A rule's share of the optimum; None when the optimum is not positive."""
    return qoe / best if best > 0 else None


def _report(
    folder: Path,
    bitrates: tuple[float, ...],
    content: Content,
    per_trace: list[dict[str, Any]],
    recovery: dict[str, float | None],
    seconds: float,
) -> dict[str, Any]:
    rules = {name: _rule_report(name, per_trace, recovery[name]) for name in RULES}
    default = rules[DEFAULT_RULE]
    value = default["mean_optimum_share"]
    rival = max(BASELINES, key=lambda name: rules[name]["mean_qoe"])
    recovered = default["step_recovery_s"]
    return {
        "traces": {"folder": str(folder), "count": len(per_trace), "source": ATTRIBUTION},
        "session": {
            "segments": len(content.durations_s),
            "seconds": sum(content.durations_s),
            "max_buffer_s": MAX_BUFFER_S,
            "bitrates_kbps": list(bitrates),
        },
        "optimum": {"mean_qoe": round(statistics.mean(t["optimum"] for t in per_trace), 1)},
        "rules": rules,
        "default": DEFAULT_RULE,
        "targets": {
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
            "stall_vs_bola": {
                "target": "total stall <= bola's",
                "value": default["total_stall_s"],
                "met": default["total_stall_s"] <= rules["bola"]["total_stall_s"],
            },
            "step_recovery": {
                "target": f"<= {TARGET_RECOVERY_S} s",
                "value": recovered,
                "met": recovered is not None and recovered <= TARGET_RECOVERY_S,
            },
        },
        "per_trace": per_trace,
        "seconds": round(seconds, 1),
    }


def _rule_report(
    name: str, per_trace: list[dict[str, Any]], recovery: float | None
) -> dict[str, Any]:
    runs = [t["rules"][name] for t in per_trace]
    shares = [
        s for t in per_trace if (s := share(t["rules"][name]["qoe"], t["optimum"])) is not None
    ]
    return {
        "mean_qoe": round(statistics.mean(r["qoe"] for r in runs), 1),
        "mean_optimum_share": round(statistics.mean(shares), 4) if shares else None,
        "shared_traces": len(shares),
        "total_stall_s": round(sum(r["stall_s"] for r in runs), 1),
        "mean_stall_s": round(statistics.mean(r["stall_s"] for r in runs), 2),
        "mean_switches": round(statistics.mean(r["switches"] for r in runs), 2),
        "mean_kbps": round(statistics.mean(r["mean_kbps"] for r in runs), 1),
        "mean_startup_s": round(statistics.mean(r["startup_s"] for r in runs), 2),
        "step_recovery_s": recovery,
    }


def _print(r: dict[str, Any]) -> None:
    session, targets = r["session"], r["targets"]
    rungs = "/".join(f"{b:.0f}" for b in session["bitrates_kbps"])
    print(
        f"{r['traces']['count']} traces from {r['traces']['folder']}; sessions of "
        f"{session['segments']} segments ({session['seconds'] / 60:.0f} min), max buffer "
        f"{session['max_buffer_s']:.0f} s, rungs {rungs} kbit/s; {r['seconds']} s"
    )
    print(r["traces"]["source"])
    print(
        f"{'rule':12}{'mean QoE':>10}{'of optimum':>12}{'stall s':>9}{'per trace':>10}"
        f"{'switches':>10}{'kbit/s':>8}{'startup s':>10}{'step back s':>12}"
    )
    for name, rule in r["rules"].items():
        print(
            f"{name + ('*' if name == r['default'] else ''):12}{rule['mean_qoe']:>10.0f}"
            f"{_percent(rule['mean_optimum_share']):>12}{rule['total_stall_s']:>9.1f}"
            f"{rule['mean_stall_s']:>10.2f}{rule['mean_switches']:>10.1f}{rule['mean_kbps']:>8.0f}"
            f"{rule['mean_startup_s']:>10.2f}{_seconds(rule['step_recovery_s']):>12}"
        )
    print(f"{'optimum':12}{r['optimum']['mean_qoe']:>10.0f}")
    print(
        f"* default rule; 'of optimum' averages the {r['rules'][r['default']]['shared_traces']} "
        "traces whose optimum is positive"
    )
    share, rival = targets["optimum_share"], targets["beats_baselines"]
    stall, step = targets["stall_vs_bola"], targets["step_recovery"]
    print(f"targets for {r['default']}:")
    print(f"  mean share of the optimum {_percent(share['value'])} (>= 90%): {_mark(share)}")
    print(f"  mean QoE above the best baseline, {rival['best_baseline']}: {_mark(rival)}")
    print(f"  total stall {stall['value']:.1f} s, no more than bola's: {_mark(stall)}")
    print(f"  back on the top rung {_seconds(step['value'])} s after the step: {_mark(step)}")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def _mark(target: dict[str, Any]) -> str:
    return "met" if target["met"] else "MISSED"
