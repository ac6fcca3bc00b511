"""Config validation names the bad key and says what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from thrifty.config import load_config, parse_config
from thrifty.errors import ConfigError

MINIMAL = {
    "providers": {"p": {"base_url": "http://127.0.0.1:1/v1"}},
    "models": {"gpt-4o-mini": {"provider": "p"}},
}


def error_of(data: dict, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env or {})
    return str(info.value)


def test_minimal_config_is_valid_and_auth_off_by_default() -> None:
    config = parse_config(MINIMAL, {})
    assert config.auth.enabled is False
    assert config.routing.enabled is False and config.cache.enabled is False


def test_unknown_key_is_named() -> None:
    message = error_of({**MINIMAL, "server": {"prot": 80}})
    assert "server.prot" in message and "unknown key" in message


def test_wrong_type_is_named_with_expectation() -> None:
    message = error_of({**MINIMAL, "server": {"port": "eighty"}})
    assert "server.port" in message and "integer" in message


def test_missing_required_key() -> None:
    message = error_of({"models": MINIMAL["models"]})
    assert "providers" in message and "required" in message


def test_env_interpolation_and_missing_variable() -> None:
    data = {**MINIMAL, "auth": {"keys": ["${GW_KEY}"]}}
    assert parse_config(data, {"GW_KEY": "abc"}).auth.keys == ["abc"]
    assert "auth.keys[0]" in error_of(data) and "GW_KEY" in error_of(data)
    with_default = {**MINIMAL, "auth": {"keys": ["${GW_KEY:-fallback}"]}}
    assert parse_config(with_default, {}).auth.keys == ["fallback"]


def test_references_are_checked() -> None:
    assert "provider 'nope'" in error_of({**MINIMAL, "models": {"m": {"provider": "nope"}}})
    bad_fallback = {**MINIMAL, "models": {"gpt-4o-mini": {"provider": "p", "fallbacks": ["x"]}}}
    assert "fallbacks" in error_of(bad_fallback)
    assert "baseline_model" in error_of({**MINIMAL, "baseline_model": "gpt-9"})


def test_model_without_price_fails() -> None:
    message = error_of({**MINIMAL, "models": {"my-llm": {"provider": "p"}}})
    assert "models.my-llm" in message and "no price known" in message
    priced = {
        **MINIMAL,
        "models": {"my-llm": {"provider": "p", "price": {"input": 1, "output": 2}}},
    }
    assert parse_config(priced, {})


def test_auth_enabled_without_keys() -> None:
    assert "auth" in error_of({**MINIMAL, "auth": {"enabled": True}})


def test_shipped_examples_are_valid() -> None:
    root = Path(__file__).parents[2]
    load_config(root / "examples" / "local.yaml", {})
    env = {k: "x" for k in ("THRIFTY_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY",
                            "DASHSCOPE_API_KEY", "OPENROUTER_API_KEY",
                            "ANTHROPIC_API_KEY")}  # fmt: skip
    load_config(root / "examples" / "providers.yaml", env)
    arena = load_config(root / "examples" / "arena.yaml", {})  # its learned files resolve
    assert arena.routing.enabled and Path(arena.routing.predictor or "").exists()
    assert arena.cascade.enabled and Path(arena.cascade.verifier or "").exists()


@pytest.mark.slow
def test_config_check_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {p: {base_url: 'ftp://x'}}\nmodels: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "thrifty.cli.main", "config", "check", str(bad)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "providers.p.base_url" in result.stderr and "http://" in result.stderr
    good = Path(__file__).parents[2] / "examples" / "local.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "thrifty.cli.main", "config", "check", str(good)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "gpt-4o-mini" in result.stdout


def test_a_budget_must_be_a_finite_amount(tmp_path: Path) -> None:
    for amount in (".inf", ".nan"):
        path = tmp_path / "thrifty.yaml"
        path.write_text(
            "governance:\n  budgets:\n"
            f"    - {{scope: 'team:t', period: day, limit_usd: {amount}}}\n"
        )
        with pytest.raises(ConfigError, match="limit_usd"):
            load_config(path)
