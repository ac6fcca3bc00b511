"""``thrifty prices``: inspect a model's prices, or install a fresher price file.

::

    thrifty prices show gpt-4o-mini [--provider openai] [--json]
    thrifty prices update --from model_prices.json [--to ~/.thrifty/prices.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from thrifty.errors import ConfigError
from thrifty.pricing import ModelPrice, PriceCatalogue, default_user_prices_path
from thrifty.pricing.catalogue import PriceTier

__all__ = ["add_parser", "run"]

_PER_MILLION = 1_000_000
_TIER_FIELDS = [f for f in PriceTier.__slots__ if f != "above"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``prices`` to a ``parser.add_subparsers()`` result; dispatch via ``args.func``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prices", help="show model prices or install a newer price file"
    )
    commands = parser.add_subparsers(dest="prices_command", metavar="COMMAND", required=True)

    show = commands.add_parser("show", help="prices, context window and capabilities of MODEL")
    show.add_argument("model", metavar="MODEL")
    show.add_argument("--provider", help="provider hint, e.g. deepseek for deepseek-chat")
    show.add_argument("--json", action="store_true", help="print JSON (USD per 1M tokens)")

    update = commands.add_parser("update", help="install a litellm-format price file")
    update.add_argument(
        "--from",
        dest="from_file",
        required=True,
        metavar="FILE",
        help="litellm model_prices_and_context_window JSON (plain or .gz)",
    )
    update.add_argument(
        "--to",
        dest="to_path",
        metavar="PATH",
        help="where to write it (default ~/.thrifty/prices.json)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``thrifty prices``; returns the process exit code."""
    if args.prices_command == "show":
        return _show(args.model, args.provider, as_json=args.json)
    if args.prices_command == "update":
        return _update(Path(args.from_file), args.to_path)
    print(f"thrifty prices: unknown command {args.prices_command!r}", file=sys.stderr)
    return 2


def _show(model: str, provider: str | None, *, as_json: bool) -> int:
    try:
        catalogue = PriceCatalogue.default()
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    price = catalogue.lookup(model, provider_hint=provider)
    if price is None:
        matches = catalogue.suggest(model)
        where = "the bundled catalogue" if catalogue.source == "catalogue" else catalogue.source
        zero = (
            " It is listed at $0, which Thrifty counts as unknown (many paid services are)."
            if catalogue.zero_priced(model)
            else ""
        )
        hint = f"Close matches: {', '.join(matches)}." if matches else "No close matches."
        print(
            f"error: no price known for model {model!r} in {where}.{zero} {hint}\n"
            "(Set models.<name>.price: {input: ..., output: ...} (USD per 1M tokens), "
            "models.<name>.catalogue_name: <a close match> or models.<name>.free: true in "
            "the Thrifty config, or install a newer litellm-format price file with "
            "`thrifty prices update --from FILE`.)",
            file=sys.stderr,
        )
        return 1
    if as_json:
        print(json.dumps(_as_dict(price), indent=2))
    else:
        print(_as_text(price))
    return 0


def _per_million(value: float | None) -> float | None:
    """Per-token price as USD per 1M tokens, without float noise (0.15, not 0.15000000000000002)."""
    return None if value is None else float(f"{value * _PER_MILLION:.10g}")


