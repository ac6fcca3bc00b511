"""A caller's own ``cache_control`` breakpoints on ``/v1/messages``, end to end: the
anthropic SDK → the real gateway → a ``kind: anthropic`` provider → the test upstream's
Messages route, whose prompt cache writes and reads only at marked prefixes. The marks
reach Anthropic at the positions the caller chose, the second call reads the cache, the
ledger prices the reads and writes, and an OpenAI-kind provider never sees a mark."""

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

MODEL = "claude-haiku-4-5"
MARK = {"type": "ephemeral"}
#: Long enough to be cached (the upstream, like Anthropic, caches 1024 tokens or more).
LONG = " ".join(f"Clause {n}: the tenant pays rent monthly, in advance." for n in range(160))
TOOL = {
    "name": "lookup_clause",
    "description": LONG,
    "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
}


@pytest.fixture(scope="module")
def claude_upstream() -> Iterator[ServerThread]:
    with ServerThread(build_upstream_app(UpstreamOptions())) as server:
        yield server


@pytest.fixture
def gateway(
    claude_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> Gateway:
    """Claude on a ``kind: anthropic`` provider (automatic breakpoints on, as by default),
    gpt-4o-mini on an OpenAI-kind one; both on the same test upstream."""
    http("POST", f"{claude_upstream.url}/_stats/reset")
    cfg = base_config(claude_upstream.url)
    cfg["providers"]["anthropic"] = {"base_url": f"{claude_upstream.url}/v1", "kind": "anthropic"}
    cfg["models"][MODEL] = {"provider": "anthropic"}
    return start_gateway(cfg)


def catalogue() -> dict[str, float]:
    raw = resources.files("thrifty.pricing").joinpath("data", "model_prices.json.gz").read_bytes()
    entry: dict[str, float] = json.loads(gzip.decompress(raw))[MODEL]
    return entry


def priced(usage: anthropic.types.Usage) -> float:
    """What Anthropic bills for ``usage`` at the catalogue's prices (1-hour writes at
    their own)."""
    price = catalogue()
    hour = usage.cache_creation.ephemeral_1h_input_tokens if usage.cache_creation else 0
    return (
        usage.input_tokens * price["input_cost_per_token"]
        + (usage.cache_read_input_tokens or 0) * price["cache_read_input_token_cost"]
        + ((usage.cache_creation_input_tokens or 0) - hour)
        * price["cache_creation_input_token_cost"]
        + hour * price["cache_creation_input_token_cost_above_1hr"]
        + usage.output_tokens * price["output_cost_per_token"]
    )


def claude(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)


def twice(gateway: Gateway, **params: Any) -> list[tuple[Any, dict[str, Any], float]]:
    """The same request sent twice: (message, ledger row, the x-thrifty-cost header)."""
    out = []
    with claude(gateway) as client:
        for _ in range(2):
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, **params)
            row = gateway.row(raw.headers["x-thrifty-request-id"])
            out.append((raw.parse(), row, float(raw.headers["x-thrifty-cost"])))
    return out


SYSTEM_MARKED = {
    "system": [
        {"type": "text", "text": "You answer questions about the lease."},
        {"type": "text", "text": LONG, "cache_control": MARK},
    ],
    "messages": [{"role": "user", "content": "When is rent due?"}],
}
USER_MARKED = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": LONG, "cache_control": MARK},
                {"type": "text", "text": "When is rent due?"},
            ],
        }
    ],
}
TOOL_MARKED = {
    "tools": [{**TOOL, "cache_control": MARK}],
    "messages": [{"role": "user", "content": "Look up clause 3."}],
}
RESULT_MARKED = {
    "tools": [{**TOOL, "description": "A clause of the lease."}],
    "messages": [
        {"role": "user", "content": "What does the lease say?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "lookup_clause", "input": {}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": LONG,
                    "cache_control": MARK,
                },
                {"type": "text", "text": "Summarise it."},
            ],
        },
    ],
}
ASSISTANT_MARKED = {
    "messages": [
        {"role": "user", "content": "Recite the lease."},
        {"role": "assistant", "content": [{"type": "text", "text": LONG, "cache_control": MARK}]},
        {"role": "user", "content": "Now, when is rent due?"},
    ],
}


@pytest.mark.parametrize(
    "params",
    [SYSTEM_MARKED, USER_MARKED, TOOL_MARKED, RESULT_MARKED, ASSISTANT_MARKED],
    ids=["system", "user", "tool", "tool_result", "assistant"],
)
def test_the_second_call_reads_what_the_callers_mark_wrote(
    gateway: Gateway, params: dict[str, Any]
) -> None:
    (first, first_row, first_cost), (second, second_row, second_cost) = twice(gateway, **params)
    written = first.usage.cache_creation_input_tokens
    assert written is not None and written >= 1024
    assert not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == written
    assert not second.usage.cache_creation_input_tokens
    # the ledger prices reads and writes as Anthropic bills them
    for message, row, cost in ((first, first_row, first_cost), (second, second_row, second_cost)):
        assert cost == pytest.approx(priced(message.usage), rel=1e-9)
        assert row["cost"] == pytest.approx(cost, rel=1e-9)
    assert first_row["cache_write_tokens"] == written
    assert second_row["cached_input_tokens"] == written
    assert second_cost < first_cost
    # the caller's caching, noted apart: not Thrifty's breakpoints
    assert second_row["techniques"]["caller_cache"] == {
        "breakpoints": 1,
        "read_tokens": written,
        "write_tokens": 0,
    }
    assert "prompt_cache" not in first_row["techniques"]
    assert "prompt_cache" not in second_row["techniques"]
    # nor credited to Thrifty: the baseline (the request sent as is) had the same caching
    for row in (first_row, second_row):
        assert not row["savings"] and row["baseline_cost"] == pytest.approx(row["cost"])


