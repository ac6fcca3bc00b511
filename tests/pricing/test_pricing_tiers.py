"""What gets priced at all (issue 15, items 1-3): $0 entries are unknown, long-context and
range tiers, 1-hour cache writes, audio/image tokens, per-call fees, vendor prefixes.

Expected figures are read from the bundled catalogue's raw entries, never typed in."""

from __future__ import annotations

import math

import pytest

from thrifty.pipeline.prices import unit_prices
from thrifty.pricing import PriceCatalogue, cost
from thrifty.usage import Usage


@pytest.fixture(scope="module")
def catalogue() -> PriceCatalogue:
    return PriceCatalogue.bundled()


def raw(catalogue: PriceCatalogue, name: str) -> dict[str, object]:
    entry = catalogue.raw()[name]
    assert isinstance(entry, dict)
    return entry


def test_paid_services_listed_at_zero_are_unknown(catalogue: PriceCatalogue) -> None:
    for name in ("deepseek-v3-2-251201", "command-a-plus-05-2026"):
        entry = raw(catalogue, name)
        assert entry["input_cost_per_token"] == 0 and entry["output_cost_per_token"] == 0
        assert catalogue.lookup(name) is None, f"{name} is a paid service listed at $0"
        assert catalogue.zero_priced(name)
        assert name not in catalogue.names()
    zero_chat = [
        k for k, v in catalogue.raw().items()
        if isinstance(v, dict) and v.get("mode") == "chat"
        and v.get("input_cost_per_token") == 0 and v.get("output_cost_per_token") == 0
    ]  # fmt: skip
    assert zero_chat
    for name in zero_chat:  # never the $0 entry (a same-vendor alias with a price may answer)
        found = catalogue.lookup(name)
        assert found is None or (found.name != name and not found.all_zero), name


def test_long_context_tier_prices_the_whole_call(catalogue: PriceCatalogue) -> None:
    entry = raw(catalogue, "gemini-2.5-pro")
    price = catalogue.lookup("gemini-2.5-pro")
    assert price is not None
    long = Usage(input_tokens=300_000, output_tokens=1_000, cached_input_tokens=100_000)
    expected = math.fsum((
        200_000 * float(entry["input_cost_per_token_above_200k_tokens"]),  # type: ignore[arg-type]
        100_000 * float(entry["cache_read_input_token_cost_above_200k_tokens"]),  # type: ignore[arg-type]
        1_000 * float(entry["output_cost_per_token_above_200k_tokens"]),  # type: ignore[arg-type]
    ))  # fmt: skip
    assert cost(long, price).total == pytest.approx(expected, rel=1e-12)
    short = Usage(input_tokens=200_000, output_tokens=1_000)  # at the threshold: base rates
    base = 200_000 * float(entry["input_cost_per_token"]) + 1_000 * float(  # type: ignore[arg-type]
        entry["output_cost_per_token"]  # type: ignore[arg-type]
    )
    assert cost(short, price).total == pytest.approx(base, rel=1e-12)
    # the worst case (budget reservation) takes the dearest tier
    worst_in, worst_out = unit_prices(price)
    assert worst_in >= float(entry["input_cost_per_token_above_200k_tokens"])  # type: ignore[arg-type]
    assert worst_out >= float(entry["output_cost_per_token_above_200k_tokens"])  # type: ignore[arg-type]


def test_entry_with_only_range_tiers_is_usable(catalogue: PriceCatalogue) -> None:
    ranges = raw(catalogue, "dashscope/qwen3-max")["tiered_pricing"]
    assert isinstance(ranges, list) and "input_cost_per_token" not in raw(
        catalogue, "dashscope/qwen3-max"
    )
    price = catalogue.lookup("qwen3-max", provider_hint="dashscope")
    assert price is not None and price.name == "dashscope/qwen3-max"
    for tier in ranges:
        low, high = tier["range"]
        tokens = int(low) + 1 if low else int(high) // 2
        usage = Usage(input_tokens=tokens, output_tokens=100)
        expected = tokens * tier["input_cost_per_token"] + 100 * tier["output_cost_per_token"]
        assert cost(usage, price).total == pytest.approx(expected, rel=1e-12), tier["range"]


