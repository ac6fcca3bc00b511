"""The reservation is an upper bound of what the configured pipeline can spend.

Every technique that makes calls is on at once — a cascade that escalates with a judge on
its cheap tier, the semantic cache's LLM verifier, abstractive compression, the gateway
window — and no request may settle above what it reserved. Through the real gateway
(openai SDK) against the test upstream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from tests.conftest import Gateway, ServerThread
from tests.governance.test_keys import admin, create_key, keys_config

SYSTEM = " ".join(
    f"Rule {i}: answer politely, cite the handbook section on topic {i}, and never invent "
    "policy that the handbook does not state."
    for i in range(12)
)
QUESTIONS = ["What is a prime number?", "Name three rivers.", "Why is the sky blue?",
             "How do tides work?"]  # fmt: skip


def all_on(upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    return keys_config(
        upstream_url,
        tmp_path,
        default_model="gpt-4o-mini",
        cascade={
            "enabled": True,
            "tiers": [
                {"model": "gpt-4o-mini", "checks": ["heuristics", "judge"], "threshold": 1.0},
                {"model": "gpt-4o"},
            ],
            "judge_model": "gpt-4o-mini",
        },
        cache={
            "enabled": True,
            "store": "memory",
            "exact": {"enabled": False},
            "semantic": {
                "enabled": True,
                "threshold": 0.8,
                "verify_model": "gpt-4o-mini",
                "pair_check": {"enabled": False},
            },
        },
        compression={
            "enabled": True,
            "min_tokens": 100,
            "min_message_tokens": 50,
            "abstractive": {"enabled": True, "model": "gpt-4o-mini", "min_tokens": 100},
        },
        batching={"enabled": True, "window": {"enabled": True, "window_ms": 300}},
    )


def ask_all(gateway: Gateway, key: str, windowed: bool, **params: Any) -> list[str]:
    """Windowed and compressed, or neither (then nothing hides a side call's cost: the
    prompt sent is the prompt reserved for)."""
    headers = {"x-thrifty-batch": "window"} if windowed else {"x-thrifty-compress": "off"}

    async def one(client: openai.AsyncOpenAI, question: str) -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", temperature=0, extra_headers=headers,
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": question}], **params,
        )  # fmt: skip
        return raw.headers["x-thrifty-request-id"]

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key,
                                      max_retries=0) as client:  # fmt: skip
            if windowed:
                return list(await asyncio.gather(*(one(client, q) for q in QUESTIONS)))
            return [await one(client, q) for q in QUESTIONS]

    return asyncio.run(run())


def test_settled_cost_never_exceeds_the_reservation(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(all_on(upstream.url, tmp_path))
    key = create_key(gateway, budgets=[{"period": "day", "limit_usd": 100}])
    ids = ask_all(gateway, key["key"], windowed=True, max_tokens=60)  # packed, summarised
    # cut short (5 tokens), the cheap tier's answers fail its checks: judge, escalation
    ids += ask_all(gateway, key["key"], windowed=False, max_tokens=5)
    ids += ask_all(gateway, key["key"], windowed=False, max_tokens=5)  # + the verifier's no
    ids += ask_all(gateway, key["key"], windowed=False, max_tokens=40, n=2)
    rows = [gateway.row(request_id) for request_id in ids]
    purposes = set()
    for row in rows:
        reserved = row["techniques"]["budget"]["reserved_usd"]
        assert 0 < row["cost"] <= reserved, (row["request_id"], row["cost"], reserved)
        purposes |= {a["purpose"] for a in gateway.attempts(row["request_id"])}
    assert {"batch", "summarise", "cache_verify", "judge", "cascade", "main"} <= purposes
    assert any(r["techniques"]["batch"]["mode"] == "packed" for r in rows[:4])
    assert all(r["techniques"]["cascade"]["accepted"] == "gpt-4o" for r in rows[4:12])
    _, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [usage] = [b for b in budgets["data"] if b["scope"] == f"key:{key['id']}"]
    assert abs(usage["reserved_usd"]) < 1e-12
    assert abs(usage["spent_usd"] - sum(r["cost"] for r in rows)) < 1e-9


def test_the_verifier_is_asked_only_within_the_reserved_length() -> None:
    """The reservation counts a stored question of at most 2 x question + 64 tokens; the
    cache keeps that promise by not asking about a longer one (a miss)."""
    from thrifty.cache.verify import may_ask, stored_limit
    from thrifty.tokens import count_text

    question = "What is the capital city of France?"
    tokens = count_text(question, "gpt-4o-mini").tokens
    assert stored_limit(tokens) == 2 * tokens + 64
    assert may_ask(question, "Tell me the capital city of France.", "gpt-4o-mini")
    longer = question + " Please" * (stored_limit(tokens) - tokens + 1)
    assert count_text(longer, "gpt-4o-mini").tokens > stored_limit(tokens)
    assert not may_ask(question, longer, "gpt-4o-mini")


def test_tries_that_time_out_are_within_the_reservation(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """A timed-out try is billed its prompt (estimated): with every technique on, a
    request whose first two tries time out, and one whose model times out on all three
    tries and falls back, still settle within what they reserved."""
    config = all_on(upstream.url, tmp_path)
    url = f"{upstream.url}/v1"
    for name, times in (("slow", 2), ("dead_slow", 3)):
        fault = f"timeout;times={times};id={uuid.uuid4().hex};seconds=3"
        config["providers"][name] = {
            "base_url": url, "timeout_s": 0.3, "headers": {"x-upstream-fault": fault}
        }  # fmt: skip
    config["models"]["slow"] = {"provider": "slow", "model": "gpt-4o"}
    config["models"]["dead_slow"] = {
        "provider": "dead_slow", "model": "gpt-4o", "fallbacks": ["gpt-4o-mini"]
    }  # fmt: skip
    gateway = start_gateway(config)
    key = create_key(gateway, budgets=[{"period": "day", "limit_usd": 100}])
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ""}]
    raws = []
    with openai.OpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0) as client:
        for model in ("slow", "dead_slow"):
            messages[1]["content"] = f"{QUESTIONS[0]} {uuid.uuid4()}"
            off = {"x-thrifty-compress": "off"}
            create = client.chat.completions.with_raw_response.create
            raws.append(create(model=model, messages=messages, max_tokens=5, extra_headers=off))
    for raw, timeouts in zip(raws, (2, 3), strict=True):
        row = gateway.row(raw.headers["x-thrifty-request-id"])
        attempts = gateway.attempts(row["request_id"])
        billed = [a for a in attempts if a["status"] == "error" and a["cost"]]
        assert len(billed) == timeouts and row["estimated"], attempts
        reserved = row["techniques"]["budget"]["reserved_usd"]
        assert 0 < row["cost"] <= reserved, (row["request_id"], row["cost"], reserved)
    assert gateway.row(raws[1].headers["x-thrifty-request-id"])["model"] == "gpt-4o-mini"
