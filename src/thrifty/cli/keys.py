"""``thrifty keys create|list|revoke``: virtual keys in the store ``governance`` names.

Works on the store directly, the ``keys_path`` SQLite file or PostgreSQL with
``keys_store: postgres`` (no running gateway needed); a running gateway sees a change
with its next request (see ``governance/keys/sqlite.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from thrifty.governance.keys.spec import OVERRIDABLE

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "keys",
        help="create, list and revoke virtual keys",
        description="Virtual keys: each with an owner, team, tags, allowed models, "
        "technique overrides, budgets and rate limits. Stored hashed in governance.keys_path.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print its secret (once)")
    create.add_argument("--owner")
    create.add_argument("--name", help="a label for people")
    create.add_argument("--team")
    create.add_argument("--tag", action="append", default=[], help="name=value (repeatable)")
    create.add_argument(
        "--model", action="append", help="a model the key may use (repeatable; default: all)"
    )
    for technique in OVERRIDABLE:
        create.add_argument(
            f"--{technique}", choices=("on", "off"), help=f"turn {technique} on/off for this key"
        )
    create.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="PERIOD=USD",
        help="day=5, month=100 or lifetime=1000 (repeatable)",
    )
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    listing = actions.add_parser("list", help="list keys (no secrets)")
    listing.add_argument("--active", action="store_true", help="hide revoked keys")
    revoke = actions.add_parser("revoke", help="revoke a key by its id (key-…)")
    revoke.add_argument("key_id")
    for sub in (create, listing, revoke):
        sub.add_argument("--config", required=True, metavar="FILE", help="a Thrifty config")
        sub.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)
    return parser


def _spec_data(args: argparse.Namespace) -> dict[str, Any]:
    budgets = []
    for item in args.budget:
        period, _, amount = item.partition("=")
        try:
            budgets.append({"period": period.strip(), "limit_usd": float(amount)})
        except ValueError:
            raise ValueError(f"--budget: expected PERIOD=USD, got {item!r}") from None
    overrides = {
        name: getattr(args, name) == "on" for name in OVERRIDABLE if getattr(args, name) is not None
    }
    data: dict[str, Any] = {
        "owner": args.owner,
        "name": args.name,
        "team": args.team,
        "tags": args.tag,
        "models": args.model,
        "overrides": overrides,
        "budgets": budgets,
        "requests_per_minute": args.rpm,
        "tokens_per_minute": args.tpm,
    }
    return data


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _table(keys: list[dict[str, Any]]) -> str:
    rows = [("id", "owner", "team", "tags", "models", "created", "revoked")]
    for k in keys:
        tags = ",".join(f"{n}={v}" for n, v in k["tags"].items()) or "-"
        models = ",".join(k["models"]) if k["models"] is not None else "all"
        rows.append(
            (k["id"], k["owner"] or "-", k["team"] or "-", tags, models,
             _when(k["created_at"]), _when(k["revoked_at"]))
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def run(args: argparse.Namespace) -> int:
    """0 on success; 2 on bad input (config, flags, unknown key)."""
    from pydantic import ValidationError

    from thrifty.config import load_config
    from thrifty.errors import ThriftyError
    from thrifty.governance.keys.admin import check_spec
    from thrifty.governance.keys.select import open_key_store
    from thrifty.governance.keys.spec import KeySpec
    from thrifty.registry import ModelRegistry
    from thrifty.techniques import apply_overrides

    try:
        config = load_config(args.config)
        spec = None
        if args.action == "create":
            spec = KeySpec.model_validate(_spec_data(args))
            registry = ModelRegistry.from_config(config)
            check_spec(registry, spec, lambda overrides: apply_overrides(config, overrides))
        store = open_key_store(config.governance, config.ledger)
        if store is None:
            raise ValueError(
                "virtual keys are off: set governance.keys_path (or keys_store: postgres)"
            )
    except (ValueError, ValidationError, ThriftyError) as exc:
        print(f"thrifty keys: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    try:
        if spec is not None:
            key, secret = store.create(spec)
            if args.json:
                print(json.dumps({**key.to_dict(), "key": secret}, indent=2))
            else:
                print(f"created {key.id}; its secret (shown only now):\n{secret}")
            return 0
        if args.action == "list":
            keys = [k.to_dict() for k in store.list(include_revoked=not args.active)]
            print(json.dumps(keys, indent=2) if args.json else _table(keys))
            return 0
        revoked = store.revoke(args.key_id)
        if revoked is None:
            print(f"thrifty keys: no key {args.key_id!r}", file=sys.stderr)
            return 2
        print(json.dumps(revoked.to_dict(), indent=2) if args.json else f"revoked {revoked.id}")
        return 0
    finally:
        store.close()
