"""Stored responses of the Responses API, for ``previous_response_id``, per tenant.

A response is stored as the chat conversation that led to it plus its answer, so a
follow-up continues the conversation without the client resending it. Every store keeps
the same promises: responses are keyed by tenant and id (one key's responses are
invisible to another key: an unknown id and another tenant's id are the same 404), each
lives ``ttl_s`` (an hour), and the total is bounded (``max_entries``, ``max_bytes`` of
JSON; an entry larger than ``max_bytes`` is not stored).

Where they live is decided by the configured stores (``responses_select.py``): in this
process's memory (:class:`MemoryResponseStore`, least recently used out first) only when
nothing is shared and the gateway runs one worker; otherwise in SQLite or PostgreSQL
(``responses_sql.py``) or Redis (``responses_redis.py``), so a follow-up may reach any
worker or replica (docs/apis.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "TTL_S", "MemoryResponseStore", "ResponseStore"]

MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 1024 * 1024
TTL_S = 3600.0


class ResponseStore(Protocol):
    """``(tenant, response id) → chat messages``, bounded and expiring; thread-safe."""

    blocks: bool
    """Whether a call may wait on a file lock or the network: the gateway then makes it
    on a worker thread, never on the event loop."""

    def put(self, tenant: str, response_id: str, messages: list[dict[str, Any]]) -> None:
        """Keep a copy of ``messages``; raises :class:`~thrifty.errors.StoreUnavailable`
        when a shared store cannot be reached."""
        ...

    def get(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation up to and including that response, or None (unknown, another
        tenant's, or expired); raises ``StoreUnavailable`` (503) when it cannot tell."""
        ...

    def close(self) -> None:
        """Release connections (the store is not used afterwards)."""
        ...


class MemoryResponseStore:
    """The per-process store: an LRU bound and a lifetime, nothing shared."""

    blocks = False

    def __init__(
        self, max_entries: int = MAX_ENTRIES, ttl_s: float = TTL_S, max_bytes: int = MAX_BYTES
    ) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes
        self._ttl = ttl_s
        self._items: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, tenant: str, response_id: str, messages: list[dict[str, Any]]) -> None:
        """Keep a copy of ``messages`` (as JSON: what the pipeline later does to the dicts
        it runs on, such as compressing them, never reaches the store)."""
        data = orjson.dumps(messages)
        with self._lock:
            self._drop((tenant, response_id))
            self._items[(tenant, response_id)] = (time.monotonic(), data)
            self._bytes += len(data)
            while len(self._items) > self._max or self._bytes > self._max_bytes:
                self._drop(next(iter(self._items)))

    def _drop(self, key: tuple[str, str]) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self._bytes -= len(found[1])

    def get(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            found = self._items.get((tenant, response_id))
            if found is None:
                return None
            stored_at, data = found
            if time.monotonic() - stored_at > self._ttl:
                self._drop((tenant, response_id))
                return None
            self._items.move_to_end((tenant, response_id))
        messages: list[dict[str, Any]] = orjson.loads(data)
        return messages

    def close(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
