"""``thrifty replay``: what the configured pipeline would cost and keep, on recorded traffic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from thrifty.cli.replay_common import read_dataset, read_raw_config
from thrifty.config import parse_config
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    records = read_dataset(args.dataset, args.limit)
    config = parse_config(read_raw_config(args.config), base_dir=Path(args.config).resolve().parent)
    baseline_model = config.baseline_model or config.default_model
    if baseline_model is None:
        raise SystemExit("thrifty replay: the config needs baseline_model or default_model")
    baseline = replay(records, without_techniques(config, baseline_model))
    actual = replay(records, config)
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
