"""What one ledger record becomes as database rows: the same columns and values for
SQLite and PostgreSQL, so the two stores cannot drift apart (each only spells its SQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from thrifty.ledger.record import AttemptRecord, RequestRecord
from thrifty.usage import Usage

#: Migration 6, the same SQL in both stores: the token classes priced apart
#: (docs/pricing.md): 1-hour cache writes, audio and image tokens, so an audit can
#: recompute every row's cost from its columns.
TOKEN_CLASS_MIGRATION = (
    "ALTER TABLE requests ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN audio_input_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN image_input_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN audio_output_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN image_output_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE attempts ADD COLUMN cache_write_1h_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN audio_input_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN image_input_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN audio_output_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN image_output_tokens INTEGER",
)

#: Migration 7, the same SQL in both stores: the API the client spoke (``chat.completions``,
#: ``responses``, ``messages``, ``completions``, ``embeddings``); NULL on older rows.
API_MIGRATION = ("ALTER TABLE requests ADD COLUMN api TEXT",)

#: Token counts priced at their own rates, stored since migration 6 (``Usage`` fields).
TOKEN_CLASSES = (
    "cache_write_1h_tokens", "audio_input_tokens", "image_input_tokens", "audio_output_tokens",
    "image_output_tokens",
)  # fmt: skip

REQUEST_COLUMNS = (
    "request_id", "ts", "day", "endpoint", "key_id", "tags", "requested_model", "model",
    "provider", "stream", "status", "http_status", "error_type", "error_message",
    "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
    "reasoning_tokens", "tokens_estimated", "tokens_approximate", "cost", "unpriced",
    "baseline_model", "baseline_cost", "latency_ms", "ttft_ms", "techniques", "savings",
    "team", "estimated", *TOKEN_CLASSES, "api",
)  # fmt: skip
ATTEMPT_COLUMNS = (
    "request_id", "seq", "ts", "purpose", "model", "upstream_model", "provider", "status",
    "http_status", "error", "input_tokens", "cached_input_tokens", "cache_write_tokens",
    "output_tokens", "reasoning_tokens", "tokens_estimated", "tokens_approximate", "cost",
    "unpriced", "latency_ms", *TOKEN_CLASSES,
)  # fmt: skip
SHADOW_COLUMNS = (
    "request_id", "model", "shadow_id", "ts", "served_model", "status", "answer",
    "output_tokens", "cost", "quality", "served_quality", "grader", "error", "detail",
)  # fmt: skip


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def request_row(r: RequestRecord) -> tuple[Any, ...]:
    u = r.usage
    return (
        r.request_id, r.ts, _utc_day(r.ts), r.endpoint, r.key_id, json.dumps(r.tags),
        r.requested_model, r.model, r.provider, int(r.stream), r.status, r.http_status,
        r.error_type, r.error_message, u.input_tokens, u.cached_input_tokens,
        u.cache_write_tokens, u.output_tokens, u.reasoning_tokens, int(u.estimated),
        int(u.approximate), r.cost, int(r.unpriced), r.baseline_model, r.baseline_cost,
        r.latency_ms, r.ttft_ms, json.dumps(r.techniques), json.dumps(r.savings), r.team,
        int(r.estimated or u.estimated), *_classes(u), r.api or r.endpoint,
    )  # fmt: skip


def _classes(u: Usage) -> tuple[int, ...]:
    return tuple(getattr(u, name) for name in TOKEN_CLASSES)


def attempt_row(a: AttemptRecord) -> tuple[Any, ...]:
    u = a.usage
    tokens: tuple[Any, ...] = (None,) * 7
    classes: tuple[Any, ...] = (None,) * len(TOKEN_CLASSES)
    if u is not None:
        classes = _classes(u)
        tokens = (
            u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.output_tokens,
            u.reasoning_tokens, int(u.estimated), int(u.approximate),
        )  # fmt: skip
    head = (a.request_id, a.seq, a.ts, a.purpose, a.model, a.upstream_model, a.provider)
    tail = (a.cost, int(a.unpriced), a.latency_ms)
    return (*head, a.status, a.http_status, a.error, *tokens, *tail, *classes)


def shadow_rows(records: Sequence[RequestRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            s.request_id, s.model, r.request_id, r.ts, s.served_model, s.status, s.answer,
            s.output_tokens, s.cost, s.quality, s.served_quality, s.grader, s.error,
            json.dumps(s.detail),
        )
        for r in records
        for s in r.shadows
    ]  # fmt: skip
