"""The ``thrifty`` command."""

from __future__ import annotations

import argparse
import os
import sys

from thrifty.errors import ConfigError
from thrifty.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    from thrifty.cli import (
        batch,
        config_check,
        datasets,
        demo,
        keys,
        prices,
        replay,
        report,
        serve,
        shadow,
        tune,
        upstream,
    )

    parser = argparse.ArgumentParser(
        prog="thrifty", description="Cut the bill of LLM API calls without cutting quality."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        serve, config_check, upstream, prices, report, replay, tune, datasets, demo, batch, keys,
        shadow,
    ):  # fmt: skip
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Offline commands report through their output; per-request warnings would drown it.
    quiet = args.command in ("replay", "tune", "report", "datasets", "prices", "config", "demo",
                             "batch", "shadow")  # fmt: skip
    configure_logging("error" if quiet else "warning", "text")
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except ConfigError as exc:
        print(f"thrifty: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `thrifty report ... | head` closed the pipe: not an error
        # Python would complain once more when it flushes stdout at exit; point it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off by `head`


if __name__ == "__main__":
    sys.exit(main())
