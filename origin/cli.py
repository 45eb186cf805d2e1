"""``cadenza origin`` (serve, add-label) and ``cadenza catalog takedown``."""

import argparse
import asyncio
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cadenza import log, serving
from cadenza.errors import CadenzaError, ConfigError
from cadenza.settings import add_flags, flags
from origin.catalog import Catalog
from origin.errors import LabelExists, NotFound
from origin.settings import ENV_OPERATOR_KEY, OriginSettings, load_settings

ORIGIN_DESCRIPTION = """\
Serve published tracks under /tracks/ (ETag, Range, gzip playlists, immutable caching),
take label uploads (/v1/tracks/{id}/versions/...), answer catalog and rights queries,
publish takedown events (/v1/events) and Prometheus metrics (/metrics).
"""


def add_parsers(commands: Any) -> None:
    origin = commands.add_parser(
        "origin",
        help="run the origin, or manage its labels",
        description=ORIGIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _settings_options(origin)
    add_flags(origin, OriginSettings, ["listen"])
    origin.set_defaults(run=run_origin)
    actions = origin.add_subparsers(dest="action", metavar="ACTION")
    add_label = actions.add_parser(
        "add-label", help="create a label and print its API key once",
        description="Create a label; its API key is printed once and stored only hashed.",
    )  # fmt: skip
    add_label.add_argument("name", help="label name: lowercase letters, digits, '-' and '_'")
    _settings_options(add_label)
    add_label.set_defaults(run=run_add_label)
    check = actions.add_parser(
        "fsck",
        help="check that the catalog, the stored objects and the master playlists agree",
        description="Check every published object (present, with its size and SHA-256), every "
        "master playlist (names the catalog's current version) and temp files of killed "
        "uploads (none older than an hour). Exit 0 when all agree, 1 when something is wrong. "
        "--repair rewrites masters and metadata.json from the catalog, removes stale temp "
        "files, and makes missing or damaged objects uploadable again (a re-ingest sends them); "
        "repair while the origin is stopped, or publishes may race the rewritten masters.",
    )
    _settings_options(check)
    check.add_argument("--repair", action="store_true", help="fix what the catalog can rebuild")
    check.add_argument("--json", action="store_true", help="print one JSON document")
    check.set_defaults(run=run_fsck)

    catalog = commands.add_parser("catalog", help="manage the catalog (takedowns)")
    catalog_actions = catalog.add_subparsers(dest="action", required=True, metavar="ACTION")
    takedown = catalog_actions.add_parser(
        "takedown",
        help="withdraw a track everywhere or in one territory",
        description="Withdraw a track (globally, or in --territory) and publish the event that "
        "edges and locators consume. Talks to a running origin (--origin, with the operator key "
        f"in --operator-key or {ENV_OPERATOR_KEY}) or writes the catalog directly (--data-dir).",
    )
    takedown.add_argument("track_id")
    takedown.add_argument("--territory", metavar="CC", help="ISO 3166 alpha-2 code; default: all")
    where = takedown.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--origin", metavar="URL", help="a running origin, e.g. http://127.0.0.1:8080"
    )
    where.add_argument("--data-dir", type=Path, metavar="DIR", help="the origin's data directory")
    takedown.add_argument("--operator-key", metavar="KEY", help=f"default: ${ENV_OPERATOR_KEY}")
    takedown.set_defaults(run=run_takedown)


def _settings_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="settings TOML (configs/origin.toml)"
    )
    parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="a fleet file (configs/fleet.toml): the origin's listen address and data folder",
    )
    parser.add_argument(
        "--id",
        dest="origin_id",
        metavar="ORIGIN_ID",
        help="this origin in --fleet (default: the first)",
    )
    add_flags(parser, OriginSettings, ["data_dir"])


def _settings(args: argparse.Namespace) -> OriginSettings:
    given = flags(args, [k for k in ("listen", "data_dir") if hasattr(args, k)]).table
    return load_settings(args.config, fleet=args.fleet, origin_id=args.origin_id, **given)


