"""Pricing against the real vendored litellm catalogue: lookups, cost arithmetic, overrides."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import pytest

import thrifty.pricing
from thrifty.errors import ConfigError
from thrifty.pricing import (
    CostBreakdown,
    ModelPrice,
    PriceCatalogue,
    cost,
    cost_or_none,
    default_user_prices_path,
)
from thrifty.usage import Usage

M = 1_000_000


@pytest.fixture(scope="module")
def catalogue() -> PriceCatalogue:
    return PriceCatalogue.bundled()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No THRIFTY_PRICES_FILE and an empty home, so default() sees only what a test puts."""
    monkeypatch.delenv("THRIFTY_PRICES_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write_prices(path: Path, entries: dict[str, object], *, gz: bool = False) -> Path:
    data = json.dumps(entries).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# -- lookup ---------------------------------------------------------------------------


def test_exported_members() -> None:
    assert sorted(thrifty.pricing.__all__) == sorted(
        [
            "CostBreakdown",
            "ModelPrice",
            "PriceCatalogue",
            "cost",
            "cost_or_none",
            "default_user_prices_path",
        ]
    )


def test_gpt_4o_mini(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("gpt-4o-mini")
    assert price is not None
    assert price.name == "gpt-4o-mini"
    assert price.input_per_token == pytest.approx(0.15 / M)
    assert price.output_per_token == pytest.approx(0.60 / M)
    assert price.cached_input_per_token == pytest.approx(0.075 / M)
    assert price.batch_input_per_token == pytest.approx(0.075 / M)
    assert price.batch_output_per_token == pytest.approx(0.30 / M)
    assert price.max_input_tokens == 128_000
    assert price.provider == "openai"
    assert price.mode == "chat"
    assert {"tools", "vision", "json_schema", "prompt_caching"} <= price.capabilities
    assert price.source == "catalogue"


def test_deepseek_chat_by_provider_hint(catalogue: PriceCatalogue) -> None:
    by_hint = catalogue.lookup("deepseek-chat", provider_hint="deepseek")
    full = catalogue.lookup("deepseek/deepseek-chat")
    assert by_hint is not None and full is not None
    assert full.name == "deepseek/deepseek-chat"
    for price in (by_hint, full):
        assert price.input_per_token == pytest.approx(0.28 / M)
        assert price.cached_input_per_token == pytest.approx(0.028 / M)
        assert price.output_per_token == pytest.approx(0.42 / M)
        assert price.max_input_tokens == 131_072


def test_dashscope_qwen_needs_provider_hint(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("qwen-plus", provider_hint="dashscope")
    assert price is not None
    assert price.name == "dashscope/qwen-plus"
    assert price.provider == "dashscope"
    assert price.input_per_token == pytest.approx(0.4 / M)
    assert price.output_per_token == pytest.approx(1.2 / M)
    assert "reasoning" in price.capabilities


def test_reasoning_price_read(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("dashscope/qwen-turbo")
    assert price is not None
    assert price.reasoning_per_token == pytest.approx(0.5 / M)


def test_prefix_stripped_and_case_insensitive(catalogue: PriceCatalogue) -> None:
    stripped = catalogue.lookup("myproxy/gpt-4o-mini")
    assert stripped is not None and stripped.name == "gpt-4o-mini"
    folded = catalogue.lookup("GPT-4o-Mini")
    assert folded is not None and folded.name == "gpt-4o-mini"


def test_unknown_and_junk_are_none(catalogue: PriceCatalogue) -> None:
    assert catalogue.lookup("no-such-model-anywhere") is None
    assert catalogue.lookup("no-such-model", provider_hint="deepseek") is None
    assert catalogue.lookup("sample_spec") is None
    assert "sample_spec" not in catalogue.names()
    assert "gpt-4o-mini" in catalogue.names()


def test_unpriced_and_zero_priced_are_unknown(tmp_path: Path) -> None:
    path = write_prices(
        tmp_path / "p.json",
        {
            "no-output-price": {"input_cost_per_token": 1e-6, "mode": "chat"},
            "zero-model": {"input_cost_per_token": 0, "output_cost_per_token": 0.0},
            "bad-price": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-6},
            "paid": {"input_cost_per_token": 1e-6, "output_cost_per_token": 0.0},
        },
    )
    catalogue = PriceCatalogue.from_file(path)
    assert catalogue.lookup("no-output-price") is None
    assert catalogue.lookup("bad-price") is None
    # $0/$0 in a catalogue is a blank, not a promise (many paid services are listed so)
    assert catalogue.lookup("zero-model") is None and catalogue.zero_priced("zero-model")
    assert catalogue.names() == ["paid"]
    assert catalogue.source == f"file:{path}"
    free = ModelPrice.from_per_million("zero-model", input=0, output=0)  # what config says
    known = catalogue.with_overrides({"zero-model": free}).lookup("zero-model")
    assert known is free
    assert cost_or_none(Usage(input_tokens=10, output_tokens=10), known) == 0.0


def test_suggest_close_names(catalogue: PriceCatalogue) -> None:
    assert "gpt-4o-mini" in catalogue.suggest("gpt-4o-mni")
    assert "gpt-4o-mini" in catalogue.suggest("openrouter/gpt-4o-mnii")


# -- files and default() --------------------------------------------------------------


def test_gzip_user_file(tmp_path: Path) -> None:
    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "mode": "chat"}
    path = write_prices(tmp_path / "p.json.gz", {"m": entry}, gz=True)
    price = PriceCatalogue.from_file(path).lookup("m")
    assert price is not None and price.output_per_token == 2e-6


@pytest.mark.parametrize("content", [b"[1, 2]", b"{not json", b""])
def test_bad_file_is_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"bad\.json"):
        PriceCatalogue.from_file(path)
    with pytest.raises(ConfigError):
        PriceCatalogue.from_file(tmp_path / "missing.json")


def test_default_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PriceCatalogue.default().source == "catalogue"

    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    user = default_user_prices_path()
    assert user == clean_env / ".thrifty" / "prices.json"
    user.parent.mkdir()
    write_prices(user, {"home-model": entry})
    assert PriceCatalogue.default().source == f"file:{user}"

    env_file = write_prices(clean_env / "env.json", {"env-model": entry})
    monkeypatch.setenv("THRIFTY_PRICES_FILE", str(env_file))
    catalogue = PriceCatalogue.default()
    assert catalogue.names() == ["env-model"]


@pytest.mark.slow
def test_nothing_loaded_at_import() -> None:
    code = (
        "import thrifty.pricing, thrifty.pricing.catalogue as c;"
        "print(c._load_cached.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


# -- overrides ------------------------------------------------------------------------


def test_override_precedence(catalogue: PriceCatalogue) -> None:
    mine = ModelPrice.from_per_million("gpt-4o-mini", input=1.0, output=2.0, context_window=64)
    deepseek = ModelPrice.from_per_million("deepseek-chat", input=0.1, output=0.2)
    local = ModelPrice.from_per_million("my-local-llm", input=0, output=0)
    overridden = catalogue.with_overrides(
        {"gpt-4o-mini": mine, "deepseek-chat": deepseek, "my-local-llm": local}
    )
    assert overridden.lookup("gpt-4o-mini") is mine
    assert overridden.lookup("myproxy/gpt-4o-mini") is mine
    assert overridden.lookup("GPT-4O-MINI") is mine
    assert overridden.lookup("deepseek/deepseek-chat") is deepseek  # beats the file's key
    assert overridden.lookup("my-local-llm") is local
    assert "my-local-llm" in overridden.names()
    assert mine.source == "config" and mine.max_input_tokens == 64
    # the original catalogue is untouched
    original = catalogue.lookup("gpt-4o-mini")
    assert original is not None and original.source == "catalogue"
    assert "my-local-llm" not in catalogue.names()


def test_from_per_million_validates() -> None:
    price = ModelPrice.from_per_million(
        "m", input=0.28, output=0.42, cached_input=0.028, batch_input=0.14, batch_output=0.21
    )
    assert price.input_per_token == pytest.approx(0.28e-6)
    assert price.cached_input_per_token == pytest.approx(0.028e-6)
    assert price.cache_write_per_token is None
    assert price.batch_output_per_token == pytest.approx(0.21e-6)
    with pytest.raises(ValueError):
        ModelPrice.from_per_million("m", input=-1, output=1)
    with pytest.raises(ValueError):
        ModelPrice.from_per_million("m", input=math.nan, output=1)


# -- cost -----------------------------------------------------------------------------

USAGE = Usage(
    input_tokens=10_000,
    cached_input_tokens=4_000,
    cache_write_tokens=1_000,
    output_tokens=3_000,
    reasoning_tokens=1_000,
)


def test_cost_by_price_class() -> None:
    price = ModelPrice.from_per_million(
        "m", input=2.0, output=8.0, cached_input=0.5, cache_write=2.5, reasoning=10.0
    )
    got = cost(USAGE, price)
    # 5,000 uncached × $2/M; 4,000 cached × $0.5/M; 1,000 writes × $2.5/M;
    # 2,000 plain output × $8/M; 1,000 reasoning × $10/M
    assert got.input == pytest.approx(0.010)
    assert got.cached_input == pytest.approx(0.002)
    assert got.cache_write == pytest.approx(0.0025)
    assert got.output == pytest.approx(0.016)
    assert got.reasoning == pytest.approx(0.010)
    assert got.total == pytest.approx(0.0405)
    assert got.batch_price_missing is False


def test_cost_fallback_prices() -> None:
    price = ModelPrice.from_per_million("m", input=2.0, output=8.0)
    got = cost(USAGE, price)
    # cached and writes at the input price, reasoning at the output price
    assert got.cached_input == pytest.approx(0.008)
    assert got.cache_write == pytest.approx(0.002)
    assert got.reasoning == pytest.approx(0.008)
    assert got.total == pytest.approx(0.010 + 0.008 + 0.002 + 0.016 + 0.008)


def test_cost_real_gpt_4o_mini(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("gpt-4o-mini")
    assert price is not None
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=200_000, output_tokens=100_000)
    got = cost(usage, price)
    expected = CostBreakdown(
        input=0.12, cached_input=0.015, cache_write=0.0, output=0.06, reasoning=0.0, total=0.195
    )
    assert astuple(got) == pytest.approx(astuple(expected))
    assert cost_or_none(usage, price) == pytest.approx(0.195)
    assert cost_or_none(usage, None) is None


def test_batch_prices_used(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("gpt-5-mini")
    assert price is not None
    batch_in, batch_out = price.batch_input_per_token, price.batch_output_per_token
    batch_cached = price.batch_cached_input_per_token
    assert batch_in and batch_out and batch_cached
    usage = Usage(input_tokens=2 * M, cached_input_tokens=M, output_tokens=M)
    normal, batch = cost(usage, price), cost(usage, price, batch=True)
    assert batch.input == pytest.approx(M * batch_in)
    assert batch.cached_input == pytest.approx(M * batch_cached)
    assert batch.output == pytest.approx(M * batch_out)
    assert batch.total < normal.total
    assert batch.batch_price_missing is False


def test_batch_cached_price_missing_is_flagged(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("gpt-4o-mini")
    assert price is not None and price.batch_cached_input_per_token is None
    plain = Usage(input_tokens=M, output_tokens=M)
    assert cost(plain, price, batch=True).total == pytest.approx(0.075 + 0.30)
    assert cost(plain, price, batch=True).batch_price_missing is False
    cached = Usage(input_tokens=M, cached_input_tokens=M // 2, output_tokens=M)
    got = cost(cached, price, batch=True)
    assert got.cached_input == pytest.approx(M // 2 * 0.075 / M)  # normal cached price
    assert got.batch_price_missing is True


def test_batch_price_missing_uses_normal_prices(catalogue: PriceCatalogue) -> None:
    price = catalogue.lookup("deepseek-chat", provider_hint="deepseek")
    assert price is not None and price.batch_input_per_token is None
    usage = Usage(input_tokens=M, output_tokens=M)
    got = cost(usage, price, batch=True)
    assert got.total == pytest.approx(cost(usage, price).total)  # no 50 % assumed
    assert got.total == pytest.approx(0.28 + 0.42)
    assert got.batch_price_missing is True
    assert cost(usage, price).batch_price_missing is False
    assert cost(Usage(), price, batch=True).batch_price_missing is False


def test_total_is_sum_of_parts() -> None:
    price = ModelPrice.from_per_million("m", input=0.1, output=0.3, cached_input=0.01)
    usage = Usage(input_tokens=123_457, cached_input_tokens=7_001, output_tokens=9_999)
    got = cost(usage, price)
    parts = [got.input, got.cached_input, got.cache_write, got.output, got.reasoning]
    assert got.total == math.fsum(parts)
