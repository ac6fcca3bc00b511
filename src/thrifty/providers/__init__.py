"""Upstream clients (transports): OpenAI-compatible HTTP now, a replay provider later."""

from thrifty.providers.base import Provider, ProviderReply, ProviderStream
from thrifty.providers.openai_http import OpenAIHTTPProvider

__all__ = ["OpenAIHTTPProvider", "Provider", "ProviderReply", "ProviderStream"]
