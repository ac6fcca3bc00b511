"""Exact and semantic caching through the real gateway, against the test upstream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http, upstream_stats

Q = [{"role": "user", "content": "List three primary colours."}]


def cache_config(upstream_url: str, tmp_path: Path, **cache: Any) -> dict[str, Any]:
    config = base_config(upstream_url)
    config["auth"] = {"keys": [GATEWAY_KEY, "other-tenant-key"]}
    config["cache"] = {"enabled": True, "path": str(tmp_path / "cache.db"), **cache}
    return config


def sdk(gateway: Gateway, key: str = GATEWAY_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def ask(client: openai.OpenAI, messages: list[dict[str, Any]] = Q, **params: Any) -> Any:
    params.setdefault("temperature", 0)
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, **params
    )


def upstream_calls(upstream: ServerThread) -> int:
    return int(upstream_stats(upstream)["by_endpoint"].get("chat.completions", 0))


@pytest.fixture
def cached(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> Gateway:
    return start_gateway(cache_config(upstream.url, tmp_path))


def test_exact_hit_costs_nothing_and_saves_the_baseline(
    cached: Gateway, upstream: ServerThread
) -> None:
    with sdk(cached) as client:
        first = ask(client)
        before = upstream_calls(upstream)
        second = ask(client)
    assert upstream_calls(upstream) == before, "the hit never reached the upstream"
    assert first.headers["x-thrifty-cache"].split(";")[0] == "miss"
    assert second.headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert float(second.headers["x-thrifty-cost"]) == 0.0
    row = cached.row(second.headers["x-thrifty-request-id"])
    assert row["cost"] == 0 and row["baseline_cost"] > 0
    assert row["savings"]["exact_cache"] == pytest.approx(row["baseline_cost"])
    assert row["techniques"]["cache"]["result"] == "hit" and row["provider"] == "cache"
    assert cached.attempts(row["request_id"]) == []


@pytest.mark.parametrize(
    "change",
    [{"max_tokens": 5}, {"seed": 7}, {"top_p": 0.5}, {"stop": ["\n"]}, {"n": 2},
     {"response_format": {"type": "json_object"}}, {"presence_penalty": 0.1}],
)  # fmt: skip
def test_parameter_changes_miss(cached: Gateway, change: dict[str, Any]) -> None:
    with sdk(cached) as client:
        ask(client)
        assert ask(client, **change).headers["x-thrifty-cache"].split(";")[0] == "miss"


def result(reply: Any) -> tuple[str, str]:
    """``x-thrifty-cache``'s result and reason (every chat response has both)."""
    status, _, reason = reply.headers["x-thrifty-cache"].partition("; reason=")
    assert reason, reply.headers["x-thrifty-cache"]
    return status, reason


def test_sampled_requests_are_cached_by_default(cached: Gateway) -> None:
    with sdk(cached) as client:
        create = client.chat.completions.with_raw_response.create
        first = create(model="gpt-4o", messages=Q, temperature=0.9)
        again = create(model="gpt-4o", messages=Q, temperature=0.9)
        unset = create(model="gpt-4o", messages=Q)  # another request: temperature unset
    assert result(first) == ("miss", "no stored answer from gpt-4o, stored")
    assert result(again)[0] == "hit-exact" and "gpt-4o" in result(again)[1]
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert result(unset)[0] == "miss"


