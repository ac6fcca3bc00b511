"""``thrifty prices show|update`` through the real argparse wiring and the bundled data."""

from __future__ import annotations

import argparse
import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

from thrifty.cli import prices
from thrifty.pricing import PriceCatalogue

CHAT = {"input_cost_per_token": 1e-6, "output_cost_per_token": 3e-6, "mode": "chat"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty home and no THRIFTY_PRICES_FILE: tests never see the developer's files."""
    monkeypatch.delenv("THRIFTY_PRICES_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def cli(*argv: str) -> int:
    """Parse like ``thrifty <argv>`` would and dispatch through ``args.func``."""
    parser = argparse.ArgumentParser(prog="thrifty")
    prices.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    assert args.func is prices.run
    return args.func(args)


def test_show_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("prices", "show", "gpt-4o-mini") == 0
    out = capsys.readouterr().out
    assert out.startswith("gpt-4o-mini (openai, chat)")
    assert "$0.15 / 1M tokens" in out  # input
    assert "$0.075 / 1M tokens" in out  # cached input and batch input
    assert "$0.3 / 1M tokens" in out  # batch output
    assert "128,000 tokens" in out
    assert "tools" in out and "vision" in out


def test_show_json_with_provider_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("prices", "show", "qwen-plus", "--provider", "dashscope", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "dashscope/qwen-plus"
    assert shown["usd_per_million_tokens"]["input"] == 0.4
    assert shown["usd_per_million_tokens"]["output"] == 1.2
    assert shown["usd_per_million_tokens"]["batch_input"] is None
    assert shown["max_input_tokens"] == 129_024
    assert "tools" in shown["capabilities"]


def test_show_unknown_names_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("prices", "show", "gpt-4o-mni") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no price known for model 'gpt-4o-mni'" in captured.err
    assert "gpt-4o-mini" in captured.err
    # the config key it names is one the schema takes (a top-level prices: is refused)
    assert "models.<name>.price" in captured.err and "under prices" not in captured.err


def test_show_zero_priced_and_vendor_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("prices", "show", "deepseek-v3-2-251201") == 1
    assert "listed at $0" in capsys.readouterr().err
    assert cli("prices", "show", "mistralai/Mixtral-8x7B-Instruct-v0.1") == 1
    assert "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1" in capsys.readouterr().err


def test_show_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("prices", "show", "gemini-2.5-pro", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [t["above_prompt_tokens"] for t in shown["tiers"]] == [200_000]
    assert shown["tiers"][0]["input"] > shown["usd_per_million_tokens"]["input"]


def test_show_reads_env_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"house-model": CHAT}))
    monkeypatch.setenv("THRIFTY_PRICES_FILE", str(path))
    assert cli("prices", "show", "house-model", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == f"file:{path}"
    assert shown["usd_per_million_tokens"]["output"] == 3.0


def test_update_to_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "new.json"
    source.write_text(
        json.dumps(
            {
                "sample_spec": {"input_cost_per_token": 0.0, "max_input_tokens": "prose"},
                "chat-a": CHAT,
                "embed-b": {**CHAT, "mode": "embedding"},
                "unpriced-c": {"mode": "chat"},
            }
        )
    )
    target = tmp_path / "deep" / "dir" / "prices.json"
    assert cli("prices", "update", "--from", str(source), "--to", str(target)) == 0
    assert "2 priced models (1 chat)" in capsys.readouterr().out
    assert json.loads(target.read_text())["chat-a"] == CHAT
    assert PriceCatalogue.from_file(target).names() == ["chat-a", "embed-b"]


def test_update_default_target_is_used_by_show(
    capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    bundled = resources.files("thrifty.pricing") / "data" / "model_prices.json.gz"
    source = clean_env / "litellm.json"
    source.write_bytes(gzip.decompress(bundled.read_bytes()))
    assert cli("prices", "update", "--from", str(source)) == 0
    target = clean_env / ".thrifty" / "prices.json"
    assert str(target) in capsys.readouterr().out
    assert cli("prices", "show", "deepseek-chat", "--provider", "deepseek") == 0
    assert f"[source: file:{target}]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "{broken",
        json.dumps({"embed-only": {**CHAT, "mode": "embedding"}}),
        json.dumps({"unpriced": {"mode": "chat"}}),
    ],
)
def test_update_rejects_bad_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(content)
    target = tmp_path / "out.json"
    assert cli("prices", "update", "--from", str(source), "--to", str(target)) == 1
    assert "error:" in capsys.readouterr().err
    assert not target.exists()


def test_update_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli("prices", "update", "--from", str(tmp_path / "nope.json")) == 1
    assert "nope.json" in capsys.readouterr().err


def test_subcommand_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("prices")
    assert exited.value.code == 2
