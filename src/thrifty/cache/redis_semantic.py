"""The semantic cache shared by replicas: entries in a Redis stream, searched in process.

Debian's Redis (7.0, RediSearch 1.2) has no vector search, so each replica keeps its own
numpy :class:`~thrifty.cache.semantic_index.SemanticIndex` and Redis holds the *log* of
what was added or invalidated: one stream (``<prefix>semantic:log``), trimmed to about
``max_entries`` events. Every replica reads the log from where it stopped

- at start (the whole retained log, so a new replica starts warm), and
- before every search (``XREAD`` from its last id: one round trip, usually empty),

so an answer stored through one replica is found by the next lookup on any other.
``clear(scope)`` appends an invalidation event that every replica applies in log order.
Writes go only to the log; a replica indexes its own entries when it reads them back, so
each entry is indexed once.

When Redis is down, searches use what this replica already has (still valid answers)
and new entries are indexed locally only; the breaker (:mod:`thrifty.stores.redis`)
counts and logs it. A Redis restarted empty starts a new log; replicas keep what they had.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import numpy as np

from thrifty.cache.semantic_index import Match, SemanticIndex
from thrifty.stores.redis import Breaker, RedisLink, redis_errors

__all__ = ["RedisSemanticIndex"]

_READ_BATCH = 1000


class RedisSemanticIndex:
    """Same methods as :class:`SemanticIndex` (``search``, ``add``, ``close``) plus
    ``clear(scope)``. The index owns ``link``: :meth:`close` closes it."""

    remote = True
    """Searches and adds talk to Redis: the semantic stage runs them off the event loop."""

    def __init__(self, link: RedisLink, max_entries: int, *, namespace: str = "semantic:") -> None:
        self._link = link
        self._stream = f"{link.prefix}{namespace}log"
        self._max = max_entries
        self._local = SemanticIndex(None, max_entries)
        self._by_scope: defaultdict[str, set[int]] = defaultdict(set)  # for invalidation
        self._tracked = 0
        self._last_id = "0-0"
        self._sync_lock = threading.Lock()
        self._errors = redis_errors()
        self.breaker = Breaker(link.config.retry_after_s, "semantic")
        self.catch_up()

    def __len__(self) -> int:
        return len(self._local)

    def catch_up(self) -> int:
        """Apply the log events this replica has not seen; how many (0 when Redis is down)."""
        if not self.breaker.allow():
            return 0
        applied = 0
        with self._sync_lock:
            try:
                while True:
                    reply = self._link.sync.xread(
                        {self._stream: self._last_id}, count=_READ_BATCH
                    )
                    events = reply[0][1] if reply else []
                    for event_id, fields in events:
                        self._apply(fields)
                        self._last_id = event_id
                    applied += len(events)
                    if len(events) < _READ_BATCH:
                        break
            except self._errors as exc:
                self.breaker.failed(exc)
                return applied
        self.breaker.succeeded()
        return applied

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        op = fields[b"op"]
        if op == b"clear":
            self._forget(fields[b"scope"].decode())
            return
        expires = float(fields[b"expires"]) if fields[b"expires"] else None
        ttl = None if expires is None else expires - time.time()
        if ttl is not None and ttl <= 0:
            return
        vector = np.frombuffer(fields[b"vector"], dtype=np.float32)
        scope = fields[b"scope"].decode()
        self._index_locally(
            fields[b"partition"].decode(), scope, fields[b"question"].decode(),
            vector, fields[b"response"], ttl,
        )  # fmt: skip

    def _index_locally(
        self,
        partition: str,
        scope: str,
        question: str,
        vector: np.ndarray,
        response: bytes,
        ttl_s: float | None,
    ) -> int:
        entry_id = self._local.add(partition, scope, question, vector, response, ttl_s)
        self._by_scope[scope].add(entry_id)
        self._tracked += 1
        if self._tracked > 2 * self._max + 64:  # drop ids the bound or TTL already evicted
            for ids in self._by_scope.values():
                ids.intersection_update([i for i in ids if i in self._local])
            self._tracked = sum(len(ids) for ids in self._by_scope.values())
        return entry_id

    def _forget(self, scope: str) -> None:
        ids = self._by_scope.pop(scope, set())
        self._tracked -= len(ids)
        for entry_id in ids:
            self._local.remove(entry_id)

    def search(self, partition: str, vector: np.ndarray) -> Match | None:
        """Catch up with the log, then search this replica's index."""
        self.catch_up()
        return self._local.search(partition, vector)

    def add(
        self,
        partition: str,
        scope: str,
        question: str,
        vector: np.ndarray,
        response: bytes,
        ttl_s: float | None,
    ) -> int:
        """Append to the shared log (indexed here on read-back); locally only when down."""
        vector = np.asarray(vector, dtype=np.float32)
        expires = "" if not ttl_s else repr(time.time() + ttl_s)
        fields: dict[str, Any] = {
            "op": "add", "partition": partition, "scope": scope, "question": question,
            "vector": vector.tobytes(), "response": response, "expires": expires,
        }  # fmt: skip
        if self._append(fields):
            self.catch_up()
            return 0
        with self._sync_lock:
            return self._index_locally(partition, scope, question, vector, response, ttl_s)

    def clear(self, scope: str) -> None:
        """Invalidate ``scope``'s entries on every replica (each applies it on its next read)."""
        if self._append({"op": "clear", "scope": scope}):
            self.catch_up()
        else:
            with self._sync_lock:
                self._forget(scope)

    def _append(self, fields: dict[str, Any]) -> bool:
        if not self.breaker.allow():
            return False
        try:
            self._link.sync.xadd(self._stream, fields, maxlen=self._max, approximate=True)
        except self._errors as exc:
            self.breaker.failed(exc)
            return False
        self.breaker.succeeded()
        return True

    @property
    def unavailable(self) -> int:
        """Operations that fell back because Redis was down (failed or skipped)."""
        return self.breaker.failures + self.breaker.skipped

    def close(self) -> None:
        self._local.close()
        self._link.close()