def _as_dict(price: ModelPrice) -> dict[str, Any]:
    return {
        "name": price.name,
        "provider": price.provider,
        "mode": price.mode,
        "source": price.source,
        "usd_per_million_tokens": {
            "input": _per_million(price.input_per_token),
            "cached_input": _per_million(price.cached_input_per_token),
            "cache_write": _per_million(price.cache_write_per_token),
            "output": _per_million(price.output_per_token),
            "reasoning": _per_million(price.reasoning_per_token),
            "batch_input": _per_million(price.batch_input_per_token),
            "batch_output": _per_million(price.batch_output_per_token),
            "batch_cached_input": _per_million(price.batch_cached_input_per_token),
        },
        "usd_per_million_tokens_more": {
            "cache_write_1h": _per_million(price.cache_write_1h_per_token),
            "audio_input": _per_million(price.audio_input_per_token),
            "audio_output": _per_million(price.audio_output_per_token),
            "image_input": _per_million(price.image_input_per_token),
            "image_output": _per_million(price.image_output_per_token),
        },
        "usd_per_request": price.per_request,
        "tiers": [
            {
                "above_prompt_tokens": tier.above,
                **{
                    field.removesuffix("_per_token"): _per_million(value)
                    for field in _TIER_FIELDS
                    if (value := getattr(tier, field)) is not None
                },
            }
            for tier in price.tiers
        ],
        "max_input_tokens": price.max_input_tokens,
        "max_output_tokens": price.max_output_tokens,
        "capabilities": sorted(price.capabilities),
    }


def _as_text(price: ModelPrice) -> str:
    def usd(value: float | None, fallback: str) -> str:
        per_m = _per_million(value)
        return fallback if per_m is None else f"${per_m:g} / 1M tokens"

    def tokens(value: int | None) -> str:
        return "unknown" if value is None else f"{value:,}"

    about = ", ".join(part for part in (price.provider, price.mode) if part)
    rows = [
        ("input", usd(price.input_per_token, "")),
        ("cached input", usd(price.cached_input_per_token, "not known (input price used)")),
        ("cache write", usd(price.cache_write_per_token, "not known (input price used)")),
        ("output", usd(price.output_per_token, "")),
        ("reasoning", usd(price.reasoning_per_token, "same as output")),
        ("batch input", usd(price.batch_input_per_token, "no batch price known")),
        ("batch output", usd(price.batch_output_per_token, "no batch price known")),
        ("batch cached", usd(price.batch_cached_input_per_token, "no batch price known")),
        ("context window", tokens(price.max_input_tokens) + " tokens"),
        ("max output", tokens(price.max_output_tokens) + " tokens"),
        ("capabilities", ", ".join(sorted(price.capabilities)) or "none listed"),
    ]
    more = [
        ("cache write 1h", price.cache_write_1h_per_token),
        ("audio input", price.audio_input_per_token),
        ("audio output", price.audio_output_per_token),
        ("image input", price.image_input_per_token),
        ("image output", price.image_output_per_token),
    ]
    rows[3:3] = [(label, usd(value, "")) for label, value in more if value is not None]
    if price.per_request is not None:
        rows.append(("per request", f"${price.per_request:g}"))
    for tier in price.tiers:
        shown = ", ".join(
            f"{field.removesuffix('_per_token').replace('_', ' ')} ${_per_million(value):g}"
            for field in _TIER_FIELDS
            if (value := getattr(tier, field)) is not None
        )
        rows.append((f"> {tier.above:,} tok", f"{shown} / 1M tokens (whole call)"))
    lines = [f"{price.name}" + (f" ({about})" if about else "") + f"  [source: {price.source}]"]
    lines += [f"  {label:<15} {value}" for label, value in rows]
    return "\n".join(lines)


def _update(source: Path, to_path: str | None) -> int:
    target = Path(to_path).expanduser() if to_path else default_user_prices_path()
    try:
        catalogue = PriceCatalogue.from_file(source)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    names = catalogue.names()
    chat = [name for name in names if (p := catalogue.lookup(name)) and p.mode == "chat"]
    if not chat:
        print(
            f"error: {source} holds no priced chat model (input_cost_per_token, "
            "output_cost_per_token, mode 'chat'); is it litellm's price JSON?",
            file=sys.stderr,
        )
        return 1
    data = dict(catalogue.raw())
    try:
        _write_atomically(target, data)
    except OSError as exc:
        print(f"error: cannot write {target}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}: {len(names)} priced models ({len(chat)} chat)")
    return 0


def _write_atomically(target: Path, data: Any) -> None:
    """Write via a temp file + rename, so a running gateway never reads half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".prices-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
