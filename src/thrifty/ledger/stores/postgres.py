"""The shared ledger store: one PostgreSQL database that every replica writes to.

Same contract and schema as :mod:`thrifty.ledger.stores.sqlite` (same tables, columns,
indexes and migration numbering), so reports and queries give the same answers on both.
Differences are only in types: ``DOUBLE PRECISION`` for reals and ``JSONB`` for the JSON
columns. Batches arrive from the :class:`~thrifty.ledger.writer.LedgerWriter` thread and
go in with one pipelined ``executemany`` per table in one transaction;
``ON CONFLICT DO NOTHING`` keeps a retried batch from duplicating rows, so each request
has exactly one row however many replicas write. Migrations run under an advisory lock,
so replicas starting together apply each one exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from thrifty.ledger.record import RequestRecord
from thrifty.ledger.stores.rows import (
    API_MIGRATION,
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    SHADOW_COLUMNS,
    TOKEN_CLASS_MIGRATION,
    TOKEN_CLASSES,
    attempt_row,
    request_row,
    shadow_rows,
)
from thrifty.ledger.stores.sql_reads import SqlLedgerReads
from thrifty.stores.postgres import INSTALL_HINT, connect, migrate, psycopg_module

__all__ = ["INSTALL_HINT", "MIGRATIONS", "PostgresLedgerStore"]


#: Mirrors ``sqlite.MIGRATIONS`` one for one: migration ``i`` brings the schema to version
#: ``i + 1`` on both databases. Never edit a released entry: append a new one to both.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE requests (
            request_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL,
            endpoint TEXT NOT NULL, key_id TEXT, tags JSONB NOT NULL,
            requested_model TEXT NOT NULL, model TEXT, provider TEXT,
            stream INTEGER NOT NULL, status TEXT NOT NULL, http_status INTEGER NOT NULL,
            error_type TEXT, error_message TEXT,
            input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL, tokens_estimated INTEGER NOT NULL,
            tokens_approximate INTEGER NOT NULL,
            cost DOUBLE PRECISION NOT NULL, unpriced INTEGER NOT NULL,
            baseline_model TEXT, baseline_cost DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION NOT NULL, ttft_ms DOUBLE PRECISION,
            techniques JSONB NOT NULL, savings JSONB NOT NULL)""",
        """CREATE TABLE attempts (
            request_id TEXT NOT NULL REFERENCES requests(request_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, ts DOUBLE PRECISION NOT NULL, purpose TEXT NOT NULL,
            model TEXT NOT NULL, upstream_model TEXT NOT NULL, provider TEXT NOT NULL,
            status TEXT NOT NULL, http_status INTEGER, error TEXT,
            input_tokens INTEGER, cached_input_tokens INTEGER, cache_write_tokens INTEGER,
            output_tokens INTEGER, reasoning_tokens INTEGER,
            tokens_estimated INTEGER, tokens_approximate INTEGER,
            cost DOUBLE PRECISION, unpriced INTEGER NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (request_id, seq))""",
        """CREATE TABLE request_tags (
            request_id TEXT NOT NULL REFERENCES requests(request_id) ON DELETE CASCADE,
            key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (request_id, key))""",
        "CREATE INDEX requests_ts ON requests(ts)",
        "CREATE INDEX requests_requested_model ON requests(requested_model)",
        "CREATE INDEX requests_model ON requests(model)",
        "CREATE INDEX requests_key_id ON requests(key_id)",
        "CREATE INDEX requests_day ON requests(day)",
        "CREATE INDEX request_tags_key_value ON request_tags(key, value)",
    ),
    (
        """CREATE TABLE request_bodies (
            request_id TEXT PRIMARY KEY REFERENCES requests(request_id) ON DELETE CASCADE,
            request JSONB NOT NULL, answer TEXT, answer_model TEXT)""",
    ),
    (
        "ALTER TABLE requests ADD COLUMN team TEXT",
        "CREATE INDEX requests_team ON requests(team)",
    ),
    (
        """CREATE TABLE shadow_answers (
            request_id TEXT NOT NULL, model TEXT NOT NULL, shadow_id TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL, served_model TEXT NOT NULL, status TEXT NOT NULL,
            answer TEXT, output_tokens INTEGER, cost DOUBLE PRECISION,
            quality DOUBLE PRECISION, served_quality DOUBLE PRECISION, grader TEXT,
            error TEXT, detail JSONB NOT NULL,
            PRIMARY KEY (request_id, model))""",
        "CREATE INDEX shadow_answers_ts ON shadow_answers(ts)",
    ),
    (
        "ALTER TABLE requests ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0",
        "UPDATE requests SET estimated = tokens_estimated",
    ),
    TOKEN_CLASS_MIGRATION,
    API_MIGRATION,
]

