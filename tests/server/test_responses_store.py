"""The Responses API's stores: per tenant, bounded, expiring, in memory, SQLite, Redis and
PostgreSQL (real servers, from ``tests/shared_servers.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import base_config

from thrifty.config.loader import parse_config
from thrifty.errors import StoreUnavailable
from thrifty.server.responses_select import response_store_kind, sqlite_path
from thrifty.server.responses_sql import PostgresResponseStore, SqliteResponseStore
from thrifty.server.responses_store import MemoryResponseStore, ResponseStore
from thrifty.stores.config import RedisConfig

TURN = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
TURN_BYTES = len(b'[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"}]')

Opener = Callable[..., ResponseStore]


def redis_store(server: Any, prefix: str, **bounds: Any) -> ResponseStore:
    from thrifty.server.responses_redis import RedisResponseStore
    from thrifty.stores.redis import RedisLink

    bounds.pop("max_entries", None)  # Redis bounds by key TTLs (responses_redis.py)
    link = RedisLink(RedisConfig(url=server.url, prefix=prefix, retry_after_s=0.2))
    return RedisResponseStore(link, **bounds)


def opener(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one kind; every store opened shares the backend (as workers do)."""
    opened: list[ResponseStore] = []
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        prefix = request.getfixturevalue("redis_prefix")
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")

    def open_(**bounds: Any) -> ResponseStore:
        store: ResponseStore
        if kind == "memory":
            store = MemoryResponseStore(**bounds)
        elif kind == "sqlite":
            store = SqliteResponseStore(tmp_path / "responses.db", **bounds)
        elif kind == "redis":
            store = redis_store(server, prefix, **bounds)
        else:
            store = PostgresResponseStore(dsn, **bounds)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    yield from opener(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def open_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Memory is per process: the reason the shared stores exist."""
    yield from opener(request.param, request, tmp_path)


def test_tenants_do_not_see_each_other(open_store: Opener) -> None:
    store = open_store()
    store.put("key-a", "resp_1", TURN)
    assert store.get("key-a", "resp_1") == TURN
    assert store.get("key-b", "resp_1") is None
    assert store.get("key-a", "resp_2") is None
    # tenant and id stay apart whatever they contain
    store.put("a:b", "c", TURN)
    assert store.get("a", "b:c") is None


def test_entries_expire(open_store: Opener) -> None:
    store = open_store(ttl_s=0.3)
    store.put("t", "a", TURN)
    assert store.get("t", "a") == TURN
    time.sleep(0.5)
    assert store.get("t", "a") is None


def test_an_entry_larger_than_max_bytes_is_not_stored(open_store: Opener) -> None:
    store = open_store(max_bytes=TURN_BYTES - 1)
    store.put("t", "a", TURN)
    assert store.get("t", "a") is None


def test_a_second_worker_sees_what_the_first_stored(open_shared: Opener) -> None:
    first, second = open_shared(), open_shared()
    first.put("t", "resp_1", TURN)
    assert second.get("t", "resp_1") == TURN
    second.put("t", "resp_1", [*TURN, {"role": "user", "content": "again"}])
    assert first.get("t", "resp_1") == [*TURN, {"role": "user", "content": "again"}]


def test_memory_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    store = MemoryResponseStore(max_entries=2)
    store.put("t", "a", TURN)
    store.put("t", "b", TURN)
    store.get("t", "a")  # a is now the most recently used
    store.put("t", "c", TURN)
    assert store.get("t", "b") is None and store.get("t", "a") == TURN
    small = MemoryResponseStore(max_bytes=2 * TURN_BYTES - 1)
    small.put("t", "a", TURN)
    small.put("t", "b", TURN)
    assert small.get("t", "a") is None and small.get("t", "b") == TURN


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sql_stores_trim_the_oldest_past_either_bound(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Past a bound, the oldest go until both bounds are 95% full (TRIM_TO)."""

    def open_(name: str, **bounds: Any) -> ResponseStore:
        if kind == "sqlite":
            return SqliteResponseStore(tmp_path / f"{name}.db", **bounds)
        return PostgresResponseStore(
            request.getfixturevalue("postgres_server").new_database(), **bounds
        )

    for name, bounds in (
        ("entries", {"max_entries": 40}),
        ("bytes", {"max_bytes": 40 * TURN_BYTES}),
    ):
        store = open_(name, **bounds)
        ids = [f"{name}-{i}" for i in range(41)]
        for response_id in ids[:40]:
            store.put("t", response_id, TURN)
        assert all(store.get("t", i) == TURN for i in ids[:40])  # at the bound: all kept
        store.put("t", ids[40], TURN)
        kept = [store.get("t", i) is not None for i in ids]
        assert kept == [False] * 3 + [True] * 38, name  # 41 > 40: down to 38 (95%)
        store.close()


def test_sqlite_expired_rows_are_deleted_on_the_next_write(tmp_path: Path) -> None:
    import sqlite3

    store = SqliteResponseStore(tmp_path / "r.db", ttl_s=0.2)
    store.put("t", "old", TURN)
    time.sleep(0.3)
    store.put("t", "new", TURN)
    with sqlite3.connect(tmp_path / "r.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM stored_responses")]
    store.close()
    assert ids == ["new"]


