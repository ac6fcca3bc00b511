"""The ``retries:`` section read by the dispatch stage."""

from __future__ import annotations

from pydantic import Field

from thrifty.section import NonNegativeFloat, Section


class RetryConfig(Section):
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Tries per deployment on 429, 5xx and connection errors (1 = no retry)."""
    backoff_initial_s: NonNegativeFloat = 0.2
    backoff_max_s: NonNegativeFloat = 8.0
    max_retry_after_s: NonNegativeFloat = 20.0
    """A longer ``Retry-After`` than this moves on to the next deployment instead of waiting."""

