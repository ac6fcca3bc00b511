"""Automatic prompt caching for Anthropic: ``cache_control`` breakpoints where they pay.

Anthropic bills a cached prefix only when the request marks it: a ``cache_control``
breakpoint *writes* the prefix up to it at ``write_multiplier`` × the input price (1.25
for the 5-minute cache), and a later request with the same prefix *reads* it at
``read_multiplier`` × (0.1). Marking a prefix that is never sent again only costs the
write premium, so a breakpoint is placed when the expected reuse pays for it::

    expected reuses within ttl_s × (1 − read_multiplier)  >  write_multiplier − 1

(at the default multipliers: more than 0.28 expected reuses; with the 1-hour cache,
``write_multiplier: 2.0``, more than 1.1). The expectation is learned from traffic, by
how often a prefix has been seen so far: of the long prefixes this gateway sent for the
k-th time in a row within ``ttl_s`` of each other (k = 1, 2, 3 or more), the share
``q_k`` that was sent once more within ``ttl_s``; then the expected reuses of a prefix
on its k-th sighting are ``q_k × (1 + E_{k+1})`` (geometric from k = 3 on). So on
traffic where prefixes recur quickly (many questions on one document, a long system
prompt) even a new prefix is marked; where they come back later than the cache lives,
nothing is, and no premium is paid for reads that would never come. Before the traffic
says otherwise, a prefix seen for the first time is not marked and one seen twice is
(the prior: 0 and 0.5, worth two outcomes each; the shares decay so the rule follows
changing traffic). Prefixes shorter
than ``min_tokens`` (the model's minimum cacheable length) are never marked nor counted.

The candidates are Anthropic's prefix order: the tools, then the system prompt, then every
turn before the last one. A request that already carries a ``cache_control`` (the caller
placed its own) is left as it is.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import Field

from thrifty.section import NonNegativeFloat, PositiveFloat, Section
from thrifty.tokens import count_text

#: Anthropic's default cache lifetime; a longer ``ttl_s`` asks for its 1-hour cache.
FIVE_MINUTES = 300.0


class PromptCacheConfig(Section):
    """``providers.<name>.prompt_cache``: automatic breakpoints (Anthropic providers)."""

    enabled: bool = True
    ttl_s: PositiveFloat = 300.0
    """How long a written prefix stays cached (Anthropic: 5 minutes, or 1 hour)."""
    min_tokens: int = Field(default=1024, ge=1)
    """The shortest prefix worth marking (Anthropic caches nothing shorter)."""
    write_multiplier: PositiveFloat = 1.25
    read_multiplier: NonNegativeFloat = 0.1
    max_entries: int = Field(default=10_000, ge=1)
    """How many recent prefixes the planner remembers."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One cacheable piece of a Messages request, in prefix order."""

    path: tuple[str | int, ...]
    """Where it is: ``("tools", i)``, ``("system", i)`` or ``("messages", m, "content", b)``."""
    digest: bytes
    """Hash of the prefix up to and including this unit (model included)."""
    tokens: int
    """Tokens of the prefix up to and including this unit."""


