"""A SQLite store held locked by another process never stalls the event loop, and a lock
held too long is a quick 503 ``store_unavailable``, not a 500 after 30 s (issue 16, item 5).

The lock is real: another connection holds ``BEGIN IMMEDIATE`` on the store's file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

ADMIN_KEY = "locks-admin-key"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


@pytest.fixture
def locks_gateway(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> Gateway:
    config = base_config(upstream.url)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["governance"] = {
        "keys_path": str(tmp_path / "keys.db"),
        "store_path": str(tmp_path / "budgets.db"),
        "store_lock_timeout_s": 2.0,
        "budgets": [{"scope": "tag:env=test", "period": "day", "limit_usd": 100}],
    }
    return start_gateway(config)


def admin_post(gateway: Gateway, body: Any) -> tuple[int, dict[str, str], Any]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    return http("POST", f"{gateway.url}/admin/keys", body, headers)


def health_now(gateway: Gateway) -> int:
    """``/health`` with a short client timeout: it must answer while a store is locked."""
    import urllib.request

    with urllib.request.urlopen(f"{gateway.url}/health", timeout=1.0) as resp:
        return int(resp.status)


def test_a_locked_key_store_stalls_neither_health_nor_lookups(
    locks_gateway: Gateway, tmp_path: Path
) -> None:
    status, _, created = admin_post(locks_gateway, {"owner": "ana"})
    assert status == 201
    secret = created["key"]
    with write_locked(tmp_path / "keys.db"):
        thread, result = in_thread(lambda: admin_post(locks_gateway, {"owner": "bob"}))
        thread.join(0.3)
        assert thread.is_alive()  # waiting for the lock, off the event loop
        assert health_now(locks_gateway) == 200
        headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
        status, _, payload = http("POST", f"{locks_gateway.base_url}/chat/completions", CHAT,
                                  headers)  # fmt: skip
        assert status == 200, payload  # a lookup reads past the writer's lock (WAL)
        thread.join(10)
    status, _, payload = result[0]
    assert status == 503, payload
    assert payload["error"]["code"] == "store_unavailable"
    assert admin_post(locks_gateway, {"owner": "bob"})[0] == 201  # lock gone: served


def test_a_locked_budget_store_is_a_quick_503(locks_gateway: Gateway, tmp_path: Path) -> None:
    headers = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json",
               "x-thrifty-tags": "env=test"}  # fmt: skip
    url = f"{locks_gateway.base_url}/chat/completions"
    assert http("POST", url, CHAT, headers)[0] == 200  # the store exists, budgets apply
    with write_locked(tmp_path / "budgets.db"):
        thread, result = in_thread(lambda: http("POST", url, CHAT, headers))
        thread.join(0.3)
        assert health_now(locks_gateway) == 200
        thread.join(10)
        assert not thread.is_alive()  # store_lock_timeout_s (2 s), not SQLite's 30 s
    status, _, payload = result[0]
    assert status == 503, payload
    assert payload["error"]["code"] == "store_unavailable"
    assert http("POST", url, CHAT, headers)[0] == 200


def test_store_lock_timeout_is_validated() -> None:
    from thrifty.config import parse_config

    with pytest.raises(Exception, match="store_lock_timeout_s"):
        parse_config(base_config("http://127.0.0.1:9", governance={"store_lock_timeout_s": 0}))


@pytest.mark.slow
def test_a_blocked_postgres_key_lookup_does_not_stall_the_event_loop(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], postgres_dsn: str
) -> None:
    import psycopg

    config = base_config(upstream.url)
    config["ledger"] = {"store": "postgres", "dsn": postgres_dsn, "flush_interval_ms": 20}
    config["governance"] = {"keys_store": "postgres", "store": "memory"}
    gateway = start_gateway(config)
    headers = {"authorization": "Bearer vk-not-a-key", "content-type": "application/json"}
    url = f"{gateway.base_url}/chat/completions"
    with psycopg.connect(postgres_dsn) as locker:
        locker.execute("LOCK TABLE virtual_keys IN ACCESS EXCLUSIVE MODE")
        thread, result = in_thread(lambda: http("POST", url, CHAT, headers))
        thread.join(0.3)
        assert thread.is_alive()  # its lookup waits for the table lock, on a worker thread
        assert health_now(gateway) == 200
        locker.rollback()
    thread.join(10)
    assert result[0][0] == 401
