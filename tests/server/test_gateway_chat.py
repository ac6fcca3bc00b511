"""The gateway as a drop-in OpenAI endpoint: same answers, streaming, headers, ledger."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from importlib import resources

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, upstream_stats

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three uses of a paperclip."},
]


def catalogue_entry(name: str) -> dict:
    """The vendored price data read directly, independent of thrifty.pricing."""
    raw = resources.files("thrifty.pricing").joinpath("data", "model_prices.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))[name]


def expected_cost(model: str, usage: openai.types.CompletionUsage) -> float:
    entry = catalogue_entry(model)
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    return (
        (usage.prompt_tokens - cached) * entry["input_cost_per_token"]
        + cached * entry.get("cache_read_input_token_cost", entry["input_cost_per_token"])
        + usage.completion_tokens * entry["output_cost_per_token"]
    )


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)


def test_same_answer_as_direct_upstream(gateway: Gateway, upstream: ServerThread) -> None:
    with (
        openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct,
        sdk(gateway) as client,
    ):
        expected = direct.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    reply = raw.parse()
    assert reply.choices[0].message.content == expected.choices[0].message.content
    assert reply.usage == expected.usage
    assert raw.headers["x-thrifty-model"] == "gpt-4o-mini"
    request_id = raw.headers["x-thrifty-request-id"]
    cost = float(raw.headers["x-thrifty-cost"])
    assert cost == pytest.approx(expected_cost("gpt-4o-mini", reply.usage), rel=1e-9)
    assert float(raw.headers["x-thrifty-baseline-cost"]) == pytest.approx(cost)
    row = gateway.row(request_id)
    assert row["status"] == "ok" and row["model"] == "gpt-4o-mini" and row["stream"] == 0
    assert row["input_tokens"] == reply.usage.prompt_tokens
    assert row["output_tokens"] == reply.usage.completion_tokens
    assert row["cost"] == pytest.approx(cost, rel=1e-6)


def test_stream_matches_non_stream_and_is_priced(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        full = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert all(c.usage is None for c in chunks), "client did not ask for usage: none sent"
    assert chunks[-1].choices[0].finish_reason == "stop"
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["stream"] == 1 and row["status"] == "ok"
    assert row["input_tokens"] == full.usage.prompt_tokens
    assert row["output_tokens"] == full.usage.completion_tokens
    assert row["tokens_estimated"] == 0, "usage came from the upstream's usage chunk"
    assert row["cost"] == pytest.approx(expected_cost("gpt-4o", full.usage), rel=1e-9)


def test_stream_with_usage_and_reasoning_tokens(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="o3-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(raw.parse())
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["reasoning_tokens"] == reasoning
    # reasoning tokens are billed as output tokens
    assert row["cost"] == pytest.approx(expected_cost("o3-mini", usage), rel=1e-9)


def test_cached_prompt_tokens_priced_at_cache_rate(gateway: Gateway) -> None:
    long_context = " ".join(f"Fact {i}: the sky was blue on day {i}." for i in range(300))
    messages = [{"role": "system", "content": long_context}, {"role": "user", "content": "Day 7?"}]
    with sdk(gateway) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=messages
        )
    usage = raw.parse().usage
    assert usage.prompt_tokens_details.cached_tokens > 0
    cost = float(raw.headers["x-thrifty-cost"])
    assert cost == pytest.approx(expected_cost("gpt-4o-mini", usage), rel=1e-9)
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["cached_input_tokens"] == usage.prompt_tokens_details.cached_tokens


def test_parameters_pass_through(gateway: Gateway) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with sdk(gateway) as client:
        called = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
        as_json = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"}
        )
        several = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
        with_logprobs = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, logprobs=True, top_logprobs=2
        )
    assert called.choices[0].finish_reason == "tool_calls"
    assert called.choices[0].message.tool_calls[0].function.name == "lookup"
    assert isinstance(json.loads(as_json.choices[0].message.content), dict)
    assert len(several.choices) == 2
    assert with_logprobs.choices[0].logprobs.content


def test_async_sdk_concurrent_requests(gateway: Gateway) -> None:
    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY) as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}]
                    )
                    for i in range(20)
                )
            )
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            streamed = [c async for c in stream]
        return [r.choices[0].message.content for r in replies] + [str(len(streamed))]

    contents = asyncio.run(main())
    assert len(set(contents[:20])) == 20
    assert len(gateway.requests()) == 21


def test_embeddings_and_models(gateway: Gateway, upstream: ServerThread) -> None:
    with sdk(gateway) as client:
        reply = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
        models = [m.id for m in client.models.list()]
    assert len(reply.data) == 2 and len(reply.data[0].embedding) > 0
    assert reply.usage.prompt_tokens > 0
    assert "gpt-4o-mini" in models and "text-embedding-3-small" in models
    rows = [r for r in gateway.requests() if r["endpoint"] == "embeddings"]
    assert rows and rows[0]["cost"] == pytest.approx(
        reply.usage.prompt_tokens
        * catalogue_entry("text-embedding-3-small")["input_cost_per_token"]
    )
    assert upstream_stats(upstream)  # the upstream really served it


def test_baseline_is_the_named_model_else_the_configured_baseline(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(
        base_config(upstream.url, default_model="gpt-4o-mini", baseline_model="gpt-4o")
    )
    with sdk(gateway) as client:
        named = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        unnamed = client.chat.completions.with_raw_response.create(
            model="",
            messages=MESSAGES,  # no model: the default answers, the baseline is gpt-4o
        )
    assert named.headers["x-thrifty-cost"] == named.headers["x-thrifty-baseline-cost"]
    assert unnamed.headers["x-thrifty-model"] == "gpt-4o-mini"
    usage = unnamed.parse().usage
    assert float(unnamed.headers["x-thrifty-baseline-cost"]) == pytest.approx(
        expected_cost("gpt-4o", usage), rel=1e-9
    )
    row = gateway.row(unnamed.headers["x-thrifty-request-id"])
    assert row["baseline_model"] == "gpt-4o" and row["model"] == "gpt-4o-mini"


def test_unknown_price_is_flagged_never_zero(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(base_config(upstream.url, passthrough_provider="up"))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="my-private-finetune", messages=MESSAGES
        )
    assert raw.status_code == 200
    assert raw.headers["x-thrifty-cost"] == "unpriced"
    assert "x-thrifty-baseline-cost" not in raw.headers
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["unpriced"] == 1 and row["baseline_cost"] is None
    from thrifty.ledger.reports import build_report
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore

    store = SqliteLedgerStore(gateway.ledger_path)
    try:
        report = build_report(store)
    finally:
        store.close()
    assert report["unpriced"] == 1 and any("no known price" in w for w in report["warnings"])
