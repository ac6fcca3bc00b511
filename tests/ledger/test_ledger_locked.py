"""The ledger writer when its SQLite file stays locked by another process (issue 16, item
4): the queue is bounded (the rest spills to the fallback file), a batch is retried for a
bounded time, close never waits past its grace period, and nothing is lost.

The lock is real: another connection holds ``BEGIN IMMEDIATE`` on the ledger file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import base_config
from tests.ledger.test_ledger import make_record

from thrifty.config import parse_config
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.ledger.writer import LedgerWriter


@contextmanager
def write_locked(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    finally:
        db.execute("ROLLBACK")
        db.close()


def stored_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT request_id FROM requests")}


def fallback_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def writer_for(path: Path, **bounds: float) -> LedgerWriter:
    store = SqliteLedgerStore(path, lock_timeout_s=0.1)
    return LedgerWriter(store, flush_interval=0.01, **bounds)  # type: ignore[arg-type]


@pytest.mark.timeout(60)
def test_a_locked_store_bounds_the_queue_and_close_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = writer_for(path, max_queue=100, write_timeout=30.0, shutdown_grace=0.5)
    ids = [f"req-{i}" for i in range(500)]
    with write_locked(path):
        for request_id in ids:
            writer.submit(make_record(request_id))
        assert writer.pending <= 100  # the queue stops at max_queue
        assert len(fallback_ids(writer.fallback_path)) >= 400
        writer.close()  # the grace period is 0.5 s; the batch's retries would take 30 s
        assert not writer._thread.is_alive()
    spilled = fallback_ids(writer.fallback_path)
    assert len(spilled) == len(set(spilled))
    assert set(spilled) | stored_ids(path) == set(ids)  # every record is somewhere


@pytest.mark.timeout(60)
def test_a_locked_store_sends_a_batch_to_the_fallback_file_after_write_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    writer = writer_for(path, write_timeout=0.5)
    with write_locked(path):
        for i in range(5):
            writer.submit(make_record(f"slow-{i}"))
        # the lock outlives the flush: the batch is in the fallback file, not waiting
        assert writer.flush(timeout=15)
        assert sorted(fallback_ids(writer.fallback_path)) == [f"slow-{i}" for i in range(5)]
    writer.submit(make_record("after"))  # the lock is gone: rows reach the store again
    assert writer.flush(timeout=15)
    assert stored_ids(path) == {"after"}
    writer.close()


def test_the_writer_bounds_come_from_the_ledger_section() -> None:
    bounds = {"max_queue": 1000, "write_timeout_s": 3, "shutdown_grace_s": 4}
    config = parse_config(base_config("http://127.0.0.1:9", ledger=bounds))
    assert (config.ledger.max_queue, config.ledger.write_timeout_s) == (1000, 3)
    assert config.ledger.shutdown_grace_s == 4
    for key, value in [("max_queue", 0), ("write_timeout_s", 0), ("shutdown_grace_s", -1)]:
        with pytest.raises(Exception, match=key):
            parse_config(base_config("http://127.0.0.1:9", ledger={key: value}))
