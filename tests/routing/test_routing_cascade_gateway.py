"""Routing and cascades through the real gateway, against the test upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.cascade.judge import JudgeCheck
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.upstream.app import UpstreamOptions, build_upstream_app

QUESTION = [{"role": "user", "content": "Explain why the sky is blue."}]


def routed_config(upstream_url: str, **sections: Any) -> dict[str, Any]:
    config = base_config(upstream_url, default_model="gpt-4o", baseline_model="gpt-4o")
    config["models"].update({
        "small-ctx": {"provider": "up", "model": "gpt-4o-mini", "context_window": 60,
                      "price": {"input": 0.1, "output": 0.2}},
        "no-tools": {"provider": "up", "model": "gpt-4o-mini", "capabilities": [],
                     "price": {"input": 0.05, "output": 0.1}},
    })  # fmt: skip
    config.update(sections)
    return config


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)


def test_rules_routing_with_context_and_capability_guards(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    chain = ["no-tools", "small-ctx", "gpt-4o-mini", "gpt-4o"]
    gateway = start_gateway(routed_config(upstream.url, routing={
        "enabled": True, "strategy": "rules", "candidates": chain,
        "tasks": {t: chain for t in ("chat", "code", "math", "creative", "extraction")},
    }))  # fmt: skip
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    long_prompt = [{"role": "user", "content": "Tell me about rivers. " * 40}]
    with sdk(gateway) as client:
        plain = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
        with_tools = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, tools=tools
        )
        too_long = client.chat.completions.with_raw_response.create(
            model="auto", messages=long_prompt, tools=tools
        )
        named = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=QUESTION)
        forced = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, extra_headers={"x-thrifty-route": "gpt-4o-mini"}
        )
        off = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, extra_headers={"x-thrifty-route": "off"}
        )
    assert plain.headers["x-thrifty-model"] == "no-tools"
    assert with_tools.headers["x-thrifty-model"] == "small-ctx", "no-tools lacks tools"
    assert too_long.headers["x-thrifty-model"] == "gpt-4o-mini", "small-ctx window too small"
    assert named.headers["x-thrifty-model"] == "gpt-4o", "a named model is not routed"
    assert forced.headers["x-thrifty-model"] == "gpt-4o-mini"
    assert off.headers["x-thrifty-model"] == "gpt-4o", "route off: the default answers"
    row = gateway.row(too_long.headers["x-thrifty-request-id"])
    route = row["techniques"]["route"]
    assert route["model"] == "gpt-4o-mini" and route["task"] and route["decision_ms"] >= 0
    assert "lacks tools" in route["excluded"]["no-tools"]
    assert "context window 60" in route["excluded"]["small-ctx"]
    # routing saved: baseline gpt-4o prices on the same tokens, minus gpt-4o-mini's
    assert row["baseline_cost"] > row["cost"] > 0
    assert row["savings"]["routing"] == pytest.approx(row["baseline_cost"] - row["cost"])


def cascade_config(upstream_url: str, checks: list[Any], **extra: Any) -> dict[str, Any]:
    return routed_config(upstream_url, cascade={
        "enabled": True,
        "tiers": [{"model": "gpt-4o-mini", "checks": checks, "threshold": 0.5},
                  {"model": "gpt-4o"}],
        **extra,
    })  # fmt: skip


def test_cascade_accepts_good_cheap_answer(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(cascade_config(upstream.url, ["heuristics"]))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Name a colour."}]
        )
    assert raw.headers["x-thrifty-model"] == "gpt-4o-mini"
    request_id = raw.headers["x-thrifty-request-id"]
    assert [a["purpose"] for a in gateway.attempts(request_id)] == ["main"]
    row = gateway.row(request_id)
    assert row["techniques"]["cascade"]["tiers"][0]["accepted"] is True
    assert row["savings"]["cascade"] == pytest.approx(row["baseline_cost"] - row["cost"])


def test_cascade_escalates_and_bills_both_attempts(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(cascade_config(upstream.url, ["heuristics"]))
    with sdk(gateway) as client:
        # max_tokens=3 truncates the cheap answer (finish_reason "length"): a hard fail
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, max_tokens=3
        )
    assert raw.headers["x-thrifty-model"] == "gpt-4o"
    request_id = raw.headers["x-thrifty-request-id"]
    attempts = gateway.attempts(request_id)
    assert [(a["model"], a["purpose"]) for a in attempts] == [
        ("gpt-4o-mini", "cascade"),
        ("gpt-4o", "main"),
    ]
    row = gateway.row(request_id)
    assert row["cost"] == pytest.approx(sum(a["cost"] for a in attempts))
    assert all(a["cost"] > 0 for a in attempts), "the rejected answer is billed too"
    tiers = row["techniques"]["cascade"]["tiers"]
    assert tiers[0]["accepted"] is False and "length" in tiers[0]["reason"]
    # escalating cost more than asking gpt-4o directly: a negative saving, booked as such
    assert row["savings"]["cascade"] < 0


def test_streaming_client_gets_the_accepted_answer(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(cascade_config(upstream.url, ["heuristics"]))
    with sdk(gateway) as client:
        full = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(raw.parse())
        direct = client.chat.completions.with_raw_response.create(
            model="auto", messages=QUESTION, stream=True, extra_headers={"x-thrifty-cascade": "off"}
        )
        list(direct.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert gateway.row(raw.headers["x-thrifty-request-id"])["stream"] == 1
    assert direct.headers["x-thrifty-model"] == "gpt-4o", (
        "opt-out streams straight from the default"
    )


def test_judge_from_recorded_answers_rejects_and_escalates(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    cheap_answer = "It is blue because of the ocean's reflection."
    judge_prompt = JudgeCheck().messages({"messages": QUESTION}, cheap_answer)
    records = [
        ReplayRecord("q", tuple(QUESTION), {}, {}, {
            "gpt-4o-mini": RecordedAnswer(text=cheap_answer),
            "gpt-4o": RecordedAnswer(text="Rayleigh scattering: shorter wavelengths scatter more."),
        }),
        ReplayRecord("judge", tuple(judge_prompt), {}, {}, {
            "judge-model": RecordedAnswer(text="The answer is wrong. Rating: [[2]]"),
        }),
    ]  # fmt: skip
    dataset = tmp_path / "recorded.jsonl"
    write_dataset(records, dataset)
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=dataset))) as recorded:
        config = cascade_config(recorded.url, ["judge"], judge_model="judge-model")
        config["models"]["judge-model"] = {"provider": "up", "price": {"input": 0.1, "output": 0.1}}
        gateway = start_gateway(config)
        with sdk(gateway) as client:
            raw = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
    assert raw.parse().choices[0].message.content.startswith("Rayleigh")
    attempts = gateway.attempts(raw.headers["x-thrifty-request-id"])
    assert [(a["model"], a["purpose"]) for a in attempts] == [
        ("gpt-4o-mini", "cascade"), ("judge-model", "judge"), ("gpt-4o", "main"),
    ]  # fmt: skip
    tiers = gateway.row(raw.headers["x-thrifty-request-id"])["techniques"]["cascade"]["tiers"]
    assert "judge rated 2/10" in tiers[0]["reason"]
