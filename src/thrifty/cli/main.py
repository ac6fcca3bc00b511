"""The ``thrifty`` command."""

from __future__ import annotations

import argparse
import sys

from thrifty.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    from thrifty.cli import config_check, demo, prices, report, serve, upstream

    parser = argparse.ArgumentParser(
        prog="thrifty", description="Cut the bill of LLM API calls without cutting quality."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, config_check, upstream, prices, report, demo):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"thrifty: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
