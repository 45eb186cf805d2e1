"""``cadenza bench conformance``: the public HTTP cache conformance suite, the edge and nginx.

The suite (http-tests/cache-tests, the one behind cache-tests.fyi) sends its tests through a
cache to its own test origin and checks what the origin saw and what the client got; its own
scoring (``determineTestResult``) names each test pass, fail, optional_fail, yes/no (checks),
or a setup, harness or dependency failure. One run, all caches side by side, each with an origin
of its own:

- the edge in generic mode (``--generic --allow-unsigned``) with its default workers, and with
  1 and 2 workers: a shared cache must not answer differently because a request met another
  worker, so every test whose result differs between those runs is listed;
- nginx as a default caching proxy (``proxy_cache``, nothing tuned).

Targets: the edge passes more tests than nginx and fails at most 20 required ones. Published
passes for reference: Apache Traffic Server 202, nginx 158 (this nginx 1.22 config: 151).

The suite is read from --suite (default: ../shared/cache-tests beside the project), copied to a
temporary folder, and given its npm dependencies from build/cache-tests/, installed once per
package.json; nothing else is downloaded.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import conformance_report as report
from bench.conformance_caches import (
    CACHE_LABEL_NGINX,
    Launched,
    launch,
    start_edge,
    start_nginx,
    stop,
    wait_for_url,
)
from cadenza.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = ROOT.parent / "shared" / "cache-tests"
MODULES = ROOT / "build" / "cache-tests"
SCRIPT = Path(__file__).with_name("cache_tests.mjs")
SUITE_FILES = (
    "package.json",
    "test-engine/cli.mjs",
    "test-engine/client/runner.mjs",
    "test-engine/server/server.mjs",
    "test-engine/lib/results.mjs",
    "tests/index.mjs",
)
INSTALL_SECONDS = 600.0
SCORE_SECONDS = 60.0
DEFAULT_TIMEOUT = 300.0  # a full run takes about 65 s; a cache that hangs every request, longer
MAX_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Plan:
    suite: Path
    workers: tuple[int | None, ...]  # one edge run per entry; None: the edge's default
    nginx: bool
    tests: tuple[str, ...]  # empty: the whole suite
    timeout: float
    modules: Path = MODULES
    install: bool = True  # npm install when build/ has no node_modules for this package.json
    sequential: bool = False  # one cache after another, to rule out that runs disturb each other


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "conformance",
        help="the HTTP cache conformance suite (cache-tests.fyi) against the edge and nginx",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite", type=Path, default=DEFAULT_SUITE, metavar="DIR",
        help="a copy of http-tests/cache-tests (default: ../shared/cache-tests)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", default="default,1,2", metavar="LIST",
        help="edge worker counts, one run each; 'default' is the edge's own (default: "
        "default,1,2); results of every run are compared; 'none' runs no edge",
    )  # fmt: skip
    parser.add_argument("--no-nginx", action="store_true", help="leave nginx out")
    parser.add_argument(
        "--tests", default="", metavar="IDS",
        help="comma-separated test ids (default: all); a test whose dependency is left out "
        "scores dependency_fail",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"per run of the suite's client (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    parser.add_argument(
        "--offline", action="store_true",
        help="never run npm install: fail if build/ lacks the suite's dependencies",
    )  # fmt: skip
    parser.add_argument(
        "--sequential", action="store_true",
        help="run the caches one after another (about a minute each) instead of side by side",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", type=Path, metavar="DIR", help="also write DIR/conformance.json")
    parser.set_defaults(run=run)


def parse_workers(text: str) -> tuple[int | None, ...]:
    """``default,1,2`` -> (None, 1, 2); ``none`` -> ()."""
    if text.strip().lower() == "none":
        return ()
    counts: list[int | None] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if item == "default":
            counts.append(None)
        elif item.isdigit() and 1 <= int(item) <= 256:
            counts.append(int(item))
        else:
            raise ConfigError(
                f"--workers {text!r}: {item!r} is neither 'default' nor a count from 1 to 256"
            )
    if len(set(counts)) != len(counts):
        raise ConfigError(f"--workers {text!r}: each worker count once")
    return tuple(counts)


def edge_label(workers: int | None) -> str:
    return "cadenza" if workers is None else f"cadenza-w{workers}"


def run(args: argparse.Namespace) -> int:
    if not 0 < args.timeout <= MAX_TIMEOUT:
        raise ConfigError(f"--timeout {args.timeout}: seconds from 0 to {MAX_TIMEOUT:g}")
    plan = Plan(
        suite=args.suite,
        workers=parse_workers(args.workers),
        nginx=not args.no_nginx,
        tests=tuple(t.strip() for t in args.tests.split(",") if t.strip()),
        timeout=args.timeout,
        install=not args.offline,
        sequential=args.sequential,
    )
    if not plan.workers and not plan.nginx:
        raise ConfigError("--workers none with --no-nginx leaves nothing to test")
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-conformance-") as scratch:
        doc = measure(plan, Path(scratch))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "conformance.json").write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2) if args.json else report.render(doc))
    return 0


def measure(plan: Plan, scratch: Path) -> dict[str, Any]:
    """Run the suite through every cache of the plan; the report as one document."""
    _check_tools(plan)
    _check_suite(plan.suite)
    suite = scratch / "suite"
    _copy_suite(plan.suite, suite, node_modules(plan.suite, plan.modules, plan.install))
    catalogue = score(suite, scratch / "none.json", {})
    unknown = sorted(set(plan.tests) - catalogue.keys())
    if unknown:
        raise ConfigError(f"--tests: the suite has no test {', '.join(unknown)}")
    labels = [edge_label(w) for w in plan.workers] + ([CACHE_LABEL_NGINX] if plan.nginx else [])
    started = time.monotonic()
    results, notes = _run_all(plan, suite, scratch, labels)
    seconds = time.monotonic() - started
    wanted = set(plan.tests) or catalogue.keys()
    runs = {}
    for label in labels:
        scored = score(suite, scratch / f"{label}.json", results[label])
        runs[label] = {test_id: s for test_id, s in scored.items() if test_id in wanted}
    edge_run = labels[0] if plan.workers else None
    setup = {
        "suite": str(plan.suite),
        "tests": len(wanted),
        "seconds": round(seconds, 1),
        "edge_run": edge_run,
        "edge_workers": {edge_label(w): w or "default" for w in plan.workers},
        "cores": os.cpu_count(),
        "plan": {**asdict(plan), "suite": str(plan.suite), "modules": str(plan.modules)},
        "notes": notes,
    }
    edge_runs = [edge_label(w) for w in plan.workers]
    return report.summary(setup, runs, results, edge_runs, edge_run)


def _run_all(
    plan: Plan, suite: Path, scratch: Path, labels: list[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every cache with its own origin, all at once unless sequential; results and notes."""
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for batch in [[label] for label in labels] if plan.sequential else [labels]:
        with ExitStack() as stack:
            runs = {label: _start_run(stack, plan, suite, scratch / label) for label in batch}
            deadline = time.monotonic() + plan.timeout
            for label, (cache, client) in runs.items():
                results[label], note = _collect(client, deadline)
                if cache.popen.poll() is not None:
                    note += f" the cache exited with code {cache.popen.returncode}: {cache.tail()}"
                if note:
                    notes.append(f"{label}:{note}")
    return results, notes


