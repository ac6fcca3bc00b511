"""The ``ledger:`` section."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from thrifty.section import Section


class LedgerConfig(Section):
    store: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "thrifty-ledger.db"
    dsn: str | None = None
    """PostgreSQL connection string for ``store: postgres`` (docs/deploy.md)."""
    flush_interval_ms: int = Field(default=200, ge=10, le=60_000)
    max_queue: int = Field(default=100_000, ge=100)
    """Records waiting to be written, at most; past it (the store is down or locked) a
    record goes straight to the fallback file (``<path>.failed.jsonl``)."""
    write_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    """How long one batch is retried, lock waits included, before it goes to the fallback
    file."""
    shutdown_grace_s: float = Field(default=10.0, gt=0, le=3600)
    """How long shutdown waits for the writer; then what is unwritten goes to the
    fallback file, so a stuck store never holds up a stop and loses nothing."""
    capture_bodies: bool = False
    """Also store each chat request's messages and answer (off by default: prompts may hold
    personal data). Needed to replay your own traffic: ``thrifty datasets import ledger``."""
    redact: list[str] = Field(default_factory=list)
    """Regular expressions: every match in a captured prompt, answer or shadow answer is
    replaced by ``[redacted]`` before it is stored (models still see the original)."""

    @model_validator(mode="after")
    def _patterns_compile(self) -> LedgerConfig:
        for pattern in self.redact:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"redact: {pattern!r} is not a regular expression: {exc}"
                ) from None
        return self

    @model_validator(mode="after")
    def _dsn_for_postgres(self) -> LedgerConfig:
        if self.store == "postgres" and not self.dsn:
            raise ValueError("dsn: store 'postgres' needs a dsn (postgresql://user@host/db)")
        return self
