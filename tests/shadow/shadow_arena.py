"""Shared by the shadow tests: the arena models served by a test upstream that answers
each arena prompt per model from ``arena_bench_v1`` and judge prompts with its grades."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from tests.conftest import GATEWAY_KEY, Gateway

from thrifty.ledger.stores.sqlite import SqliteLedgerStore

EXAMPLES = Path(__file__).parents[2] / "examples"
BASELINE = "gpt-4-1106-preview"
CHEAP = ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-3.5-turbo", "claude-instant-1"]


def arena_config(upstream_url: str, **shadow: Any) -> dict[str, Any]:
    """examples/arena.yaml's models and baseline on ``upstream_url``; techniques off;
    bodies captured; ``shadow`` merged into the shadow section (on, at 100%)."""
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    return {
        "auth": {"keys": [GATEWAY_KEY]},
        "providers": {"arena": {"base_url": f"{upstream_url}/v1", "timeout_s": 10}},
        "models": raw["models"],
        "baseline_model": BASELINE,
        "default_model": BASELINE,
        "retries": {"max_attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02},
        "ledger": {"flush_interval_ms": 20, "capture_bodies": True},
        "shadow": {
            "enabled": True, "rate": 1.0, "max_per_hour": 0, "candidates": CHEAP,
            "judge_model": BASELINE, "daily_budget_usd": 100.0, **shadow,
        },
    }  # fmt: skip


def settle(gateway: Gateway, timeout_s: float = 60.0) -> None:
    """Wait until no shadow is in flight, then until the ledger has written everything."""
    runtime = gateway.server.server.config.app.state.runtime  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while runtime.shadow is not None and runtime.shadow.in_flight:
        assert time.monotonic() < deadline, "shadows did not finish"
        time.sleep(0.01)
    gateway.flush()


def shadows(gateway: Gateway) -> list[dict[str, Any]]:
    settle(gateway)
    store = SqliteLedgerStore(gateway.ledger_path)
    try:
        return store.query_shadows()
    finally:
        store.close()
