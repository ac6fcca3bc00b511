"""A Redis outage shows in /metrics, per component, not only in the logs.

A real gateway keeps its exact and semantic cache, budgets, rate limits and stored
responses in a Redis of the test's own (tests/shared_servers.py ``own_redis``); the test
stops that Redis, keeps asking, reads /metrics with prometheus_client's own parser, then
starts Redis again.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config
from tests.stores.test_scaleout_gateway import ask, sdk, user

from thrifty.runtime import key_id
from thrifty.stores.redis import COMPONENTS


def scrape(gateway: Gateway) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``/metrics`` parsed: sample name -> labels -> value, for the Redis samples."""
    with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("thrifty_redis_"):
                samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def fallbacks(samples: dict[str, Any], component: str, reason: str) -> float:
    key = (("component", component), ("reason", reason))
    return samples["thrifty_redis_fallbacks_total"][key]


def unavailable(samples: dict[str, Any], component: str) -> float:
    return samples["thrifty_redis_unavailable"][(("component", component),)]


@pytest.mark.slow
def test_redis_outage_is_counted_per_component_in_metrics(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_redis: Any,
    redis_prefix: str,
) -> None:
    config = base_config(upstream.url)
    config["redis"] = {
        "url": own_redis.url, "prefix": redis_prefix, "timeout_s": 0.5, "retry_after_s": 0.2,
        "budgets_on_error": "open",  # keep serving: the outage must show in metrics
    }  # fmt: skip
    config["cache"] = {
        "enabled": True, "store": "redis", "semantic": {"enabled": True, "threshold": 0.8},
    }  # fmt: skip
    config["governance"] = {
        "store": "redis",
        "budgets": [{"scope": f"key:{key_id(GATEWAY_KEY)}", "limit_usd": 100}],
        "rate_limits": {"requests_per_minute": 10_000},
    }
    gateway = start_gateway(config)
    with sdk(gateway) as client:
        assert ask(client, user("Asked while Redis is up.")).status_code == 200
        before = scrape(gateway)
        for component in COMPONENTS:  # every series is there, at zero, before any outage
            assert unavailable(before, component) == 0, component
            assert fallbacks(before, component, "failed") == 0, component

        own_redis.stop()
        for i in range(3):
            assert ask(client, user(f"Asked while Redis is down, {i}.")).status_code == 200
            # served, though not stored for previous_response_id (component "responses")
            assert client.responses.create(model="gpt-4o", input=f"Down, {i}.").output_text
        during = scrape(gateway)
        for component in COMPONENTS:
            assert unavailable(during, component) == 1, component
            assert fallbacks(during, component, "failed") >= 1, component

        own_redis.start()
        for i in range(200):  # each breaker lets Redis back in after retry_after_s
            assert ask(client, user(f"Asked after the restart, {i}.")).status_code == 200
            assert client.responses.create(model="gpt-4o", input=f"Back, {i}.").output_text
            after = scrape(gateway)
            if all(unavailable(after, c) == 0 for c in COMPONENTS):
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError(f"still unavailable after Redis came back: {after}")
        for component in COMPONENTS:  # counters only go up
            assert fallbacks(after, component, "failed") >= fallbacks(during, component, "failed")