_MIGRATION_LOCK = 0x7468726966747931  # "thrifty1": one advisory lock id for migrations

_REQUEST_TYPES = (
    "text", "float8", "text", "text", "text", "jsonb", "text", "text", "text", "int", "text",
    "int", "text", "text", "int", "int", "int", "int", "int", "int", "int", "float8", "int",
    "text", "float8", "float8", "float8", "jsonb", "jsonb", "text", "int",
    *("int",) * len(TOKEN_CLASSES), "text",
)  # fmt: skip
_ATTEMPT_TYPES = (
    "text", "int", "float8", "text", "text", "text", "text", "text", "int", "text", "int",
    "int", "int", "int", "int", "int", "int", "float8", "int", "float8",
    *("int",) * len(TOKEN_CLASSES),
)  # fmt: skip


def _insert(table: str, columns: Sequence[str], types: Sequence[str]) -> str:
    """One statement for a whole batch: a text array per column, unnested and cast.

    Far cheaper in Python than one parameter set per row (executemany), and
    ``ON CONFLICT DO NOTHING`` still skips rows already stored.
    """
    names = [f"c{i}" for i in range(len(columns))]
    arrays = ", ".join(["%s::text[]"] * len(columns))
    select = ", ".join(f"{n}::{t}" for n, t in zip(names, types, strict=True))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "
        f"FROM unnest({arrays}) AS t({', '.join(names)}) ON CONFLICT DO NOTHING"
    )


def _as_arrays(rows: Sequence[Sequence[Any]], width: int) -> list[list[str | None]]:
    """Rows → one list of text values per column (None stays NULL)."""
    if not rows:
        return [[] for _ in range(width)]
    return [[None if v is None else str(v) for v in column] for column in zip(*rows, strict=True)]


_INSERT_REQUEST = _insert("requests", REQUEST_COLUMNS, _REQUEST_TYPES)
_INSERT_ATTEMPT = _insert("attempts", ATTEMPT_COLUMNS, _ATTEMPT_TYPES)
_INSERT_TAG = _insert("request_tags", ("request_id", "key", "value"), ("text",) * 3)
_INSERT_BODY = _insert(
    "request_bodies",
    ("request_id", "request", "answer", "answer_model"),
    ("text", "jsonb", "text", "text"),
)
_INSERT_SHADOW = _insert(
    "shadow_answers",
    SHADOW_COLUMNS,
    ("text", "text", "text", "float8", "text", "text", "text", "int", "float8", "float8",
     "float8", "text", "text", "jsonb"),
)  # fmt: skip
_BOOL_COLUMNS = ("stream", "unpriced", "estimated", "tokens_estimated", "tokens_approximate")

