"""``thrifty config check``: unknown and $0 prices are errors with close catalogue names;
``free: true`` and ``thrifty prices update`` are the ways out (issue 15, items 1 and 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from thrifty.cli.main import main
from thrifty.pricing import PriceCatalogue


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("THRIFTY_PRICES_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write_config(tmp_path: Path, models: dict[str, object]) -> str:
    config = {
        "providers": {"volc": {"base_url": "http://127.0.0.1:9/v1", "price_prefix": "volcengine"}},
        "models": models,
    }
    path = tmp_path / "thrifty.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_zero_priced_catalogue_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, {"dsv3": {"provider": "volc", "model": "deepseek-v3-2-251201"}})
    assert main(["config", "check", path]) == 2
    err = capsys.readouterr().err
    assert "models.dsv3" in err and "$0" in err and "free: true" in err
    assert "close catalogue names: " in err


def test_free_model_is_accepted_and_shown_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = {"local": {"provider": "volc", "model": "deepseek-v3-2-251201", "free": True}}
    assert main(["config", "check", write_config(tmp_path, models)]) == 0
    assert "free (the config says so)" in capsys.readouterr().out


def test_free_and_price_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = {"m": {"provider": "volc", "free": True, "price": {"input": 1, "output": 1}}}
    assert main(["config", "check", write_config(tmp_path, models)]) == 2
    assert "free: true or a price" in capsys.readouterr().err


def test_missing_name_suggests_then_prices_update_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, {"sonnet": {"provider": "volc", "model": "claude-sonnet-4"}})
    assert main(["config", "check", path]) == 2
    err = capsys.readouterr().err
    assert "no price known for 'claude-sonnet-4'" in err
    assert "close catalogue names: " in err and "/anthropic/claude-sonnet-4" in err
    assert "thrifty prices update" in err
    # a newer litellm-format file: the bundled one plus the missing name
    newer = dict(PriceCatalogue.bundled().raw())
    newer["volcengine/claude-sonnet-4"] = {
        **newer["claude-sonnet-4-5"],
        "litellm_provider": "volcengine",
    }
    source = tmp_path / "model_prices_and_context_window.json"
    source.write_text(json.dumps(newer))
    assert main(["prices", "update", "--from", str(source)]) == 0
    capsys.readouterr()
    assert main(["config", "check", path]) == 0
    assert "volcengine/claude-sonnet-4" in capsys.readouterr().out


def test_config_price_with_one_hour_writes_and_a_fee(tmp_path: Path) -> None:
    from thrifty.config import load_config
    from thrifty.pricing import cost
    from thrifty.registry import ModelRegistry
    from thrifty.usage import Usage

    price = {"input": 3, "output": 15, "cache_write": 3.75, "cache_write_1h": 6,
             "per_request_usd": 0.01}  # fmt: skip
    path = write_config(tmp_path, {"m": {"provider": "volc", "price": price}})
    resolved = ModelRegistry.from_config(load_config(path)).get("m").price
    assert resolved is not None
    usage = Usage(input_tokens=2_000_000, cache_write_tokens=2_000_000, cache_write_1h_tokens=10**6)
    expected = price["cache_write"] + price["cache_write_1h"] + price["per_request_usd"]
    assert cost(usage, resolved).total == pytest.approx(expected, rel=1e-12)
