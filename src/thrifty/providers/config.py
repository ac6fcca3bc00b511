"""The ``providers:`` section: one OpenAI-compatible upstream each."""

from __future__ import annotations

from pydantic import Field, field_validator

from thrifty.section import PositiveFloat, Section


class ProviderConfig(Section):
    """An OpenAI-compatible upstream (OpenAI, DeepSeek, DashScope, OpenRouter, vLLM, ...)."""

    base_url: str
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

