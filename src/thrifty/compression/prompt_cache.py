"""Provider prompt caching: which context is a repeated prefix, and when compressing it pays.

OpenAI, Anthropic and DeepSeek bill a prompt prefix they have seen in the last few minutes
at the cached-input price ``c`` (10–50 % of the input price ``p``), for prompts of at
least ~1024 tokens. Compression must not turn that discount into a loss:

* the lossless pass and summaries are deterministic, so a stable prefix stays stable;
* extractive compression depends on the question, so a compressed prefix differs on
  every request and is billed at ``p``. For a *repeated* prefix of ``T`` tokens, sent as
  is it costs ``T × c``; compressed at ratio ``r`` it costs ``T / r × p``. So a repeated
  prefix is compressed extractively only when ``p / r < c``, i.e. ``r > p / c``
  (gpt-4o, c = p/2: r > 2; DeepSeek and Anthropic, c = p/10: r > 10).

A prefix is *repeated* when this gateway saw the same leading messages for the same model
within ``ttl_s`` (the provider's cache lifetime). A model with no cached price gets no
discount, so its prefixes are always worth compressing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from thrifty.pricing.catalogue import ModelPrice


def extractive_beats_cache(price: ModelPrice | None, ratio: float) -> bool:
    """True when a repeated prefix compressed at ``ratio`` costs less than it cached."""
    if price is None or price.cached_input_per_token is None:
        return True
    if price.input_per_token <= 0:
        return False
    return price.input_per_token / ratio < price.cached_input_per_token


class PrefixTracker:
    """Remembers hashes of message prefixes seen recently, per model (LRU + TTL).

    Thread-safe: the gateway may compress on worker threads.
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def repeated(self, model: str, messages: Sequence[dict[str, Any]]) -> int:
        """How many leading ``messages`` were seen before as a prefix (and record them)."""
        hashes = _prefix_hashes(model, messages)
        now = time.monotonic()
        with self._lock:
            longest = 0
            for k, digest in enumerate(hashes, 1):
                seen_at = self._seen.get(digest)
                if seen_at is not None and now - seen_at <= self._ttl:
                    longest = k
            for digest in hashes:
                self._seen[digest] = now
                self._seen.move_to_end(digest)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        return longest


def _prefix_hashes(model: str, messages: Sequence[dict[str, Any]]) -> list[bytes]:
    running = hashlib.sha256(model.encode())
    out = []
    for message in messages:
        running.update(
            orjson.dumps(
                {"role": message.get("role"), "content": message.get("content")},
                option=orjson.OPT_SORT_KEYS,
            )
        )
        out.append(running.copy().digest())
    return out
