"""The OpenAI-compatible HTTP gateway."""

from thrifty.server.app import build_app

__all__ = ["build_app"]