def test_one_hour_cache_writes(catalogue: PriceCatalogue) -> None:
    entry = raw(catalogue, "claude-sonnet-4-5")
    price = catalogue.lookup("claude-sonnet-4-5")
    assert price is not None
    usage = Usage(input_tokens=3_000, cache_write_tokens=3_000, cache_write_1h_tokens=1_000)
    expected = 2_000 * float(entry["cache_creation_input_token_cost"]) + 1_000 * float(  # type: ignore[arg-type]
        entry["cache_creation_input_token_cost_above_1hr"]  # type: ignore[arg-type]
    )
    assert cost(usage, price).cache_write == pytest.approx(expected, rel=1e-12)


def test_audio_tokens_at_their_own_rates(catalogue: PriceCatalogue) -> None:
    entry = raw(catalogue, "gpt-4o-audio-preview-2024-12-17")
    price = catalogue.lookup("gpt-4o-audio-preview-2024-12-17")
    assert price is not None
    usage = Usage(
        input_tokens=1_000, audio_input_tokens=400, output_tokens=500, audio_output_tokens=300
    )
    breakdown = cost(usage, price)
    f = float
    assert breakdown.input == pytest.approx(
        600 * f(entry["input_cost_per_token"]) + 400 * f(entry["input_cost_per_audio_token"]),  # type: ignore[arg-type]
        rel=1e-12,
    )
    assert breakdown.output == pytest.approx(
        200 * f(entry["output_cost_per_token"]) + 300 * f(entry["output_cost_per_audio_token"]),  # type: ignore[arg-type]
        rel=1e-12,
    )


def test_per_call_fee(catalogue: PriceCatalogue) -> None:
    name = next(
        k for k, v in catalogue.raw().items()
        if isinstance(v, dict) and v.get("mode") == "chat" and v.get("input_cost_per_request")
    )  # fmt: skip
    price = catalogue.lookup(name)
    assert price is not None
    fee = float(raw(catalogue, name)["input_cost_per_request"])  # type: ignore[arg-type]
    breakdown = cost(Usage(input_tokens=10, output_tokens=10), price)
    assert breakdown.request == fee
    assert breakdown.total == pytest.approx(
        fee + 10 * price.input_per_token + 10 * price.output_per_token, rel=1e-12
    )


def test_vendor_prefix_never_becomes_another_vendors_price(catalogue: PriceCatalogue) -> None:
    direct = catalogue.lookup("deepseek-chat", provider_hint="deepseek")
    assert direct is not None and direct.provider == "deepseek"
    # OpenRouter serving DeepSeek's model is not DeepSeek direct: unknown, not DeepSeek's rate
    assert catalogue.lookup("deepseek/deepseek-chat", provider_hint="openrouter") is None
    assert catalogue.lookup("deepseek/deepseek-chat", provider_hint="deepseek") == direct
    # a vendor prefix strips only into that vendor's own entry
    stripped = catalogue.lookup("openai/gpt-4o-mini")
    assert stripped is not None and stripped.provider == "openai"
    hosted = catalogue.lookup("mistralai/Mixtral-8x7B-Instruct-v0.1", provider_hint="together_ai")
    assert hosted is not None and hosted.name == "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"


def test_close_matches_find_the_name_under_a_vendor(catalogue: PriceCatalogue) -> None:
    matches = catalogue.suggest("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1" in matches


def test_audio_tokens_follow_the_long_context_tier(catalogue: PriceCatalogue) -> None:
    name = next(
        k for k, v in catalogue.raw().items()
        if isinstance(v, dict) and v.get("input_cost_per_audio_token_above_200k_tokens")
        and catalogue.lookup(k) is not None and catalogue.lookup(k).name == k  # type: ignore[union-attr]
    )  # fmt: skip
    entry = raw(catalogue, name)
    price = catalogue.lookup(name)
    assert price is not None
    usage = Usage(input_tokens=300_000, audio_input_tokens=300_000)
    tier_rate = float(entry["input_cost_per_audio_token_above_200k_tokens"])  # type: ignore[arg-type]
    assert cost(usage, price).input == pytest.approx(300_000 * tier_rate, rel=1e-12)
