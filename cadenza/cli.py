"""The single ``cadenza`` command; each component adds its own subcommand."""

import argparse
import importlib
import sys
from collections.abc import Sequence

from cadenza import __version__, log
from cadenza.errors import CadenzaError, ConfigError

# Which component registers each command, in the order ``--help`` lists them. Only the module
# of the command being run is imported: every component imported takes start-up time (aiohttp,
# matplotlib), and a service started by systemd or ``cadenza fleet up`` should not pay for
# the benchmarks.
COMMANDS = {
    "ingest": "encoder.cli",
    "origin": "origin.cli",
    "catalog": "origin.cli",
    "edge": "edge.cli",
    "locator": "locator.cli",
    "play": "player.cli",
    "offline": "player.offline",
    "bench": "bench.cli",
    "fleet": "fleet.cli",
    "plays": "plays.cli",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line; with ``argv``, only the component of the command it names (all of
    them when it names none, for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="cadenza",
        description="Cadenza: encode, store, cache and deliver music over HLS.",
    )
    parser.add_argument("--version", action="version", version=f"cadenza {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[named]] if named in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        module = importlib.import_module(name)
        register = getattr(module, "add_parsers", None) or module.add_parser
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    log.configure(args.verbose)
    try:
        code: int = args.run(args)
    except ConfigError as e:
        print(f"cadenza: error: {log.redact(str(e))}", file=sys.stderr)
        return ConfigError.exit_code
    except CadenzaError as e:
        print(f"cadenza: error: {log.redact(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cadenza: interrupted; nothing partial was published", file=sys.stderr)
        return 130
    return code