def test_sampled_requests_bypass_when_the_config_says_so(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(cache_config(upstream.url, tmp_path, cache_nondeterministic=False))
    with sdk(gateway) as client:
        create = client.chat.completions.with_raw_response.create
        for _ in range(2):
            sampled = create(model="gpt-4o", messages=Q)
        assert result(sampled) == (
            "bypass",
            "sampled request (temperature unset (1)) and cache.cache_nondeterministic is false",
        )
        row = gateway.row(sampled.headers["x-thrifty-request-id"])
        assert row["techniques"]["cache"]["result"] == "bypass"
        allow = {"x-thrifty-cache": "allow-random"}
        create(model="gpt-4o", messages=Q, extra_headers=allow)
        again = create(model="gpt-4o", messages=Q, extra_headers=allow)
    assert result(again)[0] == "hit-exact"


def test_tenants_never_see_each_other(cached: Gateway) -> None:
    with sdk(cached) as mine, sdk(cached, "other-tenant-key") as theirs:
        ask(mine)
        assert ask(theirs).headers["x-thrifty-cache"].split(";")[0] == "miss"
        assert ask(mine).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"


def test_request_controls(cached: Gateway) -> None:
    with sdk(cached) as client:
        no_store = ask(client, extra_headers={"x-thrifty-cache": "no-store"})
        assert result(no_store) == ("miss", "no stored answer from gpt-4o, not stored (no-store)")
        assert result(ask(client))[0] == "miss", "no-store stored nothing"
        for word in ("no-cache", "refresh"):
            skipped = ask(client, extra_headers={"x-thrifty-cache": word})
            assert result(skipped) == ("bypass", "not looked up (no-cache), stored")
        both = ask(client, extra_headers={"x-thrifty-cache": "no-cache, no-store"})
        assert result(both) == ("bypass", "x-thrifty-cache: no-cache, no-store")
        assert result(ask(client))[0] == "hit-exact"


def test_ttl_expiry(cached: Gateway) -> None:
    with sdk(cached) as client:
        ask(client, extra_headers={"x-thrifty-cache-ttl": "1"})
        assert ask(client).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
        time.sleep(1.2)
        assert ask(client).headers["x-thrifty-cache"].split(";")[0] == "miss"


def test_streaming_client_gets_a_cached_answer_as_a_stream(cached: Gateway) -> None:
    with sdk(cached) as client:
        first = ask(client).parse()
        raw = ask(client, stream=True, stream_options={"include_usage": True})
        chunks = list(raw.parse())
        # and a streamed answer is cached for a later plain request
        streamed = list(
            ask(client, [{"role": "user", "content": "Name a fruit."}], stream=True).parse()
        )
        plain = ask(client, [{"role": "user", "content": "Name a fruit."}])
    assert raw.headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert plain.headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
    assert plain.parse().choices[0].message.content == "".join(
        c.choices[0].delta.content or "" for c in streamed if c.choices
    )


def test_restart_keeps_the_sqlite_cache(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    config = cache_config(upstream.url, tmp_path)
    first = start_gateway(config)
    with sdk(first) as client:
        ask(client)
    first.server.stop()
    second = start_gateway(config)
    with sdk(second) as client:
        assert ask(client).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"


def test_semantic_hit_for_a_paraphrase_and_guard_pairs_miss(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(
        cache_config(
            upstream.url,
            tmp_path,
            semantic={"enabled": True, "threshold": 0.8, "pair_check": {"enabled": False}},
        )
    )

    def user(text: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": text}]

    with sdk(gateway) as client:
        ask(client, user("What is the capital city of France?"))
        paraphrase = ask(client, user("Tell me the capital city of France."))
        ask(client, user("Convert 100 km to miles."))
        swapped = ask(client, user("Convert 100 miles to km."))
        ask(client, user("Is aspirin safe for young children?"))
        negated = ask(client, user("Is aspirin not safe for young children?"))
        other_number = ask(client, user("Convert 250 km to miles."))
        multi_turn = ask(client, [*user("Hi"), {"role": "assistant", "content": "Hello!"},
                                  *user("What is the capital city of France?")])  # fmt: skip
    assert paraphrase.headers["x-thrifty-cache"].split(";")[0] == "hit-semantic"
    assert float(paraphrase.headers["x-thrifty-cache-similarity"]) >= 0.8
    row = gateway.row(paraphrase.headers["x-thrifty-request-id"])
    assert row["cost"] == 0 and row["techniques"]["cache"]["type"] == "semantic"
    for response in (swapped, negated, other_number):
        assert response.headers["x-thrifty-cache"].split(";")[0] == "miss"
        note = gateway.row(response.headers["x-thrifty-request-id"])["techniques"]["cache"][
            "semantic"
        ]
        assert "blocked_by" in note, note
    assert multi_turn.headers["x-thrifty-cache"].split(";")[0] == "miss"


def test_semantic_verifier_confirms_or_blocks_and_is_billed(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    from thrifty.cache.verify import verify_messages
    from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
    from thrifty.upstream.app import UpstreamOptions, build_upstream_app

    q1, q2, q3 = (
        "What is the capital city of France?",
        "Tell me the capital city of France.",
        "Which is the capital city of France?",
    )

    def record(rid: str, messages: list[dict[str, str]], model: str, text: str) -> ReplayRecord:
        return ReplayRecord(rid, tuple(messages), {}, {}, {model: RecordedAnswer(text=text)})

    dataset = tmp_path / "recorded.jsonl"
    write_dataset([
        record("q1", [{"role": "user", "content": q1}], "gpt-4o", "Paris."),
        record("q3", [{"role": "user", "content": q3}], "gpt-4o", "Paris, of course."),
        record("v2", verify_messages(q2, q1), "verifier", "YES"),
        record("v3", verify_messages(q3, q1), "verifier", "No - different wording matters here."),
    ], dataset)  # fmt: skip
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=dataset))) as recorded:
        config = cache_config(recorded.url, tmp_path, semantic={
            "enabled": True, "threshold": 0.8, "verify_model": "verifier",
            "pair_check": {"enabled": False}})  # fmt: skip
        config["models"]["verifier"] = {"provider": "up", "price": {"input": 0.1, "output": 0.1}}
        gateway = start_gateway(config)
        with sdk(gateway) as client:
            ask(client, [{"role": "user", "content": q1}])
            confirmed = ask(client, [{"role": "user", "content": q2}])
            blocked = ask(client, [{"role": "user", "content": q3}])
    assert confirmed.headers["x-thrifty-cache"].split(";")[0] == "hit-semantic"
    assert confirmed.parse().choices[0].message.content == "Paris."
    hit = gateway.row(confirmed.headers["x-thrifty-request-id"])
    assert [a["purpose"] for a in gateway.attempts(hit["request_id"])] == ["cache_verify"]
    assert 0 < hit["cost"] < hit["baseline_cost"]
    assert hit["savings"]["semantic_cache"] == pytest.approx(hit["baseline_cost"] - hit["cost"])
    assert blocked.headers["x-thrifty-cache"].split(";")[0] == "miss"
    assert blocked.parse().choices[0].message.content == "Paris, of course."
    miss = gateway.row(blocked.headers["x-thrifty-request-id"])
    assert [a["purpose"] for a in gateway.attempts(miss["request_id"])] == ["cache_verify", "main"]
    assert miss["savings"]["semantic_cache"] < 0, "a verifier call that ends in a miss: a loss"
    assert "verifier" in miss["techniques"]["cache"]["semantic"]["blocked_by"]


@pytest.mark.parametrize("temperature", ["warm", [0]])
def test_semantic_cache_skips_a_temperature_that_is_not_a_number(
    upstream: ServerThread,
    start_gateway: Callable[..., Gateway],
    tmp_path: Path,
    temperature: Any,
) -> None:
    """Not the cache's to refuse: it steps aside and the upstream judges the value."""
    gateway = start_gateway(cache_config(upstream.url, tmp_path, semantic={"enabled": True}))
    body = {"model": "gpt-4o", "messages": Q, "temperature": temperature}
    status, headers, _ = http("POST", f"{gateway.base_url}/chat/completions", body,
                              {"authorization": f"Bearer {GATEWAY_KEY}",
                               "content-type": "application/json"})  # fmt: skip
    assert status == 200  # the test upstream does not check temperature
    row = gateway.row(headers["x-thrifty-request-id"])
    assert row["techniques"]["cache"]["semantic"] == "skipped: temperature is not a number"


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        ({}, True),  # default: as the exact cache, every temperature
        ({"semantic_cap": 0.0}, False),
        ({"cache_nondeterministic": False}, False),
    ],
)
def test_semantic_cache_and_sampled_requests(
    upstream: ServerThread,
    start_gateway: Callable[..., Gateway],
    tmp_path: Path,
    settings: dict[str, Any],
    served: bool,
) -> None:
    """Most apps never set ``temperature`` (sampled at 1): the semantic cache serves them by
    default; ``semantic.max_temperature`` or ``cache_nondeterministic: false`` turn it off."""
    semantic: dict[str, Any] = {"enabled": True, "threshold": 0.8, "pair_check": {"enabled": False}}
    if "semantic_cap" in settings:
        semantic["max_temperature"] = settings["semantic_cap"]
    extra = {k: v for k, v in settings.items() if k == "cache_nondeterministic"}
    gateway = start_gateway(cache_config(upstream.url, tmp_path, semantic=semantic, **extra))

    def unset(client: openai.OpenAI, text: str) -> Any:  # no temperature at all
        return client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": text}]
        )

    with sdk(gateway) as client:
        unset(client, "What is the capital city of France?")
        paraphrase = unset(client, "Tell me the capital city of France.")
    status = paraphrase.headers["x-thrifty-cache"].split(";")[0]
    note = gateway.row(paraphrase.headers["x-thrifty-request-id"])["techniques"]["cache"]
    if served:
        assert status == "hit-semantic" and note["type"] == "semantic"
    else:
        assert status != "hit-semantic"
        assert str(note["semantic"]).startswith("skipped: "), note
