"""Failed tries a provider bills (issue 15, item 7): booked at their estimated cost,
flagged ``estimated``, in the request's cost, its baseline and the budgets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.governance.test_budgets_gateway import price
from tests.governance.test_keys import MESSAGES, admin, create_key, keys_config, sdk

from thrifty.tokens import count_messages


def slow_config(upstream: ServerThread, tmp_path: Path, fault: str) -> dict[str, Any]:
    config = keys_config(upstream.url, tmp_path)
    config["providers"]["slow"] = {
        "base_url": f"{upstream.url}/v1",
        "timeout_s": 0.3,
        "headers": {"x-upstream-fault": fault},
    }
    config["models"]["slow"] = {"provider": "slow", "model": "gpt-4o-mini"}
    return config


@pytest.mark.slow
def test_a_timed_out_try_is_billed_estimated_and_counted_against_the_budget(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    fault = f"timeout;times=1;id={uuid.uuid4().hex};seconds=3"
    gateway = start_gateway(slow_config(upstream, tmp_path, fault))
    key = create_key(gateway, owner="ana", budgets=[{"period": "day", "limit_usd": 10}])
    with sdk(gateway, key["key"]) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="slow", messages=MESSAGES, max_tokens=5
        )
    request_id = raw.headers["x-thrifty-request-id"]
    attempts = gateway.attempts(request_id)
    assert [(a["purpose"], a["status"]) for a in attempts] == [("main", "error"), ("retry", "ok")]
    timed_out = attempts[0]
    prompt = count_messages(MESSAGES, "gpt-4o-mini").tokens
    input_price, _ = price("gpt-4o-mini")
    assert (timed_out["input_tokens"], timed_out["output_tokens"]) == (prompt, 0)
    assert timed_out["tokens_estimated"] is True
    assert timed_out["cost"] == pytest.approx(prompt * input_price, rel=1e-12)
    row = gateway.row(request_id)
    assert row["cost"] == pytest.approx(sum(a["cost"] for a in attempts), rel=1e-12)
    assert row["estimated"] is True and row["tokens_estimated"] is False, "the answer was exact"
    # the caller, sending as is, would have met the same timeout: no saving from it
    assert row["baseline_cost"] == pytest.approx(row["cost"], rel=1e-12) and row["savings"] == {}
    status, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [usage] = [b for b in budgets["data"] if b["scope"] == f"key:{key['id']}"]
    assert status == 200 and usage["reserved_usd"] == pytest.approx(0, abs=1e-15)
    assert usage["spent_usd"] == pytest.approx(row["cost"], rel=1e-12), "settled, not released"


@pytest.mark.slow
def test_a_request_whose_every_try_timed_out_is_billed_and_settled(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = slow_config(upstream, tmp_path, "timeout;seconds=3")
    config["retries"] = {"max_attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02}
    gateway = start_gateway(config)
    key = create_key(gateway, owner="bo", budgets=[{"period": "day", "limit_usd": 10}])
    with sdk(gateway, key["key"]) as client, pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.with_raw_response.create(
            model="slow", messages=MESSAGES, max_tokens=5
        )
    assert failed.value.status_code == 504
    row = gateway.row(failed.value.response.headers["x-thrifty-request-id"])
    attempts = gateway.attempts(row["request_id"])
    assert len(attempts) == 2 and all(a["cost"] > 0 and a["tokens_estimated"] for a in attempts)
    assert row["status"] == "error" and row["estimated"] is True
    assert row["cost"] == pytest.approx(sum(a["cost"] for a in attempts), rel=1e-12)
    assert row["baseline_cost"] == pytest.approx(row["cost"], rel=1e-12)
    _, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [usage] = [b for b in budgets["data"] if b["scope"] == f"key:{key['id']}"]
    assert usage["spent_usd"] == pytest.approx(row["cost"], rel=1e-12)


@pytest.mark.slow
def test_a_refused_connection_is_not_billed(gateway: Gateway) -> None:
    """Nothing reached a provider that refused the connection: $0, not estimated."""
    with sdk(gateway, GATEWAY_KEY) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="dead-model", messages=MESSAGES
        )
    attempts = gateway.attempts(raw.headers["x-thrifty-request-id"])
    failed = [a for a in attempts if a["status"] == "error"]
    assert failed and all(a["cost"] == 0 and a["input_tokens"] is None for a in failed)
