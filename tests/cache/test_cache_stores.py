"""Cache stores, both kinds through the same tests: real SQLite files, no mocks."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from thrifty.cache.stores import (
    STATS_KEYS,
    CacheEntry,
    CacheStore,
    MemoryCacheStore,
    SqliteCacheStore,
)
from thrifty.cache.stores.sqlite import MIGRATIONS, TOUCH_BATCH

MakeStore = Callable[..., CacheStore]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[CacheStore] = []

    def make(max_entries: int = 100, max_bytes: int | None = None) -> CacheStore:
        store: CacheStore
        if request.param == "memory":
            store = MemoryCacheStore(max_entries, max_bytes)
        elif request.param == "redis":  # a real redis-server (tests/shared_servers.py)
            store = _redis_store(request, max_entries, max_bytes)
        else:
            store = SqliteCacheStore(tmp_path / "cache" / "cache.db", max_entries, max_bytes)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _redis_store(
    request: pytest.FixtureRequest, max_entries: int, max_bytes: int | None
) -> CacheStore:
    from thrifty.cache.stores.redis import RedisCacheStore
    from thrifty.stores.config import RedisConfig
    from thrifty.stores.redis import RedisLink

    server = request.getfixturevalue("redis_server")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisCacheStore(
        RedisLink(RedisConfig(url=server.url, prefix=prefix)), max_entries, max_bytes
    )


def test_protocol_and_exports(make_store: MakeStore) -> None:
    import thrifty.cache.stores as stores

    assert isinstance(make_store(), CacheStore)
    assert set(stores.__all__) == {
        "STATS_KEYS",
        "CacheEntry",
        "CacheStore",
        "MemoryCacheStore",
        "SqliteCacheStore",
    }


def test_round_trip(make_store: MakeStore) -> None:
    store = make_store()
    before = time.time()
    store.set("k", b"answer \x00 bytes", ttl_s=None, scope="tenant", meta={"model": "m", "n": 1})
    entry = store.get("k")
    assert isinstance(entry, CacheEntry)
    assert entry.key == "k"
    assert entry.value == b"answer \x00 bytes"
    assert entry.scope == "tenant"
    assert entry.meta == {"model": "m", "n": 1}
    assert entry.expires_at is None
    assert before <= entry.created_at <= time.time()
    assert entry.hits == 1
    assert store.get("k").hits == 2  # type: ignore[union-attr]
    assert store.get("missing") is None
    assert len(store) == 1
    assert store.stats() == {"entries": 1, "hits": 2, "misses": 1, "evictions": 0, "expired": 0}
    assert tuple(store.stats()) == STATS_KEYS


def test_set_replaces_and_delete_removes(make_store: MakeStore) -> None:
    store = make_store()
    store.set("k", b"old", ttl_s=None, scope="s")
    store.get("k")
    store.set("k", b"new", ttl_s=60, scope="s")
    entry = store.get("k")
    assert entry is not None
    assert (entry.value, entry.hits, entry.meta) == (b"new", 1, {})
    assert entry.expires_at is not None
    assert entry.expires_at == pytest.approx(entry.created_at + 60)
    assert len(store) == 1
    assert store.delete("k") is True
    assert store.delete("k") is False
    assert store.get("k") is None
    assert len(store) == 0


def test_ttl_expiry(make_store: MakeStore) -> None:
    store = make_store()
    store.set("short", b"1", ttl_s=0.1, scope="s")
    store.set("long", b"2", ttl_s=60, scope="s")
    store.set("forever", b"3", ttl_s=None, scope="s")
    assert store.get("short") is not None
    time.sleep(0.15)
    assert store.get("short") is None
    assert len(store) == 2
    store.set("next", b"4", ttl_s=None, scope="s")  # purges what expired
    assert store.stats()["expired"] == 1
    assert {k for k in ("short", "long", "forever", "next") if store.get(k)} == {
        "long",
        "forever",
        "next",
    }


def test_non_positive_ttl_stores_nothing(make_store: MakeStore) -> None:
    store = make_store()
    store.set("k", b"v", ttl_s=None, scope="s")
    store.set("k", b"v2", ttl_s=0, scope="s")
    assert store.get("k") is None
    assert len(store) == 0


def test_entry_bound_holds_with_lru_order(make_store: MakeStore) -> None:
    store = make_store(max_entries=20)
    for i in range(60):
        store.set(f"k{i}", b"x", ttl_s=None, scope="s")
        assert len(store) <= 20
        if i % 5 == 0:
            assert store.get("k0") is not None  # keep k0 recently used
    assert store.get("k0") is not None
    assert store.get("k59") is not None
    assert store.get("k1") is None  # least recently used: gone first
    survivors = [i for i in range(60) if store.get(f"k{i}") is not None]
    newest = [i for i in survivors if i != 0]
    assert newest == list(range(60 - len(newest), 60))  # the most recent, in one run
    assert store.stats()["evictions"] == 60 - len(store)


def test_byte_bound_holds(make_store: MakeStore) -> None:
    store = make_store(max_entries=1000, max_bytes=1000)
    for i in range(30):
        store.set(f"k{i}", bytes(100), ttl_s=None, scope="s")
        live = [k for k in (f"k{j}" for j in range(i + 1)) if store.get(k)]
        assert sum(len(store.get(k).value) for k in live) <= 1000  # type: ignore[union-attr]
    assert store.get("k29") is not None
    assert store.get("k0") is None
    store.set("huge", bytes(1001), ttl_s=None, scope="s")  # larger than the bound
    assert store.get("huge") is None
    store.set("large", bytes(990), ttl_s=None, scope="s")  # fits alone: kept, others go
    assert store.get("large") is not None
    assert len(store) == 1


def test_clear_by_scope_isolates_tenants(make_store: MakeStore) -> None:
    store = make_store()
    for i in range(3):
        store.set(f"a{i}", b"a", ttl_s=None, scope="tenant-a")
        store.set(f"b{i}", b"b", ttl_s=None, scope="tenant-b")
    assert store.clear("tenant-a") == 3
    assert [store.get(f"a{i}") for i in range(3)] == [None] * 3
    assert all(store.get(f"b{i}") is not None for i in range(3))
    assert store.clear("nobody") == 0
    assert store.clear() == 3
    assert len(store) == 0


def test_concurrent_use_from_eight_threads(make_store: MakeStore) -> None:
    store = make_store(max_entries=50)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for i in range(150):
                key = f"k{rng.randrange(120)}"
                if i % 3 == 0:
                    store.set(key, key.encode(), ttl_s=rng.choice([None, 30.0]), scope="s")
                else:
                    entry = store.get(key)
                    assert entry is None or entry.value == key.encode()
                if i % 50 == 0:
                    assert len(store) <= 50
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert 0 < len(store) <= 50
    stats = store.stats()
    assert stats["hits"] + stats["misses"] == 8 * 100


@pytest.mark.parametrize("bounds", [(0, None), (10, 0), (True, None), (1.5, None)])
def test_bad_bounds_are_rejected(make_store: MakeStore, bounds: tuple[object, object]) -> None:
    with pytest.raises(ValueError):
        make_store(*bounds)


# -- SQLite only -------------------------------------------------------------------------


def test_sqlite_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = SqliteCacheStore(path, max_entries=10)
    store.set("k", b"kept", ttl_s=None, scope="s", meta={"model": "m"})
    store.set("gone", b"x", ttl_s=0.05, scope="s")
    assert store.get("k") is not None  # a touch not yet written: close must flush it
    store.close()
    store.close()  # idempotent
    time.sleep(0.08)
    reopened = SqliteCacheStore(path, max_entries=10)
    try:
        entry = reopened.get("k")
        assert entry is not None
        assert (entry.value, entry.meta, entry.hits) == (b"kept", {"model": "m"}, 2)
        assert reopened.get("gone") is None
        assert len(reopened) == 1
        assert reopened.schema_version == len(MIGRATIONS)
    finally:
        reopened.close()


def test_sqlite_settings_and_recency_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = SqliteCacheStore(path, max_entries=4)
    for i in range(4):
        store.set(f"k{i}", b"x", ttl_s=None, scope="s")
    store.get("k0")
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        totals = conn.execute("SELECT entries, bytes FROM cache_totals").fetchone()
        assert totals == (4, 4)
    conn.close()
    reopened = SqliteCacheStore(path, max_entries=4)
    try:
        reopened.set("k4", b"x", ttl_s=None, scope="s")  # evicts down to 95% of 4 = 3
        assert reopened.get("k0") is not None
        assert reopened.get("k1") is None
        assert len(reopened) == 3
    finally:
        reopened.close()


def test_sqlite_read_only_workload_flushes_touches(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = SqliteCacheStore(path, max_entries=TOUCH_BATCH * 2)
    try:
        for i in range(TOUCH_BATCH):
            store.set(f"k{i}", b"x", ttl_s=None, scope="s")
        for i in range(TOUCH_BATCH):
            store.get(f"k{i}")
        with sqlite3.connect(path) as conn:
            hits = conn.execute("SELECT SUM(hits) FROM cache_entries").fetchone()[0]
        conn.close()
        assert hits == TOUCH_BATCH
    finally:
        store.close()


def test_sqlite_two_stores_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    first = SqliteCacheStore(path, max_entries=10)
    second = SqliteCacheStore(path, max_entries=10)
    try:
        first.set("k", b"v", ttl_s=None, scope="s")
        entry = second.get("k")
        assert entry is not None and entry.value == b"v"
        assert second.delete("k")
        assert first.get("k") is None
    finally:
        first.close()
        second.close()
