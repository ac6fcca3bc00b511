"""Automatic prompt caching for Anthropic: ``cache_control`` breakpoints where they pay.

Anthropic bills a cached prefix only when the request marks it: a ``cache_control``
breakpoint *writes* the prefix up to it at ``write_multiplier`` × the input price (1.25
for the 5-minute cache), and a later request with the same prefix *reads* it at
``read_multiplier`` × (0.1). Marking a prefix that is never sent again only costs the
write premium, so a breakpoint is placed when the expected reuse pays for it::

    expected_reuses × (1 − read_multiplier)  >  write_multiplier − 1

``expected_reuses`` is learned from traffic: how many times this gateway sent the same
prefix (same model) in the last ``ttl_s`` seconds, the cache's lifetime. A prefix seen
for the first time is not marked; once it has been seen, one more reuse is expected
(0.9 > 0.25 at the default multipliers), and with the 1-hour cache (write 2.0) it must
have been seen twice. Prefixes shorter than ``min_tokens`` (Anthropic's minimum
cacheable length) are never marked.

The candidates are Anthropic's prefix order: the tools, then the system prompt, then every
turn before the last one. A request that already carries a ``cache_control`` (the caller
placed its own) is left as it is.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import Field

from thrifty.section import NonNegativeFloat, PositiveFloat, Section
from thrifty.tokens import count_text

#: Anthropic allows four breakpoints per request; the planner uses at most three.
MAX_BREAKPOINTS = 4


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


class CachePlanner:
    """Decides the breakpoints of each request from the prefixes sent recently.

    Thread-safe (the library and the gateway's workers share a provider).
    """

    def __init__(self, config: PromptCacheConfig) -> None:
        self.config = config
        self._seen: OrderedDict[bytes, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def pays(self, reuses: int) -> bool:
        """The break-even rule of the module docstring."""
        c = self.config
        return reuses * (1 - c.read_multiplier) > c.write_multiplier - 1

    def place(self, request: dict[str, Any]) -> int:
        """Mark ``request``'s stable prefixes that pay (in place); how many were marked."""
        if not self.config.enabled:
            return 0
        walk = list(units(request))
        if any("cache_control" in at_path(request, unit.path) for unit in walk):
            return 0  # the caller placed its own
        candidates = _candidates(walk, len(request.get("messages") or ()))
        now = time.monotonic()
        placed = 0
        with self._lock:
            for unit in candidates:
                reuses = self._sightings(unit.digest, now)
                if unit.tokens >= self.config.min_tokens and self.pays(reuses) and placed < 3:
                    block = at_path(request, unit.path)
                    if unit.path[0] == "system" and len(unit.path) == 1:
                        request["system"] = [{"type": "text", "text": request["system"]}]
                        block = request["system"][0]
                    elif unit.path[0] == "messages" and len(unit.path) == 2:
                        message = request["messages"][unit.path[1]]
                        message["content"] = [{"type": "text", "text": message["content"]}]
                        block = message["content"][0]
                    block["cache_control"] = {"type": "ephemeral"}
                    placed += 1
        return placed

    def _sightings(self, digest: bytes, now: float) -> int:
        """How often ``digest`` was sent within the TTL before now (and record this one)."""
        times = [t for t in self._seen.get(digest, ()) if now - t <= self.config.ttl_s]
        reuses = len(times)
        self._seen[digest] = [*times[-15:], now]
        self._seen.move_to_end(digest)
        while len(self._seen) > self.config.max_entries:
            self._seen.popitem(last=False)
        return reuses


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
