"""Token usage of one model call, normalised across provider dialects.

Providers report usage differently, and pricing needs one shape, so every provider reply
is turned into a :class:`Usage` at the boundary:

* OpenAI chat: ``prompt_tokens`` (cached reads included) with ``prompt_tokens_details``
  (``cached_tokens``, ``audio_tokens``; OpenRouter adds ``cache_write_tokens``; the
  Anthropic provider's chat form adds ``cache_creation_tokens`` and, of those, the 1-hour
  ``cache_write_1h_tokens``) and
  ``completion_tokens`` with ``completion_tokens_details`` (``reasoning_tokens``,
  ``audio_tokens``). OpenAI Responses: the same as ``input_tokens``/``output_tokens``.
* DeepSeek: ``prompt_cache_hit_tokens`` + ``prompt_cache_miss_tokens`` = ``prompt_tokens``.
* Anthropic (:func:`from_anthropic`): ``input_tokens`` *excludes* both
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens``; ``cache_creation``
  splits the writes into 5-minute and 1-hour ones.
* Gemini's and xAI's OpenAI-compatible APIs report reasoning *outside*
  ``completion_tokens``: ``total_tokens`` = prompt + completion + reasoning.

Counts are not trusted blindly: a negative, fractional, non-numeric or absurd count
(over :data:`MAX_TOKENS`), or a usage that is not an object, is :class:`UsageError`
(:func:`parse_openai`). :meth:`Usage.from_openai` logs it and returns None, so the caller
counts the tokens itself and flags the estimate instead of booking -$1 or $1e12.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_TOKENS", "Usage", "UsageError", "from_anthropic", "parse_openai"]

log = logging.getLogger(__name__)

MAX_TOKENS = 100_000_000
"""No call reads or writes more tokens than this (the largest context windows are ~10M):
a count above it is a provider bug, not usage to bill."""


class UsageError(ValueError):
    """A usage object that cannot be true (wrong type, negative or absurd counts)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, split by the price class each is billed at.

    ``input_tokens`` is the whole prompt, *including* cached reads and cache writes;
    ``output_tokens`` is the whole completion, *including* reasoning tokens (as OpenAI
    bills them). The other counts are parts of those two: ``cache_write_1h_tokens`` of
    ``cache_write_tokens`` (writes kept for an hour, dearer than 5-minute ones),
    ``audio_input_tokens``/``image_input_tokens`` of the uncached input,
    ``audio_output_tokens``/``image_output_tokens`` of the output. ``estimated`` is true
    when we counted tokens ourselves instead of reading the provider's figures, and
    ``approximate`` when the count used a tokenizer of another model family.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    approximate: bool = False
    cache_write_1h_tokens: int = 0
    audio_input_tokens: int = 0
    image_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_output_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
            approximate=self.approximate or other.approximate,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            audio_input_tokens=self.audio_input_tokens + other.audio_input_tokens,
            image_input_tokens=self.image_input_tokens + other.image_input_tokens,
            audio_output_tokens=self.audio_output_tokens + other.audio_output_tokens,
            image_output_tokens=self.image_output_tokens + other.image_output_tokens,
        )

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read a provider's ``usage`` (any dialect we know); None if absent or unusable.

        Unusable usage (see :func:`parse_openai`) is logged; the caller then estimates.
        """
        try:
            return parse_openai(usage)
        except UsageError as exc:
            log.warning("upstream usage ignored: %s", exc, extra={"usage": repr(usage)[:200]})
            return None

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage | None:
        """:func:`from_anthropic`, as a constructor."""
        return from_anthropic(usage)

    def to_openai(self) -> dict[str, Any]:
        """Render as an OpenAI ``usage`` object (what clients of the gateway receive)."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


def _count(value: Any, field: str) -> int:
    """A token count: absent is 0; anything but a whole number in [0, MAX_TOKENS] raises."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{field} is not a number: {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise UsageError(f"{field} is not a whole number: {value!r}")
    if not 0 <= value <= MAX_TOKENS:
        raise UsageError(f"{field} is out of range [0, {MAX_TOKENS}]: {value!r}")
    return int(value)


def _details(usage: dict[str, Any], *names: str) -> dict[str, Any]:
    """The first present ``*_details`` object of ``names``; {} if none; raises if not an object."""
    for name in names:
        value = usage.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise UsageError(f"{name} is not an object: {value!r}")
        return value
    return {}


def _object(usage: Any) -> dict[str, Any] | None:
    if usage is None or usage == {}:
        return None
    if not isinstance(usage, dict):
        raise UsageError(f"usage is not an object: {type(usage).__name__}")
    return usage


def _anthropic_shaped(usage: dict[str, Any]) -> bool:
    """Anthropic's own shape: cache counts beside an ``input_tokens`` that excludes them."""
    return (
        "prompt_tokens" not in usage
        and "input_tokens_details" not in usage
        and any(k in usage for k in ("cache_read_input_tokens", "cache_creation_input_tokens"))
    )