# The same groups as SQLite's (sql_reads.GROUPS); PostgreSQL spells the sums differently.
_SUMS = """COUNT(*) AS requests,
    COUNT(*) FILTER (WHERE r.status = 'error') AS errors,
    COUNT(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
    COALESCE(SUM(r.cost), 0) AS cost,
    COALESCE(SUM(COALESCE(r.baseline_cost, r.cost)), 0) AS baseline_cost,
    COALESCE(SUM(r.baseline_cost - r.cost), 0) AS savings,
    COUNT(r.baseline_cost) AS baseline_requests,
    SUM(r.input_tokens)::bigint AS input_tokens, SUM(r.output_tokens)::bigint AS output_tokens,
    SUM(r.cached_input_tokens)::bigint AS cached_input_tokens,
    SUM(r.cache_write_tokens)::bigint AS cache_write_tokens,
    SUM(r.reasoning_tokens)::bigint AS reasoning_tokens,
    SUM(r.cache_write_1h_tokens)::bigint AS cache_write_1h_tokens,
    SUM(r.audio_input_tokens + r.audio_output_tokens)::bigint AS audio_tokens,
    SUM(r.image_input_tokens + r.image_output_tokens)::bigint AS image_tokens,
    SUM(r.unpriced)::bigint AS unpriced, SUM(r.estimated)::bigint AS estimated"""



def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for name in _BOOL_COLUMNS:
        if row.get(name) is not None:
            row[name] = bool(row[name])
    return row


class PostgresLedgerStore(SqlLedgerReads):
    """A :class:`~thrifty.ledger.stores.base.LedgerStore` in PostgreSQL.

    Opening connects (a writer and a reader connection, each behind its own lock, so a
    report never waits for a batch) and applies pending migrations.

    >>> store = PostgresLedgerStore("postgresql://thrifty@db/thrifty")  # doctest: +SKIP
    """

    _MARK = "%s"
    _SUMS = _SUMS
    _SAVINGS = "requests r, jsonb_each_text(r.savings) s"
    _SAVED = "COALESCE(SUM(s.value::double precision), 0)"

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        self._migrate()
        self._reader = self._connect()

    def _connect(self) -> Any:
        return connect(self.dsn, self._connect_timeout_s)

    def _reconnect_writer(self) -> None:
        """After a lost connection (database restart), the next batch gets a new one."""
        if self._writer.closed or self._writer.broken:
            self._writer = self._connect()

    def _migrate(self) -> None:
        migrate(
            self._writer, lock_id=_MIGRATION_LOCK, version_table="schema_version",
            migrations=MIGRATIONS,
        )  # fmt: skip

    @property
    def schema_version(self) -> int:
        with self._read_lock:
            row = self._reader.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
        return int(row["v"])

    def write_many(self, records: Sequence[RequestRecord]) -> None:
        if not records:
            return
        requests = [request_row(r) for r in records]
        attempts = [attempt_row(a) for r in records for a in r.attempts]
        tags = [(r.request_id, k, str(v)) for r in records for k, v in r.tags.items()]
        bodies = [
            (r.request_id, json.dumps(r.body), r.answer, r.answer_model)
            for r in records
            if r.body is not None
        ]
        batches = [
            (_INSERT_REQUEST, requests, len(REQUEST_COLUMNS)),
            (_INSERT_ATTEMPT, attempts, len(ATTEMPT_COLUMNS)),
            (_INSERT_TAG, tags, 3),
            (_INSERT_BODY, bodies, 4),
            (_INSERT_SHADOW, shadow_rows(records), len(SHADOW_COLUMNS)),
        ]
        with self._write_lock:
            self._reconnect_writer()
            conn = self._writer
            with conn.transaction():
                for sql, rows, width in batches:
                    if rows:
                        conn.execute(sql, _as_arrays(rows, width))

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run a query; a connection lost since the last one (restart) is replaced once."""
        psycopg = psycopg_module()
        with self._read_lock:
            for attempt in (1, 2):
                if self._reader.closed or self._reader.broken:
                    self._reader = self._connect()
                try:
                    return list(self._reader.execute(sql, params).fetchall())
                except psycopg.OperationalError:
                    if attempt == 2 or not self._reader.broken:
                        raise
        raise AssertionError("unreachable")

    def _decode(self, row: dict[str, Any]) -> dict[str, Any]:
        return _decode(row)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read-only query on the reader connection, for views this interface has no
        call for (the dashboard's time series and decision rates)."""
        return self._fetch(sql, params)
