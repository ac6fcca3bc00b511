"""The embedded ledger store: one SQLite file in WAL mode.

WAL lets report readers run while the writer thread commits. ``synchronous=NORMAL`` keeps a
commit to one ``write()`` (no fsync per transaction): a committed batch survives a crash of
the process (SIGKILL) but the last commits may be lost on power failure or an OS crash.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thrifty.ledger.record import RequestRecord
from thrifty.ledger.stores.rows import (
    API_MIGRATION,
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    SHADOW_COLUMNS,
    TOKEN_CLASS_MIGRATION,
    attempt_row,
    request_row,
    shadow_rows,
)
from thrifty.ledger.stores.sql_reads import SqlLedgerReads
from thrifty.stores.sqlite import connect, migrate

__all__ = ["MIGRATIONS", "SqliteLedgerStore"]

#: Schema migrations, applied in order; migration ``i`` brings the schema to version ``i + 1``.
#: Never edit a released entry: append a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE requests (
            request_id TEXT PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL,
            endpoint TEXT NOT NULL, key_id TEXT, tags TEXT NOT NULL,
            requested_model TEXT NOT NULL, model TEXT, provider TEXT,
            stream INTEGER NOT NULL, status TEXT NOT NULL, http_status INTEGER NOT NULL,
            error_type TEXT, error_message TEXT,
            input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL, tokens_estimated INTEGER NOT NULL,
            tokens_approximate INTEGER NOT NULL,
            cost REAL NOT NULL, unpriced INTEGER NOT NULL,
            baseline_model TEXT, baseline_cost REAL,
            latency_ms REAL NOT NULL, ttft_ms REAL,
            techniques TEXT NOT NULL, savings TEXT NOT NULL)""",
        """CREATE TABLE attempts (
            request_id TEXT NOT NULL REFERENCES requests(request_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, ts REAL NOT NULL, purpose TEXT NOT NULL,
            model TEXT NOT NULL, upstream_model TEXT NOT NULL, provider TEXT NOT NULL,
            status TEXT NOT NULL, http_status INTEGER, error TEXT,
            input_tokens INTEGER, cached_input_tokens INTEGER, cache_write_tokens INTEGER,
            output_tokens INTEGER, reasoning_tokens INTEGER,
            tokens_estimated INTEGER, tokens_approximate INTEGER,
            cost REAL, unpriced INTEGER NOT NULL, latency_ms REAL NOT NULL,
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
        # Opt-in (ledger.capture_bodies): what was asked and answered, for replay.
        """CREATE TABLE request_bodies (
            request_id TEXT PRIMARY KEY REFERENCES requests(request_id) ON DELETE CASCADE,
            request TEXT NOT NULL, answer TEXT, answer_model TEXT)""",
    ),
    (
        # The caller's team (from its virtual key), for reports and team budgets.
        "ALTER TABLE requests ADD COLUMN team TEXT",
        "CREATE INDEX requests_team ON requests(team)",
    ),
    (
        # Shadow evaluation (docs/shadow.md): each candidate's graded answer to a served
        # request; request_id is the served request's, shadow_id the shadow record's.
        """CREATE TABLE shadow_answers (
            request_id TEXT NOT NULL, model TEXT NOT NULL, shadow_id TEXT NOT NULL,
            ts REAL NOT NULL, served_model TEXT NOT NULL, status TEXT NOT NULL,
            answer TEXT, output_tokens INTEGER, cost REAL, quality REAL,
            served_quality REAL, grader TEXT, error TEXT, detail TEXT NOT NULL,
            PRIMARY KEY (request_id, model))""",
        "CREATE INDEX shadow_answers_ts ON shadow_answers(ts)",
    ),
    (
        # Whether a row's cost rests on Thrifty's own token counts (any attempt's, not
        # only the answer's: a billed timeout before a good answer counts too).
        "ALTER TABLE requests ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0",
        "UPDATE requests SET estimated = tokens_estimated",
    ),
    TOKEN_CLASS_MIGRATION,
    API_MIGRATION,
]

_INSERT_REQUEST = (
    f"INSERT OR IGNORE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
)
_INSERT_ATTEMPT = (
    f"INSERT OR IGNORE INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"
)
_INSERT_TAG = "INSERT OR IGNORE INTO request_tags (request_id, key, value) VALUES (?, ?, ?)"
_INSERT_BODY = (
    "INSERT OR IGNORE INTO request_bodies (request_id, request, answer, answer_model) "
    "VALUES (?, ?, ?, ?)"
)
_INSERT_SHADOW = (
    f"INSERT OR IGNORE INTO shadow_answers ({', '.join(SHADOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SHADOW_COLUMNS))})"
)
_JSON_COLUMNS = ("tags", "techniques", "savings", "detail")
_BOOL_COLUMNS = ("stream", "unpriced", "estimated", "tokens_estimated", "tokens_approximate")

_SUMS = """COUNT(*) AS requests,
    SUM(r.status = 'error') AS errors, SUM(r.status = 'cancelled') AS cancelled,
    TOTAL(r.cost) AS cost, TOTAL(COALESCE(r.baseline_cost, r.cost)) AS baseline_cost,
    TOTAL(r.baseline_cost - r.cost) AS savings,
    SUM(r.baseline_cost IS NOT NULL) AS baseline_requests,
    SUM(r.input_tokens) AS input_tokens, SUM(r.output_tokens) AS output_tokens,
    SUM(r.cached_input_tokens) AS cached_input_tokens,
    SUM(r.cache_write_tokens) AS cache_write_tokens,
    SUM(r.reasoning_tokens) AS reasoning_tokens,
    SUM(r.cache_write_1h_tokens) AS cache_write_1h_tokens,
    SUM(r.audio_input_tokens + r.audio_output_tokens) AS audio_tokens,
    SUM(r.image_input_tokens + r.image_output_tokens) AS image_tokens,
    SUM(r.unpriced) AS unpriced, SUM(r.estimated) AS estimated"""


def _decode(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in _JSON_COLUMNS:
        if name in out:
            out[name] = json.loads(out[name])
    for name in _BOOL_COLUMNS:
        if out.get(name) is not None:
            out[name] = bool(out[name])
    return out


class SqliteLedgerStore(SqlLedgerReads):
    """A :class:`~thrifty.ledger.stores.base.LedgerStore` in one SQLite file.

    Opening creates the parent directory and the file, and applies pending migrations. Writes
    and reads use separate connections, each behind its own lock, so a report never waits for
    a batch insert to finish (WAL readers see the last committed state).

    >>> store = SqliteLedgerStore("/var/lib/thrifty/ledger.db")  # doctest: +SKIP
    """

    _MARK = "?"
    _SUMS = _SUMS
    _SAVINGS = "requests r, json_each(r.savings) s"
    _SAVED = "TOTAL(s.value)"

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        """``lock_timeout_s``: how long one write waits for another process's lock."""
        self.path = Path(path)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect(wal=True, timeout_s=lock_timeout_s)
        self._migrate()
        self._reader = self._connect(wal=False)

    def _connect(self, wal: bool, timeout_s: float = 30.0) -> sqlite3.Connection:
        return connect(
            self.path, timeout_s=timeout_s, wal=wal, named_rows=True, foreign_keys=True
        )

    def _migrate(self) -> None:
        migrate(self._writer, "schema_version", MIGRATIONS)

    @property
    def schema_version(self) -> int:
        with self._read_lock:
            return self._reader.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

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
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT_REQUEST, requests)
                conn.executemany(_INSERT_ATTEMPT, attempts)
                conn.executemany(_INSERT_TAG, tags)
                conn.executemany(_INSERT_BODY, bodies)
                conn.executemany(_INSERT_SHADOW, shadow_rows(records))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._read_lock:
            rows = self._reader.execute(sql, params).fetchall()
        return [dict(row) for row in rows]

    def _decode(self, row: dict[str, Any]) -> dict[str, Any]:
        return _decode(row)

    def _decode_body(self, row: dict[str, Any]) -> dict[str, Any]:
        out = _decode(row)
        out["request"] = json.loads(out["request"])
        return out
