"""The ``redis:`` config section: where the shared Redis is and how to behave without it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from thrifty.section import Section

__all__ = ["RedisConfig"]


class RedisConfig(Section):
    """Connection to the Redis every replica shares (``cache.store: redis``, budgets).

    Used only by stores that are configured to use Redis; nothing connects otherwise.
    """


    url: str = "redis://127.0.0.1:6379/0"
    """``redis://[:password@]host:port/db`` or ``rediss://`` for TLS."""
    prefix: str = "thrifty:"
    """Prepended to every key, so several deployments can share one Redis."""
    timeout_s: Annotated[float, Field(gt=0, le=30)] = 0.25
    """Per-command socket timeout. Cache lookups wait at most this long when Redis hangs."""
    retry_after_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    """After a failed command, skip Redis for this long (misses, budget policy) before
    trying again, so an outage costs one timeout per interval, not one per request."""
    budgets_on_error: Literal["closed", "open"] = "closed"
    """When Redis cannot be reached: ``closed`` refuses requests that need a budget
    reservation; ``open`` admits them unreserved (spend is added when Redis is back)."""
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 64

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must start with redis://, rediss:// or unix://, got {value!r}")
        return value
