"""Automatic prompt caching (Anthropic ``cache_control``) on real document-QA traffic.

Traffic: every question of BAMBOO's meetingqa_4k and paperqa_4k (200 questions on 57
long documents, 1 to 5 questions per document), in a seeded random order, one request
every ``gap`` seconds. Each request is sent as the Anthropic provider sends it: the
document in the system prompt, the question and its options as the user turn. Three
policies mark the prompt: ``never`` (no breakpoint: what a client that does not ask for
caching pays), ``always`` (a breakpoint on every system prompt of at least 1024 tokens)
and ``planner`` (the provider's :class:`CachePlanner`, default config). The provider's
cache is simulated as Anthropic documents it: a marked prefix is written, read by a
later request with the same prefix within 5 minutes of its last use, and refreshed by
each read. Cost is the input side only (output is the same under every policy), at
claude-sonnet-4-5's catalogue prices; tokens are counted with the planner's own walk.

Nothing is tuned here: the planner's rule and multipliers are its defaults (Anthropic's
published 1.25 / 0.1), so every figure is held-out. Writes
``bench/results/<date>-prompt-cache.{md,json}``. Usage::

    .venv/bin/python -m bench.prompt_cache [--gaps 5 30 120 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import random
from pathlib import Path
from typing import Any

from bench.reporting import result_stem, write_results
from thrifty.pricing.catalogue import PriceCatalogue
from thrifty.providers.anthropic_cache import CachePlanner, PromptCacheConfig, at_path, units
from thrifty.providers.anthropic_format import chat_to_messages

DATA = Path("/work/shared/data/bamboo_longctx_qa")
MODEL = "claude-sonnet-4-5"
TTL_S = 300.0


def load_requests(data: Path) -> list[dict[str, Any]]:
    """One Messages request per question (the chat body mapped as the provider maps it)."""
    out = []
    for name in ("meetingqa_4k", "paperqa_4k"):
        with gzip.open(data / f"{name}.jsonl.gz", "rt") as lines:
            for line in lines:
                row = json.loads(line, strict=False)
                chat = {
                    "messages": [
                        {
                            "role": "system",
                            "content": "Answer from this document.\n\n" + row["content"],
                        },
                        {
                            "role": "user",
                            "content": row["question"] + "\n" + "\n".join(row["options"]),
                        },
                    ]
                }
                out.append(chat_to_messages(chat, MODEL))
    return out


class SimulatedCache:
    """Anthropic's cache: marked prefixes, 5-minute lifetime refreshed on each read."""

    def __init__(self) -> None:
        self.expires: dict[bytes, float] = {}

    def bill(self, request: dict[str, Any], now: float) -> tuple[int, int, int]:
        """``(uncached, read, written)`` input tokens of one request."""
        walk = list(units(request))
        total = walk[-1].tokens
        marks = [
            u for u in walk if u.tokens >= 1024 and "cache_control" in at_path(request, u.path)
        ]
        read = max((u.tokens for u in marks if self.expires.get(u.digest, -1.0) >= now), default=0)
        written = max(0, marks[-1].tokens - read) if marks else 0
        for unit in marks:
            self.expires[unit.digest] = now + TTL_S
        return total - read - written, read, written


def run(requests: list[dict[str, Any]], policy: str, gap: float) -> dict[str, float]:
    price = PriceCatalogue.bundled().lookup(MODEL, provider_hint="anthropic")
    assert price is not None and price.cached_input_per_token and price.cache_write_per_token
    clock = [0.0]
    planner = CachePlanner(PromptCacheConfig(), clock=lambda: clock[0])
    cache = SimulatedCache()
    cost = uncached = read = written = marked = 0.0
    for number, original in enumerate(requests):
        clock[0] = number * gap
        request = copy.deepcopy(original)
        if policy == "planner":
            marked += planner.place(request) > 0
        elif policy == "always":
            walk = [u for u in units(request) if u.path[0] == "system"]
            if walk and walk[-1].tokens >= 1024:
                at_path(request, walk[-1].path)["cache_control"] = {"type": "ephemeral"}
                marked += 1
        plain, hit, write = cache.bill(request, clock[0])
        uncached, read, written = uncached + plain, read + hit, written + write
        cost += (
            plain * price.input_per_token
            + hit * price.cached_input_per_token
            + write * price.cache_write_per_token
        )
    return {
        "cost_usd": cost,
        "uncached": uncached,
        "read": read,
        "written": written,
        "marked": marked,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gaps", type=float, nargs="+", default=[5, 30, 120, 600])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    requests = load_requests(args.data)
    random.Random(args.seed).shuffle(requests)
    docs = len({json.dumps(r["system"]) for r in requests})
    results: dict[str, Any] = {"requests": len(requests), "documents": docs, "runs": {}}
    lines = [
        f"# Prompt caching on document QA ({dt.date.today()})",
        "",
        f"{len(requests)} BAMBOO questions on {docs} documents, seeded order (seed "
        f"{args.seed}), input cost at {MODEL} prices; relative to `never`.",
        "",
        "| gap between requests | policy | input cost USD | vs never | tokens read "
        "| tokens written | requests marked |",
        "|---|---|---|---|---|---|---|",
    ]
    for gap in args.gaps:
        never = run(requests, "never", gap)
        for policy in ("never", "always", "planner"):
            out = never if policy == "never" else run(requests, policy, gap)
            results["runs"][f"{gap:g}s/{policy}"] = out
            ratio = out["cost_usd"] / never["cost_usd"]
            lines.append(
                f"| {gap:g} s | {policy} | {out['cost_usd']:.4f} | {ratio:.1%} | "
                f"{out['read']:,.0f} | {out['written']:,.0f} | {out['marked']:.0f} |"
            )
    report = "\n".join(lines) + "\n"
    write_results(result_stem("prompt-cache"), results, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
