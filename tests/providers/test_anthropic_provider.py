"""The Anthropic provider (``kind: anthropic``) against the test upstream's ``/v1/messages``,
driven through the real gateway with the openai SDK: answers, streams, tools, usage and
cost, error mapping, and automatic prompt caching booked as ``prompt_cache``."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import anthropic
import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

from thrifty.upstream.app import UpstreamOptions, build_upstream_app

UPSTREAM_KEY = "sk-ant-upstream-secret"
MODEL = "claude-haiku-4-5"
SYSTEM = " ".join(f"Policy {n}: quote the source, keep it short, never guess." for n in range(150))
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def claude_upstream() -> Iterator[ServerThread]:
    options = UpstreamOptions(
        api_key=UPSTREAM_KEY,
        model_faults={
            "claude-flaky": "429;times=1;retry_after=0",
            "claude-broken": "500",
            "claude-cut": "cut;after=4",
        },
    )
    with ServerThread(build_upstream_app(options)) as server:
        yield server


def config(upstream: ServerThread, key: str = UPSTREAM_KEY, **cache: Any) -> dict[str, Any]:
    cfg = base_config(upstream.url)
    cfg["providers"]["anthropic"] = {
        "base_url": f"{upstream.url}/v1",
        "kind": "anthropic",
        "api_key": key,
        "prompt_cache": cache,
    }
    price = {"input": 1.0, "output": 5.0}
    cfg["models"].update(
        {
            MODEL: {"provider": "anthropic"},
            "flaky": {"provider": "anthropic", "model": "claude-flaky", "price": price},
            "broken": {"provider": "anthropic", "model": "claude-broken", "price": price},
            "cut": {"provider": "anthropic", "model": "claude-cut", "price": price},
        }
    )
    return cfg


def catalogue(name: str) -> dict[str, float]:
    raw = resources.files("thrifty.pricing").joinpath("data", "model_prices.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))[name]


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)


def ask(gateway: Gateway, question: str, **params: Any) -> Any:
    with sdk(gateway) as client:
        return client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            **params,
        )


def test_chat_answer_usage_and_cost_from_messages(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(config(claude_upstream, enabled=False))
    with anthropic.Anthropic(base_url=claude_upstream.url, api_key=UPSTREAM_KEY) as direct:
        expected = direct.messages.create(
            model=MODEL,
            max_tokens=4096,
            system=SYSTEM,
            messages=[{"role": "user", "content": "Hi?"}],
        )
    raw = ask(gateway, "Hi?")
    reply = raw.parse()
    assert reply.choices[0].message.content == expected.content[0].text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == expected.usage.input_tokens
    assert reply.usage.completion_tokens == expected.usage.output_tokens
    entry = catalogue(MODEL)
    cost = (
        expected.usage.input_tokens * entry["input_cost_per_token"]
        + expected.usage.output_tokens * entry["output_cost_per_token"]
    )
    assert float(raw.headers["x-thrifty-cost"]) == pytest.approx(cost, rel=1e-9)
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["provider"] == "anthropic" and row["input_tokens"] == expected.usage.input_tokens


def test_stream_and_tools(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(config(claude_upstream, enabled=False))
    plain = ask(gateway, "Story?").parse()
    with sdk(gateway) as client:
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                stream=True,
                stream_options={"include_usage": True},
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": "Story?"},
                ],
            )
        )
        tools = client.chat.completions.create(
            model=MODEL, tools=[TOOL], messages=[{"role": "user", "content": "Weather?"}]
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    call = tools.choices[0].message.tool_calls[0]
    assert tools.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"


def test_errors_are_mapped(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(config(claude_upstream))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="flaky", messages=[{"role": "user", "content": "hi"}]
        )
        attempts = gateway.attempts(raw.headers["x-thrifty-request-id"])
        assert [a["status"] for a in attempts] == ["error", "ok"]  # the 429 was retried
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="broken", messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.status_code == 502
        stream = client.chat.completions.create(
            model="cut", stream=True, messages=[{"role": "user", "content": "A long story?"}]
        )
        with pytest.raises(openai.APIError):  # cut mid-answer: an error event, not a short 200
            for _ in stream:
                pass
    refused = start_gateway(config(claude_upstream, key="sk-ant-wrong-key"))
    status, _, body = http(
        "POST",
        f"{refused.base_url}/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        {"authorization": f"Bearer {GATEWAY_KEY}"},
    )
    assert status == 502 and body["error"]["code"] == "upstream_auth_failed"
    assert "sk-ant-wrong-key" not in json.dumps(body)


def test_prompt_cache_breakpoints_when_they_pay_and_the_saving_booked(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    http("POST", f"{claude_upstream.url}/_stats/reset")
    gateway = start_gateway(config(claude_upstream))
    rows = []
    for question in ("First?", "Second?", "Third?"):
        raw = ask(gateway, question)
        rows.append((raw.parse().usage, gateway.row(raw.headers["x-thrifty-request-id"])))
    (first, first_row), (second, second_row), (third, third_row) = rows
    # first sighting: no breakpoint, nothing cached, nothing booked
    assert first.prompt_tokens_details.cached_tokens == 0
    assert "prompt_cache" not in first_row["savings"]
    # seen once: a breakpoint pays (0.9 x 1 reuse > 0.25 premium); the prefix is written
    written = second_row["cache_write_tokens"]
    assert written >= 1024 and second.prompt_tokens_details.cached_tokens == 0
    entry = catalogue(MODEL)
    premium = entry["cache_creation_input_token_cost"] - entry["input_cost_per_token"]
    assert second_row["savings"]["prompt_cache"] == pytest.approx(-written * premium)
    # and read back at the cached price
    read = third.prompt_tokens_details.cached_tokens
    assert read == written
    discount = entry["input_cost_per_token"] - entry["cache_read_input_token_cost"]
    assert third_row["savings"]["prompt_cache"] == pytest.approx(read * discount)
    assert third_row["techniques"]["prompt_cache"]["read_tokens"] == read


def test_no_breakpoint_below_the_minimum_or_when_off(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(config(claude_upstream, min_tokens=100_000))
    for _ in range(3):
        raw = ask(gateway, "Again?")
        row = gateway.row(raw.headers["x-thrifty-request-id"])
        assert row["cache_write_tokens"] == 0 and "prompt_cache" not in row["savings"]