def _start_run(
    stack: ExitStack, plan: Plan, suite: Path, folder: Path
) -> tuple[Launched, Launched]:
    """The suite's origin, the cache named by ``folder``, and the client; (cache, client)."""
    folder.mkdir()
    origin = _start_origin(stack, suite, folder)
    if folder.name == CACHE_LABEL_NGINX:
        cache = start_nginx(stack, folder, origin)
    else:
        workers = {edge_label(w): w for w in plan.workers}[folder.name]
        cache = start_edge(stack, folder, origin, workers)
    return cache, _start_client(stack, suite, folder, cache.url, plan.tests)


def _start_origin(stack: ExitStack, suite: Path, folder: Path) -> str:
    env = _environment(
        npm_config_port="0", npm_config_protocol="http", npm_config_pidfile=str(folder / "pid")
    )
    origin = launch(
        stack, "the suite's origin", ["node", SCRIPT, "origin", suite],
        folder / "origin.log", cwd=suite, env=env,
    )  # fmt: skip
    return wait_for_url(origin)


def _start_client(
    stack: ExitStack, suite: Path, folder: Path, base: str, tests: tuple[str, ...]
) -> Launched:
    if tests:
        command: list[str | Path] = ["node", SCRIPT, "client", suite, base, *tests]
    else:  # the suite's own command line, as its published results were made
        command = ["node", "--no-warnings", suite / "test-engine" / "cli.mjs"]
    env = _environment(npm_config_base=base, npm_package_config_id="")
    return launch(
        stack, "the suite's client", command, folder / "client.log", cwd=suite, env=env,
        stdout=folder / "results.out",
    )  # fmt: skip


