"""``thrifty report``: cost and savings from the ledger, as a table or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thrifty.ledger.config import LedgerConfig
from thrifty.ledger.reports import REPORT_GROUPS, build_report, parse_since, render_table
from thrifty.ledger.stores.base import LedgerStore
from thrifty.ledger.stores.select import open_ledger_store

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "report",
        help="cost and savings from the ledger",
        description="Sum the ledger: cost, baseline cost and savings, grouped.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ledger", metavar="PATH", help="a SQLite ledger file")
    source.add_argument(
        "--config", metavar="FILE", help="a Thrifty config (its ledger: path or PostgreSQL dsn)"
    )
    parser.add_argument("--since", help="30m, 12h, 7d, 2026-11-01 or an ISO datetime (UTC)")
    parser.add_argument("--by", choices=REPORT_GROUPS, default="model", help="group rows by")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def _open_store(args: argparse.Namespace) -> LedgerStore:
    """The ledger to report on; FileNotFoundError for a missing SQLite file."""
    if args.ledger:
        config, path = LedgerConfig(), Path(args.ledger)
    else:
        from thrifty.config import load_config  # lazy: the schema pulls in every section

        config = load_config(args.config).ledger
        path = Path(config.path)
    # opening would create an empty ledger and report nothing
    if config.store == "sqlite" and not path.is_file():
        raise FileNotFoundError(f"no ledger at {path}")
    return open_ledger_store(config, path)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 on success, 2 on bad input (unreadable config, missing ledger)."""
    try:
        since = parse_since(args.since) if args.since else None
        store = _open_store(args)
    except Exception as exc:  # config/connection errors end the command, with their message
        print(f"thrifty report: {exc}", file=sys.stderr)
        return 2
    try:
        report = build_report(store, since=since, by=args.by)
    finally:
        store.close()
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0
