"""``thrifty replay``: what the configured pipeline would cost and keep, on recorded traffic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from thrifty.cli.replay_common import read_dataset, read_raw_config
from thrifty.config import parse_config
from thrifty.config.schema import ThriftyConfig
from thrifty.governance.keys.identity import Caller
from thrifty.governance.keys.select import open_key_store
from thrifty.replay.html import render_html
from thrifty.replay.references import model_matrix, reference_points
from thrifty.replay.report import baseline_rows, build_report
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import render_table, summarize


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "replay", help="run the pipeline over recorded requests: savings and quality, offline"
    )
    parser.add_argument(
        "--dataset", required=True, help="JSON Lines file, or 'arena-bench' (shipped)"
    )
    parser.add_argument("--config", required=True, help="Thrifty config to evaluate")
    parser.add_argument("--limit", type=int, help="replay only the first N requests")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", metavar="OUT", help="write a self-contained HTML report")
    parser.add_argument(
        "--key",
        metavar="KEY_ID",
        help="replay as this virtual key (from the config's key store): its technique "
        "overrides, allowed models, team, tags and budgets; rate limits are not simulated",
    )
    parser.set_defaults(func=run)


def _caller(config: ThriftyConfig, key_id: str) -> Caller:
    """The virtual key ``key_id`` as a caller; exits with a clear message when it is not there."""
    store = open_key_store(config.governance, config.ledger)
    if store is None:
        raise SystemExit(
            "thrifty replay: --key needs virtual keys: set governance.keys_path "
            "(or keys_store: postgres) in the config"
        )
    try:
        key = store.get(key_id)
    finally:
        store.close()
    if key is None:
        raise SystemExit(f"thrifty replay: no virtual key {key_id!r} in the key store")
    if not key.active:
        raise SystemExit(f"thrifty replay: the virtual key {key_id!r} is revoked")
    return key.caller()


def run(args: argparse.Namespace) -> int:
    records = read_dataset(args.dataset, args.limit)
    config = parse_config(read_raw_config(args.config), base_dir=Path(args.config).resolve().parent)
    baseline_model = config.baseline_model or config.default_model
    if baseline_model is None:
        raise SystemExit("thrifty replay: the config needs baseline_model or default_model")
    caller = _caller(config, args.key) if args.key else None
    baseline = replay(records, without_techniques(config, baseline_model))
    actual = replay(records, config, caller)
    summary = summarize(actual, baseline, baseline_model)
    if args.html:
        references = reference_points(
            model_matrix(records, config), baseline, baseline_rows(baseline), summary["actual_cost"]
        )
        title = f"Thrifty replay — {Path(args.dataset).name} ({len(records)} requests)"
        Path(args.html).write_text(render_html(build_report(title, summary, references)))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_table(summary))
        if args.html:
            print(f"\nHTML report: {args.html}")
    return 0
