"""The gateway window: concurrent callers (openai SDK, real gateway) share one call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from tests.batching.test_batching_library import SYSTEM, expected_answers
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http, upstream_stats

from thrifty.upstream.app import UpstreamOptions, build_upstream_app

CALLERS = 5
QUESTIONS = [f"Caller {i} asks: how many legs do {i + 2} spiders have?" for i in range(CALLERS)]
WINDOW = {"x-thrifty-batch": "window"}


def window_config(upstream_url: str) -> dict[str, Any]:
    # The group closes when full (max_batch_size callers), never on the long timer, so
    # the test does not depend on how fast the callers arrive.
    batching = {"enabled": True, "packing": {"max_batch_size": CALLERS},
                "window": {"enabled": True, "window_ms": 5000}}  # fmt: skip
    return base_config(upstream_url, batching=batching)


async def ask_concurrently(gateway: Gateway, model: str = "gpt-4o") -> list[Any]:
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0
    ) as client:
        calls = [
            client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                extra_headers=WINDOW,
            )
            for q in QUESTIONS
        ]
        return list(await asyncio.gather(*calls))


def test_concurrent_callers_each_get_their_own_answer(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(window_config(upstream.url))
    expected = expected_answers(upstream.url, QUESTIONS, "gpt-4o")
    before = upstream_stats(upstream)["by_model"].get("gpt-4o", 0)
    raw = asyncio.run(ask_concurrently(gateway))
    replies = [r.parse() for r in raw]
    assert [r.choices[0].message.content for r in replies] == expected
    assert all(r.object == "chat.completion" for r in replies)
    assert upstream_stats(upstream)["by_model"]["gpt-4o"] - before == 1
    ids = [r.headers["x-thrifty-request-id"] for r in raw]
    rows = [gateway.row(i) for i in ids]
    assert {row["techniques"]["batch"]["mode"] for row in rows} == {"packed"}
    assert len({row["techniques"]["batch"]["id"] for row in rows}) == 1
    for reply, row in zip(replies, rows, strict=True):
        attempts = gateway.attempts(row["request_id"])
        assert [a["purpose"] for a in attempts] == ["batch"]
        assert reply.usage is not None
        assert attempts[0]["input_tokens"] == reply.usage.prompt_tokens
        assert row["cost"] == pytest.approx(attempts[0]["cost"])
        # The baseline is the request sent alone; the window saved on the shared prompt.
        assert row["baseline_cost"] > 0 and "batching" in row["savings"]


@pytest.mark.parametrize("fault", ["swap;item=2", "drop;item=4", "malform"])
def test_bad_batch_output_falls_back_and_never_misassigns(
    start_gateway: Callable[[dict[str, Any]], Gateway], fault: str
) -> None:
    options = UpstreamOptions(model_faults={"gpt-4o": fault})
    with ServerThread(build_upstream_app(options)) as up:
        gateway = start_gateway(window_config(up.url))
        expected = expected_answers(up.url, QUESTIONS, "gpt-4o")
        raw = asyncio.run(ask_concurrently(gateway))
    replies = [r.parse() for r in raw]
    assert [r.choices[0].message.content for r in replies] == expected
    modes = [gateway.row(r.headers["x-thrifty-request-id"])["techniques"]["batch"]["mode"]
             for r in raw]  # fmt: skip
    assert "reasked" in modes


def test_window_is_opt_in_and_checks_its_header(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(window_config(upstream.url))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "alone?"}]
        )
        assert "batch" not in gateway.row(raw.headers["x-thrifty-request-id"])["techniques"]
        # A streamed request cannot be packed: it goes on at once, header or not.
        streamed = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "s?"}], stream=True,
            extra_headers=WINDOW,
        )  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    status, _, body = http(
        "POST",
        f"{gateway.base_url}/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        {"authorization": f"Bearer {GATEWAY_KEY}", "x-thrifty-batch": "sometimes",
         "content-type": "application/json"},
    )  # fmt: skip
    assert status == 400 and body["error"]["param"] == "x-thrifty-batch"


def test_window_by_default_and_opt_out(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    config = window_config(upstream.url)
    config["batching"]["window"]["default"] = True
    config["batching"]["packing"]["max_batch_size"] = 2
    gateway = start_gateway(config)

    async def ask(headers: dict[str, str]) -> list[str]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY,
                                      max_retries=0) as client:  # fmt: skip
            raw = await asyncio.gather(*(
                client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": q}],
                    extra_headers=headers)
                for q in QUESTIONS[:2]))  # fmt: skip
        return [r.headers["x-thrifty-request-id"] for r in raw]

    windowed = asyncio.run(ask({}))
    alone = asyncio.run(ask({"x-thrifty-batch": "off"}))
    assert {gateway.row(i)["techniques"]["batch"]["mode"] for i in windowed} == {"packed"}
    assert all("batch" not in gateway.row(i)["techniques"] for i in alone)