def test_a_one_hour_mark_is_billed_at_the_one_hour_write_price(gateway: Gateway) -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    params = {
        "system": [{"type": "text", "text": LONG, "cache_control": hour}],
        "messages": [{"role": "user", "content": "Who pays the rent?"}],
    }
    (first, row, cost), (second, _, _) = twice(gateway, **params)
    written = first.usage.cache_creation_input_tokens
    assert written and first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == written
    assert row["cache_write_1h_tokens"] == written
    assert cost == pytest.approx(priced(first.usage), rel=1e-9)
    price = catalogue()
    premium = (
        price["cache_creation_input_token_cost_above_1hr"]
        - price["cache_creation_input_token_cost"]
    )
    five_minutes = first.usage.model_copy(update={"cache_creation": None})
    assert cost - priced(five_minutes) == pytest.approx(written * premium, rel=1e-9)
    assert second.usage.cache_read_input_tokens == written


def test_a_stream_reads_the_cache_too(gateway: Gateway) -> None:
    with claude(gateway) as client:
        client.messages.create(model=MODEL, max_tokens=100, **SYSTEM_MARKED)
        with client.messages.stream(model=MODEL, max_tokens=100, **SYSTEM_MARKED) as stream:
            final = stream.get_final_message()
    read = final.usage.cache_read_input_tokens
    assert read and read >= 1024
    notes = [row["techniques"].get("caller_cache") for row in gateway.requests()]
    assert {"breakpoints": 1, "read_tokens": read, "write_tokens": 0} in notes


def test_without_marks_nothing_is_cached_on_first_sight(gateway: Gateway) -> None:
    """The counterpart: the same prompt unmarked is Thrifty's to mark (its planner marks
    nothing the first time it sees a prefix), so the marks above were the caller's."""
    plain = {
        "system": "You answer questions about the lease.\n\n" + LONG,
        "messages": [{"role": "user", "content": "When is rent due?"}],
    }
    with claude(gateway) as client:
        first = client.messages.create(model=MODEL, max_tokens=100, **plain)
    assert not first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens


def test_more_than_four_marks_or_a_bad_mark_is_a_400(gateway: Gateway) -> None:
    blocks = [{"type": "text", "text": f"part {n}", "cache_control": MARK} for n in range(5)]
    with claude(gateway) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(
                model=MODEL, max_tokens=50, messages=[{"role": "user", "content": blocks}]
            )
        assert "at most 4 cache_control breakpoints" in caught.value.message
        assert "found 5" in caught.value.message
        with pytest.raises(anthropic.BadRequestError) as bad:
            client.messages.create(
                model=MODEL,
                max_tokens=50,
                system=[{"type": "text", "text": "hi", "cache_control": {"type": "forever"}}],
                messages=[{"role": "user", "content": "hi"}],
            )
        assert "system.0.cache_control" in bad.value.message


def test_four_marks_pass(gateway: Gateway) -> None:
    blocks = [{"type": "text", "text": f"part {n}", "cache_control": MARK} for n in range(4)]
    with claude(gateway) as client:
        message = client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": blocks}]
        )
    assert message.content[0].type == "text"


def test_an_openai_kind_provider_never_sees_a_mark(
    gateway: Gateway, claude_upstream: ServerThread
) -> None:
    # the test upstream's chat route refuses cache_control, as OpenAI does ...
    status, _, body = http(
        "POST",
        f"{claude_upstream.url}/v1/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": MARK}]}
            ],
        },
    )
    assert status == 400 and "cache_control" in body["error"]["message"]
    # ... so these pass only because the gateway stripped every mark
    marked_everywhere = {**RESULT_MARKED, "tools": [{**TOOL, "cache_control": MARK}]}
    with claude(gateway) as client:
        for params in (SYSTEM_MARKED, USER_MARKED, marked_everywhere, ASSISTANT_MARKED):
            message = client.messages.create(model="gpt-4o-mini", max_tokens=100, **params)
            assert message.content
        with client.messages.stream(model="gpt-4o-mini", max_tokens=100, **SYSTEM_MARKED) as stream:
            assert stream.get_final_message().content
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as chat:
        reply = chat.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": LONG, "cache_control": MARK}]}  # type: ignore[typeddict-unknown-key]
            ],
        )
    assert reply.choices[0].message.content
    stats = http("GET", f"{claude_upstream.url}/_stats")[2]
    assert stats["by_endpoint"]["chat.completions"] == 7  # 6 through the gateway, 1 direct


def test_chat_completions_marks_reach_anthropic(gateway: Gateway) -> None:
    """A chat-completions client's marked content parts are carried the same way."""
    messages = [
        {"role": "system", "content": [{"type": "text", "text": LONG, "cache_control": MARK}]},
        {"role": "user", "content": "When is rent due?"},
    ]
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as chat:
        first = chat.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
        second = chat.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens >= 1024
