"""Every usage shape the providers send, read into one :class:`Usage` (issue 15, item 4),
and usage that cannot be true refused (item 5).

The fixtures are the ``usage`` objects of the providers' documented responses (source in
each comment); expectations are derived from their fields."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from thrifty.pricing import ModelPrice, cost
from thrifty.usage import MAX_TOKENS, Usage, UsageError, from_anthropic, parse_openai

# platform.openai.com/docs/guides/prompt-caching: the usage of a cached request
OPENAI_CACHED = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920},
    "completion_tokens_details": {
        "reasoning_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
    },
}  # fmt: skip
# platform.openai.com/docs/guides/reasoning: reasoning inside completion_tokens
OPENAI_REASONING = {
    "prompt_tokens": 75,
    "completion_tokens": 1186,
    "total_tokens": 1261,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 1024, "audio_tokens": 0,
        "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
    },
}  # fmt: skip
# platform.openai.com/docs/guides/audio: audio tokens inside prompt/completion tokens
OPENAI_AUDIO = {
    "prompt_tokens": 120,
    "completion_tokens": 390,
    "total_tokens": 510,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 80, "text_tokens": 40},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 300, "text_tokens": 90},
}
# platform.openai.com/docs/api-reference/responses/object
OPENAI_RESPONSES = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 123,
}
# openrouter.ai/docs/use-cases/usage-accounting
OPENROUTER = {
    "completion_tokens": 2,
    "completion_tokens_details": {"reasoning_tokens": 0},
    "cost": 0.95,
    "cost_details": {"upstream_inference_cost": 19},
    "prompt_tokens": 194,
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100, "audio_tokens": 0},
    "total_tokens": 196,
}
# api-docs.deepseek.com/guides/kv_cache: hit + miss = prompt
DEEPSEEK = {
    "prompt_tokens": 1290,
    "completion_tokens": 48,
    "total_tokens": 1338,
    "prompt_tokens_details": {"cached_tokens": 1216},
    "prompt_cache_hit_tokens": 1216,
    "prompt_cache_miss_tokens": 74,
}
# the same, from a DeepSeek-compatible server that sends only hit/miss
DEEPSEEK_HIT_MISS = {"completion_tokens": 48, "prompt_cache_hit_tokens": 1216,
                     "prompt_cache_miss_tokens": 74}  # fmt: skip
# docs.anthropic.com/en/docs/build-with-claude/prompt-caching ("Tracking cache performance")
ANTHROPIC = {
    "input_tokens": 50,
    "cache_read_input_tokens": 100_000,
    "cache_creation_input_tokens": 248,
    "output_tokens": 503,
    "cache_creation": {"ephemeral_5m_input_tokens": 148, "ephemeral_1h_input_tokens": 100},
}
# Gemini's OpenAI-compatible API (and xAI): thinking reported beside completion_tokens,
# counted in total_tokens (github.com/router-for-me/CLIProxyAPI/issues/5733)
GEMINI_THOUGHTS = {
    "prompt_tokens": 21,
    "completion_tokens": 40,
    "total_tokens": 121,
    "completion_tokens_details": {"reasoning_tokens": 60},
}


def test_openai_cached_read() -> None:
    u = parse_openai(OPENAI_CACHED)
    assert u is not None
    assert u.input_tokens == OPENAI_CACHED["prompt_tokens"]
    assert u.cached_input_tokens == OPENAI_CACHED["prompt_tokens_details"]["cached_tokens"]  # type: ignore[index]
    assert u.uncached_input_tokens == u.input_tokens - u.cached_input_tokens
    assert u.output_tokens == OPENAI_CACHED["completion_tokens"]


def test_openai_reasoning_inside_completion() -> None:
    u = parse_openai(OPENAI_REASONING)
    assert u is not None
    assert u.output_tokens == OPENAI_REASONING["completion_tokens"]  # total already matches
    assert u.reasoning_tokens == OPENAI_REASONING["completion_tokens_details"]["reasoning_tokens"]  # type: ignore[index]


def test_openai_audio_tokens() -> None:
    u = parse_openai(OPENAI_AUDIO)
    assert u is not None
    assert u.audio_input_tokens == OPENAI_AUDIO["prompt_tokens_details"]["audio_tokens"]  # type: ignore[index]
    assert u.audio_output_tokens == OPENAI_AUDIO["completion_tokens_details"]["audio_tokens"]  # type: ignore[index]
    assert u.input_tokens == OPENAI_AUDIO["prompt_tokens"]


def test_openai_responses_api() -> None:
    u = parse_openai(OPENAI_RESPONSES)
    assert u is not None
    assert (u.input_tokens, u.output_tokens) == (
        OPENAI_RESPONSES["input_tokens"],
        OPENAI_RESPONSES["output_tokens"],
    )


def test_openrouter_cache_write_tokens() -> None:
    u = parse_openai(OPENROUTER)
    assert u is not None
    details = OPENROUTER["prompt_tokens_details"]
    assert u.cache_write_tokens == details["cache_write_tokens"]  # type: ignore[index]
    assert u.uncached_input_tokens == OPENROUTER["prompt_tokens"] - u.cache_write_tokens


@pytest.mark.parametrize("raw", [DEEPSEEK, DEEPSEEK_HIT_MISS])
def test_deepseek_hit_and_miss(raw: dict[str, Any]) -> None:
    u = parse_openai(raw)
    assert u is not None
    assert u.input_tokens == raw["prompt_cache_hit_tokens"] + raw["prompt_cache_miss_tokens"]
    assert u.cached_input_tokens == raw["prompt_cache_hit_tokens"]
    assert u.uncached_input_tokens == raw["prompt_cache_miss_tokens"]


def test_anthropic_input_excludes_the_cache() -> None:
    u = from_anthropic(ANTHROPIC)
    assert u is not None
    read, writes = ANTHROPIC["cache_read_input_tokens"], ANTHROPIC["cache_creation_input_tokens"]
    assert u.input_tokens == ANTHROPIC["input_tokens"] + read + writes
    assert (u.cached_input_tokens, u.cache_write_tokens) == (read, writes)
    assert u.uncached_input_tokens == ANTHROPIC["input_tokens"]
    assert u.cache_write_1h_tokens == ANTHROPIC["cache_creation"]["ephemeral_1h_input_tokens"]  # type: ignore[index]
    assert u.output_tokens == ANTHROPIC["output_tokens"]
    # the same object reaching us through an OpenAI-compatible proxy reads the same
    assert parse_openai(ANTHROPIC) == u == Usage.from_anthropic(ANTHROPIC)


def test_anthropic_priced_with_one_hour_writes() -> None:
    price = ModelPrice(
        name="m", input_per_token=3.0, output_per_token=15.0, cached_input_per_token=0.3,
        cache_write_per_token=3.75, cache_write_1h_per_token=6.0,
    )  # fmt: skip
    u = from_anthropic(ANTHROPIC)
    assert u is not None
    split = ANTHROPIC["cache_creation"]
    expected = (
        ANTHROPIC["input_tokens"] * 3.0
        + ANTHROPIC["cache_read_input_tokens"] * 0.3
        + split["ephemeral_5m_input_tokens"] * 3.75  # type: ignore[index]
        + split["ephemeral_1h_input_tokens"] * 6.0  # type: ignore[index]
        + ANTHROPIC["output_tokens"] * 15.0
    )
    assert cost(u, price).total == pytest.approx(expected, rel=1e-12)


def test_one_hour_writes_survive_the_anthropic_providers_chat_form() -> None:
    """The Anthropic provider hands the pipeline OpenAI-shaped usage; the 1-hour share of
    the writes rides in ``prompt_tokens_details`` so it is still priced at its own rate."""
    from thrifty.providers.anthropic_reply import usage_to_openai

    chat_form = usage_to_openai(ANTHROPIC)
    assert chat_form["prompt_tokens_details"]["cache_write_1h_tokens"] > 0
    assert parse_openai(chat_form) == from_anthropic(ANTHROPIC)


def test_reasoning_outside_completion_is_added() -> None:
    u = parse_openai(GEMINI_THOUGHTS)
    assert u is not None
    reasoning = GEMINI_THOUGHTS["completion_tokens_details"]["reasoning_tokens"]  # type: ignore[index]
    assert u.output_tokens == GEMINI_THOUGHTS["completion_tokens"] + reasoning
    assert u.input_tokens + u.output_tokens == GEMINI_THOUGHTS["total_tokens"]
    assert u.reasoning_tokens == reasoning
    # no total_tokens, but more reasoning than completion: it cannot be inside
    no_total = {k: v for k, v in GEMINI_THOUGHTS.items() if k != "total_tokens"}
    assert parse_openai(no_total) == u


def test_absent_usage_is_none() -> None:
    assert parse_openai(None) is None and parse_openai({}) is None
    assert Usage.from_openai(None) is None and from_anthropic(None) is None


@pytest.mark.parametrize(
    "raw",
    [
        "12 tokens",
        [1, 2],
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": 5, "completion_tokens": -1},
        {"prompt_tokens": 10**18, "completion_tokens": 1},
        {"prompt_tokens": MAX_TOKENS + 1},
        {"prompt_tokens": "12", "completion_tokens": 3},
        {"prompt_tokens": 1.5, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 5, "prompt_tokens_details": "cached"},
        {"prompt_tokens": 5, "completion_tokens_details": {"reasoning_tokens": -2}},
        {"input_tokens": 5, "cache_read_input_tokens": -1},
    ],
)
def test_impossible_usage_is_refused(raw: Any, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UsageError):
        parse_openai(raw)
    with caplog.at_level(logging.WARNING, logger="thrifty.usage"):
        assert Usage.from_openai(raw) is None  # the caller estimates instead
    assert "upstream usage ignored" in caplog.text


def test_whole_floats_and_add() -> None:
    u = parse_openai({"prompt_tokens": 10.0, "completion_tokens": 2})
    assert u == Usage(input_tokens=10, output_tokens=2)
    a = from_anthropic(ANTHROPIC)
    assert a is not None
    both = a + a
    assert both.cache_write_1h_tokens == 2 * a.cache_write_1h_tokens
    assert both.input_tokens == 2 * a.input_tokens
