"""The ledger store and writer, on real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from thrifty.ledger import (
    AttemptRecord,
    LedgerStore,
    LedgerWriter,
    RequestRecord,
    SqliteLedgerStore,
    attempts_cost,
)
from thrifty.ledger.stores.sqlite import MIGRATIONS
from thrifty.usage import Usage

SRC = str(Path(__file__).resolve().parents[2] / "src")


def make_record(request_id: str, ts: float = 1_790_000_000.0, **fields: object) -> RequestRecord:
    usage = Usage(input_tokens=100, output_tokens=20, cached_input_tokens=40, reasoning_tokens=5)
    attempts = [
        AttemptRecord(
            request_id=request_id, seq=0, ts=ts, purpose="main", model="small",
            upstream_model="gpt-4o-mini", provider="openai", status="error", http_status=429,
            error="rate limited", usage=None, cost=None, latency_ms=12.5,
        ),
        AttemptRecord(
            request_id=request_id, seq=1, ts=ts + 0.1, purpose="retry", model="small",
            upstream_model="gpt-4o-mini", provider="openai", status="ok", http_status=200,
            usage=usage, cost=0.00012, latency_ms=300.0,
        ),
    ]  # fmt: skip
    values: dict[str, object] = dict(
        request_id=request_id, ts=ts, endpoint="chat.completions", key_id="k_abc123",
        tags={"team": "search", "env": "prod"}, requested_model="big", model="small",
        provider="openai", stream=True, status="ok", http_status=200, usage=usage, cost=0.00012,
        baseline_model="big", baseline_cost=0.002, latency_ms=320.0, ttft_ms=80.0,
        techniques={"route": {"tier": "small", "score": 0.2}}, savings={"route": 0.00188},
        attempts=attempts,
    )  # fmt: skip
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


def count(path: Path, table: str = "requests") -> int:
    with sqlite3.connect(path) as conn:
        n = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    conn.close()
    return n


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteLedgerStore(tmp_path / "sub" / "ledger.db")
    yield s
    s.close()


def test_record_properties() -> None:
    record = make_record("r1")
    assert record.savings_total == pytest.approx(0.002 - 0.00012)
    assert make_record("r2", baseline_cost=None).savings_total is None
    assert not record.attempts[0].unpriced  # no tokens: nothing to price
    unpriced = AttemptRecord(
        request_id="r", seq=0, ts=0.0, purpose="judge", model="m", upstream_model="m",
        provider="p", status="ok", usage=Usage(input_tokens=5), cost=None,
    )  # fmt: skip
    assert unpriced.unpriced
    assert attempts_cost([*record.attempts, unpriced]) == (pytest.approx(0.00012), True)
    assert RequestRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_store_schema_and_pragmas(store: SqliteLedgerStore) -> None:
    assert isinstance(store, LedgerStore)
    assert store.path.parent.is_dir()
    assert store.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    for column in ("ts", "requested_model", "model", "key_id", "day"):
        assert f"requests_{column}" in indexes
    SqliteLedgerStore(store.path).close()  # reopening does not re-apply migrations


def test_round_trip(store: SqliteLedgerStore) -> None:
    store.write_many([make_record("r1"), make_record("r2", ts=1_790_000_100.0, tags={})])
    rows = store.query_requests()
    assert [r["request_id"] for r in rows] == ["r2", "r1"]  # newest first
    r1 = rows[1]
    assert r1["day"] == "2026-09-21"
    assert r1["tags"] == {"team": "search", "env": "prod"}
    assert r1["techniques"] == {"route": {"tier": "small", "score": 0.2}}
    assert r1["savings"] == {"route": 0.00188}
    assert r1["stream"] is True and r1["unpriced"] is False
    assert (r1["input_tokens"], r1["cached_input_tokens"], r1["output_tokens"]) == (100, 40, 20)
    assert r1["reasoning_tokens"] == 5 and r1["tokens_estimated"] is False
    assert r1["cost"] == pytest.approx(0.00012) and r1["ttft_ms"] == 80.0
    attempts = store.query_attempts("r1")
    assert [(a["seq"], a["purpose"], a["status"]) for a in attempts] == [
        (0, "main", "error"),
        (1, "retry", "ok"),
    ]
    assert attempts[0]["input_tokens"] is None and attempts[0]["cost"] is None
    assert attempts[0]["http_status"] == 429 and attempts[0]["error"] == "rate limited"
    assert attempts[1]["input_tokens"] == 100 and attempts[1]["cost"] == pytest.approx(0.00012)
    assert [r["request_id"] for r in store.query_requests(since=1_790_000_050.0)] == ["r2"]
    assert [r["request_id"] for r in store.query_requests(until=1_790_000_050.0)] == ["r1"]
    assert len(store.query_requests(limit=1)) == 1


def test_replayed_batch_is_not_duplicated(store: SqliteLedgerStore) -> None:
    batch = [make_record("r1"), make_record("r2")]
    store.write_many(batch)
    store.write_many(batch)
    store.write_many([make_record("r3"), make_record("r1")])
    assert count(store.path) == 3
    assert count(store.path, "attempts") == 6
    assert count(store.path, "request_tags") == 6


def test_writer_flushes_within_interval(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"), flush_interval=0.05)
    try:
        writer.submit(make_record("r1"))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and count(tmp_path / "l.db") == 0:
            time.sleep(0.01)
        assert count(tmp_path / "l.db") == 1
        assert writer.pending == 0
    finally:
        writer.close()


def test_writer_flush_waits_for_earlier_submits(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"), flush_interval=30.0)
    try:
        for i in range(5):
            writer.submit(make_record(f"r{i}"))
        assert writer.flush(timeout=10)
        assert count(tmp_path / "l.db") == 5
        assert writer.pending == 0
    finally:
        writer.close()


def test_close_drains_10k_records_from_8_threads(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"), flush_interval=5.0)

    def produce(worker: int) -> None:
        for i in range(1250):
            writer.submit(make_record(f"w{worker}-{i}"))

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    writer.close()  # idempotent
    assert count(tmp_path / "l.db") == 10_000
    assert count(tmp_path / "l.db", "attempts") == 20_000
    assert writer.pending == 0


class BrokenStore:
    """A store that always fails, to exercise retries and the fallback file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0

    def write_many(self, records: object) -> None:
        self.calls += 1
        raise sqlite3.OperationalError("disk I/O error")

    def close(self) -> None:
        pass


