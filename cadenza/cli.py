"""The single ``cadenza`` command; each component adds its own subcommand."""

import argparse
import sys
from collections.abc import Sequence

from cadenza import __version__, log
from cadenza.errors import CadenzaError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    from bench import cli as bench_cli
    from edge import cli as edge_cli
    from encoder import cli as encoder_cli
    from fleet import cli as fleet_cli
    from locator import cli as locator_cli
    from origin import cli as origin_cli
    from player import cli as player_cli

    parser = argparse.ArgumentParser(
        prog="cadenza",
        description="Cadenza: encode, store, cache and deliver music over HLS.",
    )
    parser.add_argument("--version", action="version", version=f"cadenza {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    encoder_cli.add_parser(commands)
    origin_cli.add_parsers(commands)
    edge_cli.add_parser(commands)
    locator_cli.add_parser(commands)
    player_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    fleet_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
