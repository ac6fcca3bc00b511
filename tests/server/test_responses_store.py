"""The Responses API's store: per tenant, bounded by entries and bytes, expiring."""

from __future__ import annotations

import time

from thrifty.server.responses_store import ResponseStore

TURN = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]


def test_tenants_do_not_see_each_other() -> None:
    store = ResponseStore()
    store.put("key-a", "resp_1", TURN)
    assert store.get("key-a", "resp_1") == TURN
    assert store.get("key-b", "resp_1") is None


def test_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    store = ResponseStore(max_entries=2)
    store.put("t", "a", TURN)
    store.put("t", "b", TURN)
    store.get("t", "a")  # a is now the most recently used
    store.put("t", "c", TURN)
    assert store.get("t", "b") is None and store.get("t", "a") == TURN
    small = ResponseStore(max_bytes=120)
    small.put("t", "a", TURN)
    small.put("t", "b", TURN)
    assert small.get("t", "a") is None and small.get("t", "b") == TURN


def test_entries_expire() -> None:
    store = ResponseStore(ttl_s=0.05)
    store.put("t", "a", TURN)
    time.sleep(0.1)
    assert store.get("t", "a") is None
