"""Thrifty: cut the bill of LLM API calls without cutting the quality of the answers.

The same pipeline runs as an OpenAI-compatible gateway (``thrifty serve``), in-process
(:class:`Thrifty`, :class:`AsyncThrifty`), and offline over recordings (``thrifty replay``).
"""

from typing import TYPE_CHECKING, Any

from thrifty.config import ThriftyConfig, load_config
from thrifty.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    ThriftyError,
    UpstreamError,
)
from thrifty.usage import Usage

if TYPE_CHECKING:
    from thrifty.client import AsyncThrifty, Thrifty

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The library face imports the ``openai`` package; the gateway does not need it.
    if name in ("Thrifty", "AsyncThrifty"):
        from thrifty import client

        return getattr(client, name)
    raise AttributeError(f"module 'thrifty' has no attribute {name!r}")


__all__ = [
    "AsyncThrifty",
    "AuthenticationFailed",
    "ConfigError",
    "InvalidRequest",
    "ModelNotFound",
    "RateLimited",
    "Thrifty",
    "ThriftyConfig",
    "ThriftyError",
    "UpstreamError",
    "Usage",
    "__version__",
    "load_config",
]