def test_failed_batch_goes_to_fallback_file(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path / "l.db")
    writer = LedgerWriter(store, flush_interval=0.05, write_timeout=0.5)  # type: ignore[arg-type]
    records = [make_record("r1"), make_record("r2")]
    for r in records:
        writer.submit(r)
    assert writer.flush(timeout=10)
    writer.close()
    # retried with backoff for write_timeout (0.1 + 0.2 s between tries), then each alone
    assert store.calls == 3 + len(records)
    lines = (tmp_path / "l.db.failed.jsonl").read_text().splitlines()
    assert [RequestRecord.from_dict(json.loads(line)) for line in lines] == records
    assert writer.pending == 0


def test_submit_after_close_is_kept(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"))
    writer.close()
    writer.submit(make_record("late"))
    line = (tmp_path / "l.db.failed.jsonl").read_text()
    assert json.loads(line)["request_id"] == "late"


def _child(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    script = "import sys\nsys.path.insert(0, " + repr(str(Path(__file__).parent)) + ")\n"
    return subprocess.Popen(
        [sys.executable, "-c", script + textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_exit_without_close_flushes_via_atexit(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    proc = _child(f"""
        from test_ledger import make_record
        from thrifty.ledger import LedgerWriter, SqliteLedgerStore
        writer = LedgerWriter(SqliteLedgerStore({str(db)!r}), flush_interval=60.0)
        for i in range(300):
            writer.submit(make_record(f"r{{i}}"))
    """)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert count(db) == 300


@pytest.mark.slow
def test_sigkill_after_flush_keeps_flushed_rows(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    proc = _child(f"""
        import time
        from test_ledger import make_record
        from thrifty.ledger import LedgerWriter, SqliteLedgerStore
        writer = LedgerWriter(SqliteLedgerStore({str(db)!r}), flush_interval=60.0)
        for i in range(200):
            writer.submit(make_record(f"r{{i}}"))
        writer.flush()
        writer.submit(make_record("unflushed"))
        print("flushed", flush=True)
        time.sleep(60)
    """)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "flushed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert count(db) == 200


PRICED_APART = Usage(
    input_tokens=900, output_tokens=300, cached_input_tokens=100, cache_write_tokens=200,
    cache_write_1h_tokens=150, audio_input_tokens=60, image_input_tokens=40,
    audio_output_tokens=30, image_output_tokens=20,
)  # fmt: skip


def test_tokens_priced_apart_are_stored_and_summed(store: SqliteLedgerStore) -> None:
    """1-hour cache writes, audio and image tokens have their own prices: without their
    columns no row using them could be recomputed (bench/ledger_audit.py)."""
    record = make_record("r1", usage=PRICED_APART)
    record.attempts[1].usage = PRICED_APART
    store.write_many([record])
    row = store.query_requests()[0]
    attempt = store.query_attempts("r1")[1]
    for name in ("cache_write_1h_tokens", "audio_input_tokens", "image_input_tokens",
                 "audio_output_tokens", "image_output_tokens"):  # fmt: skip
        assert row[name] == attempt[name] == getattr(PRICED_APART, name), name
    assert store.query_attempts("r1")[0]["audio_input_tokens"] is None  # no usage: no count
    (sums,) = store.aggregate("all")
    classes = (sums["cache_write_1h_tokens"], sums["audio_tokens"], sums["image_tokens"])
    assert classes == (150, 90, 60)


def test_a_ledger_from_before_the_token_classes_is_migrated(tmp_path: Path) -> None:
    """A file at schema 5 (written before migration 6) opens with the new columns at 0."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    from thrifty.stores.sqlite import migrate

    migrate(conn, "schema_version", MIGRATIONS[:5])
    conn.execute(
        "INSERT INTO requests (request_id, ts, day, endpoint, tags, requested_model, stream, "
        "status, http_status, input_tokens, cached_input_tokens, cache_write_tokens, "
        "output_tokens, reasoning_tokens, tokens_estimated, tokens_approximate, cost, "
        "unpriced, latency_ms, techniques, savings) VALUES ('old', 1.0, '1970-01-01', "
        "'chat.completions', '{}', 'm', 0, 'ok', 200, 10, 0, 0, 5, 0, 0, 0, 0.1, 0, 1.0, "
        "'{}', '{}')"
    )
    conn.close()
    store = SqliteLedgerStore(path)
    try:
        assert store.schema_version == len(MIGRATIONS) == 7
        (row,) = store.query_requests()
        assert row["cache_write_1h_tokens"] == row["audio_input_tokens"] == 0
        assert row["api"] is None  # migration 7: older rows report under their endpoint
        assert [g["key"] for g in store.aggregate("api")] == ["chat.completions"]
    finally:
        store.close()
