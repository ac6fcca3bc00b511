"""Shared calls are settled against the right caller: a gateway-window packed call is
split between the callers whose questions it answered, and an abstractive summary is
paid (and settled) by the request that made it, not by the requests that reuse it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from tests.conftest import Gateway, ServerThread
from tests.governance.test_keys import admin, create_key, keys_config
from tests.governance.test_worst_case_bound import SYSTEM


def ask(gateway: Gateway, key: str, question: str, windowed: bool) -> str:
    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key,
                                      max_retries=0) as client:  # fmt: skip
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", temperature=0, max_tokens=60,
                extra_headers={"x-thrifty-batch": "window" if windowed else "off"},
                messages=[{"role": "system", "content": SYSTEM},
                          {"role": "user", "content": question}],
            )  # fmt: skip
            return raw.headers["x-thrifty-request-id"]

    return asyncio.run(run())


def test_window_shares_and_summaries_settle_against_their_own_callers(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = keys_config(
        upstream.url,
        tmp_path,
        compression={
            "enabled": True,
            "min_tokens": 100,
            "min_message_tokens": 50,
            "abstractive": {"enabled": True, "model": "gpt-4o-mini", "min_tokens": 100},
        },
        batching={
            "enabled": True,
            "window": {"enabled": True, "window_ms": 5000, "scope": "global"},
            "packing": {"max_batch_size": 2},  # the pair closes the window at once
        },
    )
    gateway = start_gateway(config)
    ana, bo = (create_key(gateway, owner=o, budgets=[{"period": "day", "limit_usd": 10}])
               for o in ("ana", "bo"))  # fmt: skip
    first = ask(gateway, ana["key"], "What is a prime number?", windowed=False)  # summarises

    async def pair() -> list[str]:
        return list(await asyncio.gather(
            asyncio.to_thread(ask, gateway, ana["key"], "Name three rivers.", True),
            asyncio.to_thread(ask, gateway, bo["key"], "Why is the sky blue?", True),
        ))  # fmt: skip

    shared_ana, shared_bo = asyncio.run(pair())
    reuse = ask(gateway, bo["key"], "How do tides work?", windowed=False)  # reuses the summary
    rows = {i: gateway.row(i) for i in (first, shared_ana, shared_bo, reuse)}
    purposes = {i: [a["purpose"] for a in gateway.attempts(i)] for i in rows}
    assert purposes[first] == ["summarise", "main"]
    assert purposes[shared_ana] == purposes[shared_bo] == ["batch"]
    assert purposes[reuse] == ["main"]
    summary, main = gateway.attempts(first)
    assert summary["cost"] > 0
    assert abs(rows[first]["cost"] - summary["cost"] - main["cost"]) < 1e-15
    packed = [rows[shared_ana]["techniques"]["batch"], rows[shared_bo]["techniques"]["batch"]]
    assert packed[0]["id"] == packed[1]["id"] and {p["mode"] for p in packed} == {"packed"}
    assert [rows[i]["key_id"] for i in rows] == [ana["id"], ana["id"], bo["id"], bo["id"]]
    _, _, budgets = admin(gateway, "GET", "/admin/budgets")
    spent = {b["scope"]: b for b in budgets["data"]}
    for key, own in ((ana, (first, shared_ana)), (bo, (shared_bo, reuse))):
        usage = spent[f"key:{key['id']}"]
        assert abs(usage["reserved_usd"]) < 1e-12
        assert abs(usage["spent_usd"] - sum(rows[i]["cost"] for i in own)) < 1e-12
        assert all(rows[i]["cost"] > 0 for i in own)
