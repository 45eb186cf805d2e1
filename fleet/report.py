"""What ``cadenza fleet up`` and ``status`` print, for people and for scripts. Pure."""

import json
from collections.abc import Sequence
from pathlib import Path

from fleet.plan import LABEL
from fleet.state import DEFAULT_FOLDER, LABEL_FILE
from fleet.up import ServiceStatus, UpResult


def up_text(result: UpResult, state: Path) -> str:
    services = result.services
    width = max(len(r.name) for r in services)
    lines = [f"Fleet up ({len(services)} services; pids, logs and secrets in {state}):"]
    for r in services:
        where = f"  {r.region}" if r.region else ""
        lines.append(f"  {r.kind:<8} {r.name:<{width}}  {r.url}  pid {r.pid}{where}")
    lines.append(f"  logs: {result.state.logs}/NAME.log")
    lines.append("")
    if result.api_key:
        lines.append(f"Label '{LABEL}', its API key (shown once; {result.label_note}):")
        lines.append(f"  {result.api_key}")
    else:
        lines.append(f"Label '{LABEL}': {result.label_note}.")
    origin = next(r.url for r in services if r.kind == "origin")
    locator = next(r.url for r in services if r.kind == "locator")
    where = "" if state == DEFAULT_FOLDER else f" --state {state}"
    lines += [
        "",
        "Next:",
        f"  env $(cat {state / LABEL_FILE}) cadenza ingest MASTERS... --origin {origin} "
        f"--label {LABEL}",
        f"  cadenza play TRACK_ID --locator {locator}",
        f"  cadenza fleet status{where}",
        f"  cadenza fleet down{where}",
    ]
    return "\n".join(lines)


def up_json(result: UpResult) -> str:
    return json.dumps(
        {
            "state": str(result.state.path),
            "services": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "url": r.url,
                    "pid": r.pid,
                    "log": r.log,
                    "region": r.region,
                }
                for r in result.services
            ],
            "label": {
                "name": LABEL,
                "api_key": result.api_key,  # only when this run created it
                "file": str(result.state.path / LABEL_FILE),
            },
        }
    )


def status_text(rows: Sequence[ServiceStatus]) -> str:
    width = max(len(r.name) for r in rows)
    lines = []
    for r in rows:
        health = "up" if r.ok else "DOWN"
        process = "-" if r.pid is None else f"pid {r.pid} " + ("running" if r.running else "gone")
        extra = [x for x in (r.region, _ratio(r.hit_ratio), r.detail) if x]
        lines.append(
            f"{health:<4}  {r.kind:<8} {r.name:<{width}}  {r.url:<24} {process:<18} "
            + ", ".join(extra)
        )
    down = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - down} of {len(rows)} services up")
    return "\n".join(lines)


def status_json(rows: Sequence[ServiceStatus]) -> str:
    return json.dumps(
        {
            "up": all(r.ok for r in rows),
            "services": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "url": r.url,
                    "ok": r.ok,
                    "pid": r.pid,
                    "running": r.running,
                    "healthy": r.healthy,
                    "detail": r.detail,
                    "region": r.region,
                    "hit_ratio": r.hit_ratio,
                }
                for r in rows
            ],
        }
    )


def _ratio(value: float | None) -> str:
    return "" if value is None else f"hit ratio {value:.0%}"
