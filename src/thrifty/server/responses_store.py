"""Stored responses of the Responses API, for ``previous_response_id``, per tenant.

A response is stored as the chat conversation that led to it plus its answer, so a
follow-up continues the conversation without the client resending it. Responses are
kept in this process's memory (LRU, at most ``max_entries`` and ``max_bytes`` of JSON,
each for ``ttl_s``), keyed by tenant
and id: one key's responses are invisible to another key (an unknown id and another
tenant's id are the same 404). A gateway with several workers keeps a store per worker,
so a client that needs ``previous_response_id`` across workers must run one worker or
resend the conversation (docs/apis.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import orjson

MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 1024 * 1024
TTL_S = 3600.0


class ResponseStore:
    """``(tenant, response id) → chat messages`` with an LRU bound and a lifetime."""

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
        """The conversation up to and including that response, or None (unknown, another
        tenant's, or expired)."""
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