def run_origin(args: argparse.Namespace) -> int:
    from origin.app import create_app

    settings = _settings(args)
    log.hide(filter(None, (settings.operator_key, settings.storage.secret_access_key)))
    log.hide(filter(None, [urlsplit(settings.catalog or "").password]))
    service = serving.Service(
        "cadenza origin", settings.host, settings.port,
        head_timeout=settings.head_timeout, keepalive_timeout=settings.keepalive_timeout,
    )  # fmt: skip
    return serving.run_service(create_app(settings), service)


def run_add_label(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def add() -> str:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = await Catalog.open(settings.catalog_location)
        try:
            return await catalog.add_label(args.name)
        finally:
            await catalog.close()

    try:
        key = asyncio.run(add())
    except LabelExists:
        raise ConfigError(
            f"label {args.name!r} exists already; its key was shown when it was created"
        ) from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(key)
    return 0


def run_fsck(args: argparse.Namespace) -> int:
    from origin import fsck
    from origin.publish import TrackLocks
    from origin.storage import open_storage

    settings = _settings(args)
    if settings.catalog is None and not settings.catalog_path.is_file():
        raise ConfigError(f"{settings.data_dir}: no catalog here (expected catalog.sqlite3)")

    async def run() -> dict[str, Any]:
        storage = await open_storage(settings.storage)
        try:
            catalog = await Catalog.open(settings.catalog_location)
            try:
                findings = await fsck.check(catalog, storage)
                repaired = (
                    await fsck.repair(catalog, storage, TrackLocks(), findings)
                    if args.repair
                    else []
                )
            finally:
                await catalog.close()
        finally:
            await storage.close()
        return fsck.report(findings, repaired)

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        repaired = {(f["problem"], f["key"]) for f in report["repaired"]}
        for finding in report["findings"]:
            mark = " (repaired)" if (finding["problem"], finding["key"]) in repaired else ""
            print(f"{finding['problem']}: {finding['key']}: {finding['detail']}{mark}")
        left = len(report["findings"]) - len(repaired)
        print(
            "fsck: catalog, objects and masters agree"
            if report["ok"]
            else f"fsck: {left} problems left"
        )
    return 0 if report["ok"] else 1


def run_takedown(args: argparse.Namespace) -> int:
    if args.origin:
        key = args.operator_key or os.environ.get(ENV_OPERATOR_KEY)
        if not key:
            raise ConfigError(
                f"--origin needs the operator key: --operator-key or ${ENV_OPERATOR_KEY}"
            )
        result = _post_json(
            f"{args.origin.rstrip('/')}/v1/admin/takedown",
            {"track_id": args.track_id, "territory": args.territory},
            key,
        )
        seq = result["event"]
    else:
        seq = asyncio.run(_takedown_local(args.data_dir, args.track_id, args.territory))
    where = args.territory or "every territory"
    print(f"track {args.track_id} taken down in {where} (event {seq})")
    return 0


async def _takedown_local(data_dir: Path, track_id: str, territory: str | None) -> int:
    catalog_path = load_settings(None, environ={}, data_dir=data_dir).catalog_path
    if not catalog_path.is_file():
        raise ConfigError(f"{data_dir}: no catalog here (expected {catalog_path.name})")
    catalog = await Catalog.open(catalog_path)
    try:
        return await catalog.takedown(track_id, territory)
    except NotFound:
        raise CadenzaError(f"no track {track_id} in the catalog") from None
    except ValueError:
        raise ConfigError(f"--territory {territory!r} is not an ISO 3166 alpha-2 code") from None
    finally:
        await catalog.close()


def _post_json(url: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace").strip()
        raise CadenzaError(f"{url} answered {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        raise CadenzaError(f"cannot reach {url} ({e.reason}); is the origin running?") from None