def test_redis_entries_carry_a_key_ttl(redis_server: Any, redis_prefix: str) -> None:
    import redis

    store = redis_store(redis_server, redis_prefix, ttl_s=60)
    store.put("t", "resp_1", TURN)
    client = redis.Redis.from_url(redis_server.url)
    [key] = client.keys(f"{redis_prefix}responses:*")
    assert 0 < client.pttl(key) <= 60_000
    client.close()
    store.close()


def test_redis_down_is_a_503_not_a_missing_response(own_redis: Any, redis_prefix: str) -> None:
    store = redis_store(own_redis, redis_prefix)
    store.put("t", "resp_1", TURN)
    own_redis.stop()
    with pytest.raises(StoreUnavailable):
        store.get("t", "resp_1")
    with pytest.raises(StoreUnavailable):  # the breaker is open: at once
        store.put("t", "resp_2", TURN)
    store.close()


def test_postgres_restart_reconnects_and_down_is_a_503(own_postgres: Any) -> None:
    store = PostgresResponseStore(own_postgres.new_database())
    store.put("t", "resp_1", TURN)
    own_postgres.restart()  # drops the connection: replaced once, transparently
    assert store.get("t", "resp_1") == TURN
    own_postgres.halt()
    with pytest.raises(StoreUnavailable):
        store.get("t", "resp_1")
    own_postgres.resume()
    assert store.get("t", "resp_1") == TURN
    store.close()


def store_kind(redis_in_use: bool = False, **sections: Any) -> str:
    config = parse_config(base_config("http://127.0.0.1:9", **sections))
    return response_store_kind(config, redis_in_use=redis_in_use)


def test_the_configured_stores_decide_where_responses_live() -> None:
    assert store_kind() == "memory"
    assert store_kind(server={"workers": 2}) == "sqlite"
    dsn = "postgresql://u@db/thrifty"
    assert store_kind(ledger={"store": "postgres", "dsn": dsn}) == "postgres"
    keys = {"keys_store": "postgres", "keys_dsn": dsn}
    assert store_kind(server={"workers": 2}, governance=keys) == "postgres"
    assert store_kind(True, ledger={"store": "postgres", "dsn": dsn}) == "redis"
    config = parse_config(base_config("http://127.0.0.1:9", ledger={"path": "/x/led.db"}))
    assert sqlite_path(config) == Path("/x/led.responses.db")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_totals_that_drifted_are_counted_again(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import sqlite3

    if kind == "sqlite":
        store: ResponseStore = SqliteResponseStore(tmp_path / "r.db", max_entries=2)

        def sql(statement: str) -> Any:
            with sqlite3.connect(tmp_path / "r.db") as conn:
                return conn.execute(statement).fetchall()
    else:
        import psycopg

        dsn = request.getfixturevalue("postgres_dsn")
        store = PostgresResponseStore(dsn, max_entries=2)

        def sql(statement: str) -> Any:
            with psycopg.connect(dsn, autocommit=True) as conn:
                cursor = conn.execute(statement)
                return cursor.fetchall() if cursor.description else None

    store.put("t", "a", TURN)
    store.put("t", "b", TURN)
    sql("DELETE FROM stored_responses")  # an operator empties the table
    store.put("t", "c", TURN)  # the totals say 3 > 2, the table holds 1: counted again
    store.put("t", "d", TURN)
    assert store.get("t", "c") == TURN and store.get("t", "d") == TURN
    assert sql("SELECT entries, bytes FROM stored_responses_totals") == [(2, 2 * TURN_BYTES)]
    store.close()
