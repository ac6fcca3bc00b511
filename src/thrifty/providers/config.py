"""The ``providers:`` section: one OpenAI-compatible upstream each."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from thrifty.providers.anthropic_cache import PromptCacheConfig
from thrifty.providers.anthropic_format import ANTHROPIC_VERSION
from thrifty.section import PositiveFloat, Section


class ProviderConfig(Section):
    """An upstream: OpenAI-compatible (OpenAI, DeepSeek, DashScope, OpenRouter, vLLM, ...)
    or, with ``kind: anthropic``, Anthropic's Messages API (``base_url`` up to ``/v1``)."""

    base_url: str
    kind: Literal["openai", "anthropic"] = "openai"
    """The API the upstream speaks: ``openai`` (chat completions) or ``anthropic`` (messages)."""
    anthropic_version: str = ANTHROPIC_VERSION
    """The ``anthropic-version`` header sent to a ``kind: anthropic`` upstream."""
    prompt_cache: PromptCacheConfig = Field(default_factory=PromptCacheConfig)
    """Automatic ``cache_control`` breakpoints (``kind: anthropic`` only; docs/apis.md)."""
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: PositiveFloat = 120.0
    connect_timeout_s: PositiveFloat = 10.0
    max_connections: int = Field(default=256, ge=1)
    price_prefix: str | None = None
    """Catalogue prefix for price lookups (``deepseek`` → ``deepseek/<model>``);
    defaults to the provider's name."""
    stream_usage: bool = True
    """Ask for ``stream_options.include_usage`` so streams are priced from true usage."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")
