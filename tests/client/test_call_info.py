"""The library's ``reply.thrifty``: each call's cost and decisions, equal to its ledger row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ServerThread, base_config

from thrifty import AsyncThrifty, Thrifty
from thrifty.client import CallInfo
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

MESSAGES = [{"role": "user", "content": "What is a haiku?"}]


def rows_by_id(path: Path) -> dict[str, dict]:
    store = SqliteLedgerStore(path)
    try:
        return {r["request_id"]: r for r in store.query_requests()}
    finally:
        store.close()


def test_reply_carries_cost_and_decisions(upstream: ServerThread, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    config = base_config(upstream.url, cache={"enabled": True, "store": "memory"})
    with Thrifty(config=config, ledger_path=str(ledger)) as client:
        first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0)
        again = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        assert stream.thrifty is None  # known once the stream has ended
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        streamed = stream.thrifty
        vectors = client.embeddings.create(model="text-embedding-3-small", input="hello")

    async def in_async() -> Any:
        async with AsyncThrifty(config=config, ledger_path=str(ledger)) as async_client:
            return await async_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    awaited = asyncio.run(in_async())
    rows = rows_by_id(ledger)
    for info in (first.thrifty, again.thrifty, streamed, vectors.thrifty, awaited.thrifty):
        assert isinstance(info, CallInfo)
        row = rows[info.request_id]
        # to the 1e-8 USD of the gateway's x-thrifty-cost header
        assert info.cost == pytest.approx(row["cost"], abs=1e-8)
        assert info.baseline_cost == pytest.approx(row["baseline_cost"], abs=1e-8)
        assert info.savings == row["savings"] and info.decisions == row["techniques"]
        assert info.model == row["model"] and info.headers["x-thrifty-model"] == row["model"]
    assert first.thrifty.cost > 0 and first.thrifty.saved == pytest.approx(0, abs=1e-8)
    assert again.thrifty.cost == 0 and again.thrifty.headers["x-thrifty-cache"].startswith("hit")
    assert again.thrifty.saved == again.thrifty.baseline_cost > 0
    assert again.thrifty.savings["exact_cache"] > 0
    assert streamed.usage.output_tokens > 0 and text
    assert "thrifty" not in first.model_dump() and '"thrifty"' not in first.to_json()
