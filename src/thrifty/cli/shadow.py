"""``thrifty shadow status``: what shadow evaluation has collected, and what it projects.

Reads the ledger (SQLite): samples and grades per candidate model, the shadow spend
(evaluation cost), and — once enough requests are shadowed — a ``tune`` on them: the
projected savings at the target quality with its 95% interval. When the interval is
tight enough it says so, and ``--out`` writes the tuned config for review (the same file
``thrifty tune --from-ledger`` writes). Promotion stays a human step.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from thrifty.cli.replay_common import read_raw_config
from thrifty.errors import ConfigError
from thrifty.ledger.reports import parse_since
from thrifty.ledger.shadow_summary import shadow_summary
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.recordings.dataset import ReplayRecord

__all__ = ["MIN_SAMPLES", "add_parser", "collected", "project", "routing_to_tune", "run"]

MIN_SAMPLES = 10
"""Fewer shadowed requests than this give no projection (folds would be a row or two)."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser = subparsers.add_parser("shadow", help="shadow evaluation: what it has collected")
    commands = parser.add_subparsers(dest="shadow_command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status", help="samples per model, spend, grades, projected savings at the target"
    )
    status.add_argument("--config", required=True, help="the gateway's config")
    status.add_argument("--ledger", metavar="PATH", help="ledger file (default: ledger.path)")
    status.add_argument("--since", help="30m, 12h, 7d, 2026-11-01 or an ISO datetime (UTC)")
    status.add_argument("--target-quality", type=float, default=0.95)
    status.add_argument(
        "--ready-width", type=float, default=10.0,
        help="the savings interval (points) under which the projection is called tight enough",
    )  # fmt: skip
    status.add_argument("--out", help="when tight enough, write the tuned config here")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=run)
    return parser


def collected(store: SqliteLedgerStore, since: float | None) -> dict[str, Any]:
    """Samples, failures, mean grades per candidate model, and the shadow spend."""
    return shadow_summary(store, since)


def routing_to_tune(raw: dict[str, Any], records: list[ReplayRecord]) -> dict[str, Any]:
    """``raw`` as written when it routes already; else with learned threshold routing over
    the models the shadow collected (what the projection tunes)."""
    from thrifty.replay.search import deep_merge

    if (raw.get("routing") or {}).get("enabled"):
        return raw
    models = sorted({m for r in records for m in r.answers})
    routing = {"enabled": True, "strategy": "threshold", "classifier": "learned",
               "candidates": models}  # fmt: skip
    return deep_merge(raw, {"routing": routing})


def project(records: list[ReplayRecord], raw: dict[str, Any], target: float, base_dir: Path) -> Any:
    """A ``tune`` on the shadowed requests (its held-out estimate is the projection)."""
    from thrifty.replay.tuner import tune

    return tune(records, raw, target, base_dir=base_dir)


def run(args: argparse.Namespace) -> int:
    from thrifty.config import parse_config
    from thrifty.replay.importers.ledger import import_ledger

    raw = read_raw_config(args.config)
    base_dir = Path(args.config).resolve().parent
    ledger = Path(args.ledger or parse_config(raw, base_dir=base_dir).ledger.path)
    if not ledger.is_file():
        print(f"thrifty shadow status: no ledger at {ledger}", file=sys.stderr)
        return 2
    since = parse_since(args.since) if args.since else None
    store = SqliteLedgerStore(ledger)
    try:
        output = collected(store, since)
    finally:
        store.close()
    records = import_ledger(ledger, since, shadowed_only=True)
    output["projection"] = None
    if len(records) >= MIN_SAMPLES:
        raw = routing_to_tune(raw, records)
        try:
            result = project(records, raw, args.target_quality, base_dir)
        except (ValueError, ConfigError) as exc:
            output["projection"] = {"error": str(exc)}
        else:
            held = result.held_out
            low, high = held["savings_pct_ci"] or [0.0, float("inf")]
            ready = high - low <= args.ready_width
            output["projection"] = {
                "chosen": result.chosen.candidate.label, "rows": held["rows"],
                "target_quality": args.target_quality, "savings_pct": held["savings_pct"],
                "savings_pct_ci": held["savings_pct_ci"],
                "quality_retained": held["quality_retained"],
                "quality_retained_ci": held["quality_retained_ci"], "ready": ready,
            }  # fmt: skip
            if ready and args.out:
                from thrifty.cli.tune import write_tuned

                write_tuned(raw, result, args.out, base_dir)
                output["projection"]["wrote"] = args.out
    if args.json:
        print(json.dumps(output, indent=2))
    else:
        print(render(output, len(records)))
    return 0


def render(output: dict[str, Any], shadowed: int) -> str:
    lines = [
        f"shadowed requests: {output['shadowed_requests']}   shadow spend: "
        f"${output['spend_usd']:.4f} (today ${output['spend_today_usd']:.4f})",
        "",
        f"{'model':<40} {'samples':>7} {'errors':>6} {'graded':>6} {'quality':>8} {'vs served':>9}",
    ]
    for name, m in output["models"].items():
        quality = "-" if m["mean_quality"] is None else f"{m['mean_quality']:.3f}"
        ratio = "-" if m["quality_vs_served"] is None else f"{m['quality_vs_served']:.3f}"
        lines.append(
            f"{name:<40} {m['samples']:>7} {m['errors']:>6} {m['graded']:>6} {quality:>8} "
            f"{ratio:>9}"
        )
    projection = output["projection"]
    lines.append("")
    if projection is None:
        lines.append(
            f"projection: needs at least {MIN_SAMPLES} shadowed requests ({shadowed} so far)"
        )
    elif "error" in projection:
        lines.append(f"projection: {projection['error']}")
    else:
        low, high = projection["savings_pct_ci"] or [float("nan")] * 2
        lines.append(
            f"projected at quality retained ≥ {projection['target_quality']}: savings "
            f"{projection['savings_pct']:.1f}% (95% CI {low:.1f}–{high:.1f}), quality "
            f"retained {(projection['quality_retained'] or 0):.3f} ({projection['chosen']}; "
            f"{projection['rows']} held-out rows)"
        )
        if projection["ready"]:
            lines.append(
                "the interval is tight enough: review "
                + (projection.get("wrote") or "the config `thrifty tune --from-ledger` writes")
                + " and promote it by hand"
            )
        else:
            lines.append("the interval is still wide: keep shadowing")
    return "\n".join(lines)
