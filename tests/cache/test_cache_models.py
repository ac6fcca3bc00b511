"""Cached answers never cross models: stored under the model that answered, looked up
under the model that would answer (routing's pick for an ``auto`` request)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

LEGAL = [{"role": "user", "content": "Is the indemnity clause in this contract enforceable?"}]


def routed_cache_config(upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    config = base_config(upstream_url, default_model="gpt-4o-mini")
    config["cache"] = {"enabled": True, "path": str(tmp_path / "cache.db")}
    config["routing"] = {
        "enabled": True,
        "labels": {"legal": {"keywords": {"indemnity": 2.0, "contract": 2.0}}},
        "tasks": {"legal": ["gpt-4o"], "chat": ["gpt-4o-mini"]},
    }
    return config


def test_auto_and_named_requests_never_share_another_models_answer(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(routed_cache_config(upstream.url, tmp_path))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        create = client.chat.completions.with_raw_response.create

        def ask(model: str) -> tuple[str, str]:
            raw = create(model=model, messages=LEGAL)
            return raw.headers["x-thrifty-cache"].split(";")[0], raw.headers["x-thrifty-model"]

        # the default model's answer is cached first; routing sends the auto request on
        assert ask("gpt-4o-mini") == ("miss", "gpt-4o-mini")
        assert ask("auto") == ("miss", "gpt-4o"), "not the default model's cached answer"
        assert ask("auto") == ("hit-exact", "gpt-4o")
        assert ask("gpt-4o-mini") == ("hit-exact", "gpt-4o-mini"), "not the auto call's answer"
        assert ask("gpt-4o") == ("hit-exact", "gpt-4o"), "the routed answer is gpt-4o's"
    rows = gateway.requests()
    auto_miss = next(r for r in rows if r["model"] == "gpt-4o" and r["provider"] != "cache")
    assert auto_miss["techniques"]["route"]["task"] == "legal"


def test_a_cascade_answer_is_served_to_the_requests_the_cascade_would_serve(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    config = base_config(upstream.url, default_model="gpt-4o", baseline_model="gpt-4o")
    config["cache"] = {"enabled": True, "path": str(tmp_path / "cache.db")}
    config["cascade"] = {
        "enabled": True,
        "tiers": [{"model": "gpt-4o-mini", "checks": ["heuristics"]}, {"model": "gpt-4o"}],
    }
    gateway = start_gateway(config)
    colour = [{"role": "user", "content": "Name a colour."}]
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        create = client.chat.completions.with_raw_response.create

        def ask(model: str) -> tuple[str, str]:
            raw = create(model=model, messages=colour, temperature=0)
            return raw.headers["x-thrifty-cache"].split(";")[0], raw.headers["x-thrifty-model"]

        assert ask("auto") == ("miss", "gpt-4o-mini"), "the cheap tier's answer was accepted"
        assert ask("auto") == ("hit-exact", "gpt-4o-mini"), "the cascade would serve it again"
        assert ask("gpt-4o") == ("miss", "gpt-4o"), "a named gpt-4o never gets gpt-4o-mini's"
        assert ask("gpt-4o-mini") == ("hit-exact", "gpt-4o-mini")