def units(request: dict[str, Any]) -> Iterator[Unit]:
    """Every unit of ``request`` with its running prefix hash and token count. The test
    upstream finds its breakpoints with the same walk, so both agree on prefixes."""
    model = str(request.get("model") or "")
    running = hashlib.sha256(model.encode())
    tokens = 0
    pieces: list[tuple[tuple[str | int, ...], str, Any]] = []
    for i, tool in enumerate(request.get("tools") or ()):
        pieces.append((("tools", i), "tool", tool))
    system = request.get("system")
    if isinstance(system, str):
        pieces.append((("system",), "system", {"text": system}))
    for i, block in enumerate(system if isinstance(system, list) else ()):
        pieces.append((("system", i), "system", block))
    for m, message in enumerate(request.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        role = str(message.get("role")) if isinstance(message, dict) else ""
        if isinstance(content, str):
            pieces.append((("messages", m), role, {"type": "text", "text": content}))
        for b, block in enumerate(content if isinstance(content, list) else ()):
            pieces.append((("messages", m, "content", b), role, block))
    for path, role, piece in pieces:
        if not isinstance(piece, dict):
            continue
        stable = {k: v for k, v in piece.items() if k != "cache_control"}
        running.update(role.encode() + b"\x00" + orjson.dumps(stable, option=orjson.OPT_SORT_KEYS))
        raw = stable.get("text")
        text = raw if isinstance(raw, str) else orjson.dumps(stable).decode()
        tokens += count_text(text, model).tokens
        yield Unit(path, running.copy().digest(), tokens)


def at_path(request: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """The block at a :class:`Unit`'s ``path`` ({} for a string system or content)."""
    node: Any = request
    for step in path:
        node = node[step]
    return node if isinstance(node, dict) else {}


#: Prior share of prefixes sent again, per streak length 1, 2, 3+, and its weight.
PRIOR = (0.0, 0.5, 0.5)
PRIOR_WEIGHT = 2.0
#: Each new outcome weighs this much more than the one before (a memory of ~500).
DECAY = 1 - 1 / 500
#: The most reuses a prefix is expected to get (bounds the geometric tail).
MAX_REUSES = 50.0


class CachePlanner:
    """Decides the breakpoints of each request from the prefixes sent recently.

    Thread-safe (the library and the gateway's workers share a provider).
    """

    def __init__(
        self, config: PromptCacheConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock  # the bench replays traffic on its own clock
        self._streaks: OrderedDict[bytes, tuple[float, int]] = OrderedDict()
        """Prefixes seen within the TTL: last sighting, and how many in a row."""
        self._again = [p * PRIOR_WEIGHT for p in PRIOR]
        self._outcomes = [PRIOR_WEIGHT] * len(PRIOR)
        self._lock = threading.Lock()

    @property
    def mark(self) -> dict[str, str]:
        """The breakpoint: Anthropic's 5-minute cache, or its 1-hour one when ``ttl_s`` is
        longer (unmarked, Anthropic would keep the prefix 5 minutes, not ``ttl_s``)."""
        if self.config.ttl_s > FIVE_MINUTES:
            return {"type": "ephemeral", "ttl": "1h"}
        return {"type": "ephemeral"}

    def pays(self, reuses: float) -> bool:
        """The break-even rule of the module docstring."""
        c = self.config
        return reuses * (1 - c.read_multiplier) > c.write_multiplier - 1

    def chance(self, streak: int) -> float:
        """The learned chance that a prefix sent ``streak`` times in a row comes again."""
        bucket = min(streak, len(PRIOR)) - 1
        return self._again[bucket] / self._outcomes[bucket]

    def expected_reuses(self, streak: int) -> float:
        """How many more times a prefix sent ``streak`` times in a row is expected to come
        within the TTL: ``q_k × (1 + E_{k+1})``, geometric from the last bucket on."""
        last = self.chance(len(PRIOR))
        expected = min(last / (1 - last), MAX_REUSES) if last < 1 else MAX_REUSES
        for k in range(len(PRIOR) - 1, streak - 1, -1):
            expected = self.chance(k) * (1 + expected)
        return expected

    def place(self, request: dict[str, Any]) -> int:
        """Mark ``request``'s stable prefixes that pay (in place); how many were marked."""
        if not self.config.enabled:
            return 0
        walk = list(units(request))
        if any("cache_control" in at_path(request, unit.path) for unit in walk):
            return 0  # the caller placed its own
        candidates = _candidates(walk, len(request.get("messages") or ()))
        long_enough = [u for u in candidates if u.tokens >= self.config.min_tokens]
        now = self._clock()
        placed = 0
        with self._lock:
            self._expire(now)
            for unit in long_enough:
                if self.pays(self.expected_reuses(self._sighting(unit.digest, now))):
                    _mark(request, unit, self.mark)
                    placed += 1
        return placed

    def _learn(self, streak: int, again: bool) -> None:
        bucket = min(streak, len(PRIOR)) - 1
        self._again[bucket] = self._again[bucket] * DECAY + again
        self._outcomes[bucket] = self._outcomes[bucket] * DECAY + 1

    def _expire(self, now: float) -> None:
        """Streaks whose prefix did not come back within the TTL end: an outcome each."""
        ttl = self.config.ttl_s
        while self._streaks:
            digest, (seen_at, streak) = next(iter(self._streaks.items()))
            if now - seen_at <= ttl and len(self._streaks) <= self.config.max_entries:
                break
            del self._streaks[digest]
            self._learn(streak, False)

    def _sighting(self, digest: bytes, now: float) -> int:
        """Record a sighting of ``digest``; its streak length, this one included."""
        previous = self._streaks.pop(digest, None)
        streak = 1
        if previous is not None:  # came back within the TTL (older streaks have expired)
            self._learn(previous[1], True)
            streak = previous[1] + 1
        self._streaks[digest] = (now, streak)
        return streak


def _mark(request: dict[str, Any], unit: Unit, mark: dict[str, str]) -> None:
    """Put a breakpoint on ``unit`` (a string system prompt or content becomes a block)."""
    block = at_path(request, unit.path)
    if unit.path[0] == "system" and len(unit.path) == 1:
        request["system"] = [{"type": "text", "text": request["system"]}]
        block = request["system"][0]
    elif unit.path[0] == "messages" and len(unit.path) == 2:
        message = request["messages"][unit.path[1]]
        message["content"] = [{"type": "text", "text": message["content"]}]
        block = message["content"][0]
    block["cache_control"] = dict(mark)


def _candidates(walk: list[Unit], turns: int) -> list[Unit]:
    """The last tool, the last system block and the end of the turn before the last."""
    last: dict[str, Unit] = {}
    for unit in walk:
        if unit.path[0] == "messages":
            if isinstance(unit.path[1], int) and unit.path[1] == turns - 2:
                last["turns"] = unit
        else:
            last[str(unit.path[0])] = unit
    return [last[k] for k in ("tools", "system", "turns") if k in last]
