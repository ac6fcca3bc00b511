"""One provider object per configured upstream, by the API it speaks (``kind``)."""

from __future__ import annotations

from thrifty.providers.anthropic_http import AnthropicProvider
from thrifty.providers.base import Provider
from thrifty.providers.config import ProviderConfig
from thrifty.providers.openai_http import OpenAIHTTPProvider


def build_provider(name: str, config: ProviderConfig) -> Provider:
    """``kind: anthropic`` → :class:`AnthropicProvider`; else OpenAI-compatible HTTP."""
    if config.kind == "anthropic":
        return AnthropicProvider(name, config)
    return OpenAIHTTPProvider(name, config)
