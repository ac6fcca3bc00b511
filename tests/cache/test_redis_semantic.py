"""The shared semantic index: entries in a real Redis stream, searched in each process."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest


def _index(url: str, prefix: str, max_entries: int = 100, **redis: Any):
    from thrifty.cache.redis_semantic import RedisSemanticIndex
    from thrifty.stores.config import RedisConfig
    from thrifty.stores.redis import RedisLink

    return RedisSemanticIndex(RedisLink(RedisConfig(url=url, prefix=prefix, **redis)), max_entries)


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(256).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_an_entry_added_on_one_replica_is_found_on_another(redis_server, redis_prefix) -> None:
    a, b = _index(redis_server.url, redis_prefix), _index(redis_server.url, redis_prefix)
    a.add("p", "tenant", "What is 2+2?", _unit(1), b"four", ttl_s=None)
    match = b.search("p", _unit(1))
    assert match is not None and match.response == b"four"
    assert match.similarity > 0.999 and match.question == "What is 2+2?"
    assert b.search("other-partition", _unit(1)) is None
    assert len(a) == len(b) == 1  # each indexed it once (the writer on read-back)
    late = _index(redis_server.url, redis_prefix)  # a replica started later starts warm
    assert late.search("p", _unit(1)) is not None
    for index in (a, b, late):
        index.close()


def test_clear_reaches_every_replica_and_only_its_scope(redis_server, redis_prefix) -> None:
    a, b = _index(redis_server.url, redis_prefix), _index(redis_server.url, redis_prefix)
    a.add("p1", "t1", "q1", _unit(1), b"r1", ttl_s=None)
    a.add("p2", "t2", "q2", _unit(2), b"r2", ttl_s=None)
    assert b.search("p1", _unit(1)) is not None
    a.clear("t1")
    assert b.search("p1", _unit(1)) is None
    assert b.search("p2", _unit(2)) is not None
    a.add("p1", "t1", "q1", _unit(1), b"r1 again", ttl_s=None)  # after the clear: kept
    assert b.search("p1", _unit(1)).response == b"r1 again"  # type: ignore[union-attr]
    a.close()
    b.close()


def test_expired_entries_are_not_loaded_or_served(redis_server, redis_prefix) -> None:
    a = _index(redis_server.url, redis_prefix)
    a.add("p", "t", "short", _unit(1), b"gone soon", ttl_s=0.2)
    a.add("p", "t", "long", _unit(2), b"stays", ttl_s=60)
    time.sleep(0.3)
    b = _index(redis_server.url, redis_prefix)
    assert len(b) == 1
    assert a.search("p", _unit(1)).response == b"stays"  # type: ignore[union-attr]
    a.close()
    b.close()


@pytest.mark.slow
def test_log_is_bounded_and_down_redis_keeps_local_entries(own_redis, redis_prefix) -> None:
    a = _index(own_redis.url, redis_prefix, max_entries=10, retry_after_s=0)
    for i in range(300):
        a.add("p", "t", f"q{i}", _unit(i), b"r", ttl_s=None)
    assert len(a) == 10
    assert a._link.sync.xlen(a._stream) < 300  # trimmed to about max_entries
    own_redis.stop()
    a.add("p", "t", "offline", _unit(999), b"local only", ttl_s=None)
    assert a.search("p", _unit(999)).response == b"local only"  # type: ignore[union-attr]
    assert a.unavailable >= 2 and a.breaker.down
    own_redis.start()
    a.add("p", "t", "online", _unit(1000), b"shared", ttl_s=None)
    assert not a.breaker.down
    assert a.search("p", _unit(1000)).response == b"shared"  # type: ignore[union-attr]
    a.close()
