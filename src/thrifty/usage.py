"""Token usage of one model call, normalised across provider dialects.

Providers report usage differently: OpenAI nests cached and reasoning counts in
``*_tokens_details``; DeepSeek reports ``prompt_cache_hit_tokens``; Anthropic-style
gateways report ``cache_creation_input_tokens``. Pricing needs one shape, so every
provider reply is turned into a :class:`Usage` at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, split by the price class each is billed at.

    ``input_tokens`` is the whole prompt, *including* cached reads and cache writes;
    ``output_tokens`` is the whole completion, *including* reasoning tokens (as OpenAI
    bills them). ``estimated`` is true when we counted tokens ourselves instead of
    reading the provider's figures, and ``approximate`` when the count used a
    tokenizer of another model family.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    approximate: bool = False

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
        )

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        """Read an OpenAI-style ``usage`` object (any dialect we know); None if absent."""
        if not usage:
            return None
        prompt = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        completion = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
        completion_details = usage.get("completion_tokens_details") or usage.get(
            "output_tokens_details"
        )
        cached = 0
        cache_write = 0
        if isinstance(prompt_details, dict):
            cached = int(prompt_details.get("cached_tokens") or 0)
            cache_write = int(prompt_details.get("cache_creation_tokens") or 0)
        if not cached and usage.get("prompt_cache_hit_tokens") is not None:  # DeepSeek
            cached = int(usage["prompt_cache_hit_tokens"] or 0)
        if not cache_write and usage.get("cache_creation_input_tokens") is not None:
            cache_write = int(usage["cache_creation_input_tokens"] or 0)
        reasoning = 0
        if isinstance(completion_details, dict):
            reasoning = int(completion_details.get("reasoning_tokens") or 0)
        return cls(
            input_tokens=prompt,
            output_tokens=completion,
            cached_input_tokens=min(cached, prompt),
            cache_write_tokens=min(cache_write, max(0, prompt - cached)),
            reasoning_tokens=min(reasoning, completion),
        )

    def to_openai(self) -> dict[str, Any]:
        """Render as an OpenAI ``usage`` object (what clients of the gateway receive)."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