def parse_openai(usage: Any) -> Usage | None:
    """Read an OpenAI-style ``usage`` (chat, Responses, DeepSeek, OpenRouter, Gemini/xAI
    compatibility, or Anthropic's shape passed through); None when absent.

    Raises :class:`UsageError` when it cannot be true.
    """
    raw = _object(usage)
    if raw is None:
        return None
    if _anthropic_shaped(raw):
        return from_anthropic(raw)
    hit = _count(raw.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")  # DeepSeek
    miss = _count(raw.get("prompt_cache_miss_tokens"), "prompt_cache_miss_tokens")
    if "prompt_tokens" in raw:
        prompt = _count(raw["prompt_tokens"], "prompt_tokens")
    elif "input_tokens" in raw:
        prompt = _count(raw["input_tokens"], "input_tokens")
    else:
        prompt = hit + miss
    if "completion_tokens" in raw:
        completion = _count(raw["completion_tokens"], "completion_tokens")
    else:
        completion = _count(raw.get("output_tokens"), "output_tokens")
    total = raw.get("total_tokens")
    total = None if total is None else _count(total, "total_tokens")
    inputs = _details(raw, "prompt_tokens_details", "input_tokens_details")
    outputs = _details(raw, "completion_tokens_details", "output_tokens_details")

    cached = _count(inputs.get("cached_tokens"), "prompt_tokens_details.cached_tokens")
    if not cached:
        cached = hit or _count(raw.get("cache_read_input_tokens"), "cache_read_input_tokens")
    writes = _count(inputs.get("cache_write_tokens"), "prompt_tokens_details.cache_write_tokens")
    if not writes:
        writes = _count(inputs.get("cache_creation_tokens"), "cache_creation_tokens") or _count(
            raw.get("cache_creation_input_tokens"), "cache_creation_input_tokens"
        )
    hour = _count(inputs.get("cache_write_1h_tokens"), "cache_write_1h_tokens")  # of writes
    reasoning = _count(outputs.get("reasoning_tokens"), "completion_tokens_details.reasoning")
    if reasoning and (
        (total is not None and total == prompt + completion + reasoning != prompt + completion)
        or (total is None and reasoning > completion)
    ):
        completion += reasoning  # Gemini/xAI style: reasoning billed beside the completion
    cached = min(cached, prompt)
    writes = min(writes, prompt - cached)
    uncached = prompt - cached - writes
    audio_in = min(_count(inputs.get("audio_tokens"), "prompt audio_tokens"), uncached)
    image_in = min(_count(inputs.get("image_tokens"), "prompt image_tokens"), uncached - audio_in)
    reasoning = min(reasoning, completion)
    audio_out = min(_count(outputs.get("audio_tokens"), "completion audio_tokens"),
                    completion - reasoning)  # fmt: skip
    image_out = min(
        _count(outputs.get("image_tokens"), "completion image_tokens"),
        completion - reasoning - audio_out,
    )
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=cached,
        cache_write_tokens=writes,
        cache_write_1h_tokens=min(hour, writes),
        reasoning_tokens=reasoning,
        audio_input_tokens=audio_in,
        image_input_tokens=image_in,
        audio_output_tokens=audio_out,
        image_output_tokens=image_out,
    )


def from_anthropic(usage: Any) -> Usage | None:
    """Read an Anthropic Messages ``usage``; None when absent. Raises :class:`UsageError`.

    ``input_tokens`` excludes the cache: the prompt is ``input_tokens`` +
    ``cache_read_input_tokens`` + ``cache_creation_input_tokens``. When
    ``cache_creation`` splits the writes (``ephemeral_5m_input_tokens``,
    ``ephemeral_1h_input_tokens``), the 1-hour ones are priced at their own rate.
    ``output_tokens`` already includes extended thinking.
    """
    raw = _object(usage)
    if raw is None:
        return None
    fresh = _count(raw.get("input_tokens"), "input_tokens")
    read = _count(raw.get("cache_read_input_tokens"), "cache_read_input_tokens")
    writes = _count(raw.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    split = _details(raw, "cache_creation")
    five = _count(split.get("ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens")
    hour = _count(split.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens")
    if split and not writes:
        writes = five + hour
    prompt = fresh + read + writes
    if prompt > MAX_TOKENS:
        raise UsageError(f"prompt of {prompt} tokens is out of range [0, {MAX_TOKENS}]")
    return Usage(
        input_tokens=prompt,
        output_tokens=_count(raw.get("output_tokens"), "output_tokens"),
        cached_input_tokens=read,
        cache_write_tokens=writes,
        cache_write_1h_tokens=min(hour, writes),
    )
