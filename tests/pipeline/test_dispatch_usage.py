"""Usage the gateway must not believe, empty replies, estimates and $0 prices, through the
real gateway and the test upstream's faults (issue 15, items 1, 5 and 6)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http
from tests.governance.test_keys import admin, create_key, keys_config, sdk

from thrifty.tokens import count_request, count_text
from thrifty.usage import MAX_TOKENS

MESSAGES = [{"role": "user", "content": "Name three prime numbers."}]
AUTH = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_weather",
            "description": "Current weather for a city, with temperature and wind.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    }
]


def with_fault(config: dict[str, Any], upstream: ServerThread, spec: str) -> dict[str, Any]:
    config["providers"]["faulty"] = {
        "base_url": f"{upstream.url}/v1",
        "headers": {"x-upstream-fault": spec},
        "price_prefix": "openai",
    }
    config["models"]["faulty"] = {"provider": "faulty", "model": "gpt-4o-mini"}
    return config


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.mark.parametrize("fault", ["negusage", "hugeusage", "strusage"])
def test_impossible_usage_is_estimated_and_flagged(
    fault: str,
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    tmp_path: Path,
) -> None:
    config = keys_config(upstream.url, tmp_path)
    config["governance"]["budgets"] = [{"scope": "team:t", "period": "day", "limit_usd": 10}]
    gateway = start_gateway(with_fault(config, upstream, fault))
    key = create_key(gateway, team="t")
    with sdk(gateway, key["key"]) as api:
        raw = api.chat.completions.with_raw_response.create(model="faulty", messages=MESSAGES)
    assert raw.status_code == 200, "never a 500"
    reply = raw.parse()
    assert reply.usage is not None and 0 < reply.usage.prompt_tokens < MAX_TOKENS
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["tokens_estimated"] == 1 and row["status"] == "ok"
    assert 0 < row["input_tokens"] == reply.usage.prompt_tokens
    assert row["cost"] > 0
    assert float(raw.headers["x-thrifty-cost"]) == pytest.approx(row["cost"], abs=1e-8)
    assert row["cost"] < 0.01, "1e18 tokens must not book $1e12"
    _, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [team] = [b for b in budgets["data"] if b["scope"] == "team:t"]
    assert team["spent_usd"] == pytest.approx(row["cost"], rel=1e-9), "no budget handed back"


@pytest.mark.parametrize("fault", ["negusage", "strusage"])
def test_impossible_stream_usage_is_estimated(
    fault: str, upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(with_fault(base_config(upstream.url), upstream, fault))
    with client(gateway) as api:
        raw = api.chat.completions.with_raw_response.create(
            model="faulty", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(raw.parse())
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    [usage] = [c.usage for c in chunks if c.usage is not None]
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["status"] == "ok" and row["tokens_estimated"] == 1
    assert row["input_tokens"] > 0 and row["cost"] > 0
    # the client asked for usage: it gets the gateway's count, not the impossible one
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        row["input_tokens"],
        row["output_tokens"],
    )


@pytest.mark.parametrize("stream", [False, True])
def test_empty_reply_is_retried_then_answered(
    stream: bool, upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    spec = f"empty;times=1;id={uuid.uuid4().hex}"
    gateway = start_gateway(with_fault(base_config(upstream.url), upstream, spec))
    with client(gateway) as api:
        raw = api.chat.completions.with_raw_response.create(
            model="faulty", messages=MESSAGES, stream=stream
        )
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            assert raw.parse().choices
    assert raw.status_code == 200
    attempts = gateway.attempts(raw.headers["x-thrifty-request-id"])
    assert [(a["purpose"], a["status"]) for a in attempts] == [("main", "error"), ("retry", "ok")]
    assert "empty reply" in attempts[0]["error"]


def test_persistent_empty_reply_is_a_502_and_falls_over(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    config = with_fault(base_config(upstream.url), upstream, "empty")
    gateway = start_gateway(config)
    code, headers, body = http(
        "POST", f"{gateway.base_url}/chat/completions", {"model": "faulty", "messages": MESSAGES},
        AUTH,
    )  # fmt: skip
    assert code == 502 and body["error"]["code"] == "upstream_empty_reply"
    row = gateway.row(headers["x-thrifty-request-id"])
    assert row["status"] == "error"
    code, _, body = http(
        "POST", f"{gateway.base_url}/chat/completions",
        {"model": "faulty", "messages": MESSAGES, "stream": True}, AUTH,
    )  # fmt: skip
    assert code == 502 and body["error"]["code"] == "upstream_empty_reply"
    # with a fallback, the next model answers
    config["models"]["faulty"]["fallbacks"] = ["gpt-4o-mini"]
    gateway = start_gateway(config)
    with client(gateway) as api:
        raw = api.chat.completions.with_raw_response.create(model="faulty", messages=MESSAGES)
    assert raw.status_code == 200 and raw.headers["x-thrifty-model"] == "gpt-4o-mini"


def test_estimate_counts_tool_and_response_format_schemas(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(with_fault(base_config(upstream.url), upstream, "nousage"))
    schema = {"type": "json_schema", "json_schema": {"name": "primes", "schema": {
        "type": "object", "properties": {"primes": {"type": "array", "items": {"type": "integer"}}},
    }}}  # fmt: skip
    rows = []
    with client(gateway) as api:
        for extra in ({}, {"tools": TOOLS, "response_format": schema}):
            raw = api.chat.completions.with_raw_response.create(
                model="faulty", messages=MESSAGES, **extra
            )
            rows.append(gateway.row(raw.headers["x-thrifty-request-id"]))
    plain, with_schemas = rows
    assert plain["tokens_estimated"] == 1 and plain["tokens_approximate"] == 0
    schema_tokens = sum(
        count_text(json.dumps(v, separators=(",", ":")), "gpt-4o-mini").tokens
        for v in (TOOLS, schema)
    )
    assert with_schemas["input_tokens"] == plain["input_tokens"] + schema_tokens
    assert with_schemas["tokens_estimated"] == 1 and with_schemas["tokens_approximate"] == 1
    body = {"messages": MESSAGES, "tools": TOOLS, "response_format": schema}
    assert with_schemas["input_tokens"] == count_request(body, "gpt-4o-mini").tokens


def test_passthrough_model_listed_at_zero_is_unpriced(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """A paid service the catalogue lists at $0 is booked unpriced, and a budget refuses it."""
    config = keys_config(upstream.url, tmp_path)
    config["providers"]["volc"] = {"base_url": f"{upstream.url}/v1", "price_prefix": "volcengine"}
    config["passthrough_provider"] = "volc"
    config["governance"]["budgets"] = [{"scope": "team:t", "period": "day", "limit_usd": 10}]
    gateway = start_gateway(config)
    with client(gateway) as api:
        raw = api.chat.completions.with_raw_response.create(
            model="deepseek-v3-2-251201", messages=MESSAGES
        )
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["unpriced"], "booked unpriced, not as a free call"
    key = create_key(gateway, team="t")
    with sdk(gateway, key["key"]) as api, pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="deepseek-v3-2-251201", messages=MESSAGES)
    assert info.value.code == "model_unpriced"