def _collect(client: Launched, deadline: float) -> tuple[dict[str, Any], str]:
    """The client's results, or none and why."""
    try:
        client.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        stop(client.popen)
        return {}, " the suite's client did not finish within --timeout; no results."
    assert client.stdout is not None
    text = client.stdout.read_text()
    if client.popen.returncode != 0 or not text.strip():
        return {}, f" the suite's client failed ({client.popen.returncode}): {client.tail()}"
    return report.parse_results(text, "the suite's client"), ""


def score(suite: Path, path: Path, results: dict[str, Any]) -> dict[str, report.Score]:
    """Every test of the suite scored by its own ``determineTestResult`` (``results`` are
    written to ``path`` for it)."""
    path.write_text(json.dumps(results))
    scored = subprocess.run(
        ["node", str(SCRIPT), "score", str(suite), str(path)],
        capture_output=True, text=True, timeout=SCORE_SECONDS, env=_environment(),
    )  # fmt: skip
    if scored.returncode != 0:
        raise report.SuiteOutputError(f"scoring {path.name} failed: {scored.stderr[-1000:]}")
    return report.parse_scores(scored.stdout, f"the suite's scoring of {path.name}")


def _environment(**extra: str) -> dict[str, str]:
    # Loopback only: a proxy from the environment must not sit between the client and a cache.
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def _check_tools(plan: Plan) -> None:
    needed = ["node"] + (["nginx"] if plan.nginx else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"cadenza bench conformance needs {' and '.join(missing)}: run 'make setup' as root "
            "(Debian packages nodejs, npm, nginx-light)"
        )


def _check_suite(suite: Path) -> None:
    missing = [name for name in SUITE_FILES if not (suite / name).is_file()]
    if missing:
        raise ConfigError(
            f"--suite {suite}: not a copy of http-tests/cache-tests (no {', '.join(missing)}); "
            "point --suite at one"
        )


def modules_key(suite: Path) -> str:
    """The npm dependencies depend only on package.json (the suite ships no lock file)."""
    return hashlib.sha256((suite / "package.json").read_bytes()).hexdigest()[:16]


def node_modules(suite: Path, cache: Path, install: bool) -> Path:
    """The suite's runtime dependencies, installed once per package.json under ``cache``."""
    target = cache / modules_key(suite)
    if (target / "node_modules").is_dir():
        return target / "node_modules"
    if not install:
        raise ConfigError(
            f"no npm dependencies for the suite in {cache}: run 'make setup' or "
            "'cadenza bench conformance' once"
        )
    if shutil.which("npm") is None:
        raise ConfigError("cadenza bench conformance needs npm once: run 'make setup' as root")
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        shutil.copyfile(suite / "package.json", staging / "package.json")
        print(f"installing the suite's npm dependencies into {target}", file=sys.stderr)
        try:
            installed = subprocess.run(
                ["npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging, capture_output=True, text=True, timeout=INSTALL_SECONDS,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"npm install for the suite took over {INSTALL_SECONDS:g} s: is the npm "
                "registry reachable?"
            ) from None
        if installed.returncode != 0:
            raise ConfigError(f"npm install for the suite failed: {installed.stderr[-1000:]}")
        try:
            staging.rename(target)
        except OSError:  # another run installed it meanwhile
            if not (target / "node_modules").is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


def _copy_suite(source: Path, target: Path, modules: Path) -> None:
    """A writable copy (the source may be read-only) with the shared node_modules linked in."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", ".git"))
    for folder, _, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    (target / "node_modules").symlink_to(modules, target_is_directory=True)
