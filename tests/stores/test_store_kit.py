"""The store kit itself: SQLite connect settings, and both migration runners."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from thrifty.stores import sqlite as kit_sqlite


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_sqlite_connect_applies_the_house_settings(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "store.db"
    conn = kit_sqlite.connect(path, timeout_s=2.5, named_rows=True, foreign_keys=True)
    try:
        assert path.exists()  # the parent directory is created
        assert _pragma(conn, "journal_mode") == "wal"
        assert _pragma(conn, "synchronous") == 1  # NORMAL
        assert _pragma(conn, "busy_timeout") == 2500
        assert _pragma(conn, "foreign_keys") == 1
        assert conn.isolation_level is None  # autocommit: stores begin their own
        assert isinstance(conn.execute("SELECT 1 AS one").fetchone(), sqlite3.Row)
        threading_ok: list[object] = []
        worker = threading.Thread(target=lambda: threading_ok.append(_pragma(conn, "user_version")))
        worker.start()
        worker.join()
        assert threading_ok == [0]  # usable from another thread
    finally:
        conn.close()


def test_sqlite_connect_keeps_the_defaults_it_is_told_to(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    conn = kit_sqlite.connect(path, wal=False, synchronous=None, autocommit=False)
    try:
        assert _pragma(conn, "journal_mode") == "delete"
        assert _pragma(conn, "synchronous") == 2  # SQLite's default, FULL
        assert _pragma(conn, "foreign_keys") == 0
        assert conn.isolation_level == "DEFERRED"  # Python's implicit transactions
        conn.execute("CREATE TABLE t (x)")
    finally:
        conn.close()


def test_sqlite_read_only_connect_never_writes_or_creates(tmp_path: Path) -> None:
    path = tmp_path / "odd #name%.db"
    writer = kit_sqlite.connect(path)
    writer.execute("CREATE TABLE t (x)")
    writer.close()
    reader = kit_sqlite.connect(path, read_only=True, named_rows=True)
    try:
        assert reader.execute("SELECT COUNT(*) AS n FROM t").fetchone()["n"] == 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (1)")
    finally:
        reader.close()
    with pytest.raises(sqlite3.OperationalError):
        kit_sqlite.connect(tmp_path / "missing" / "x.db", read_only=True)
    assert not (tmp_path / "missing").exists()


def test_sqlite_migrations_apply_once_each_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    migrations = [("CREATE TABLE a (x)",), ("ALTER TABLE a ADD COLUMN y", "CREATE TABLE b (z)")]
    for _ in range(2):
        conn = kit_sqlite.connect(path)
        kit_sqlite.migrate(conn, "m_version", migrations[:1])
        conn.close()
    conn = kit_sqlite.connect(path)
    kit_sqlite.migrate(conn, "m_version", migrations)
    versions = [row[0] for row in conn.execute("SELECT version FROM m_version ORDER BY version")]
    assert versions == [1, 2]
    conn.execute("INSERT INTO a (x, y) VALUES (1, 2)")
    conn.close()


# -- PostgreSQL ----------------------------------------------------------------------------

_LOCK = 0x7468726966747939  # a test-only id, apart from the stores' own

#: The second migration sleeps while holding the lock, so the other connection must wait
#: for it and then find both versions applied.
_PG_MIGRATIONS = [
    ("CREATE TABLE kit_a (x INTEGER)",),
    ("SELECT pg_sleep(0.3)", "INSERT INTO kit_a VALUES (1)"),
]


def test_postgres_migrations_apply_once_under_concurrency(postgres_dsn: str) -> None:
    from thrifty.stores import postgres as kit_postgres

    connections = [kit_postgres.connect(postgres_dsn, 5.0) for _ in range(2)]
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def run(conn: object) -> None:
        try:
            gate.wait()
            kit_postgres.migrate(
                conn, lock_id=_LOCK, version_table="kit_version", migrations=_PG_MIGRATIONS
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in connections]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert time.monotonic() - started >= 0.3
    conn = connections[0]
    rows = conn.execute("SELECT version FROM kit_version ORDER BY version").fetchall()
    assert [r["version"] for r in rows] == [1, 2]
    assert conn.execute("SELECT COUNT(*) AS n FROM kit_a").fetchone()["n"] == 1
    # a third start, later, has nothing left to do
    kit_postgres.migrate(
        conn, lock_id=_LOCK, version_table="kit_version", migrations=_PG_MIGRATIONS
    )
    assert conn.execute("SELECT COUNT(*) AS n FROM kit_a").fetchone()["n"] == 1
    for c in connections:
        c.close()


def test_postgres_failed_migration_rolls_back_with_its_version(postgres_dsn: str) -> None:
    from thrifty.stores import postgres as kit_postgres

    conn = kit_postgres.connect(postgres_dsn, 5.0)
    broken = [("CREATE TABLE kit_b (x INTEGER)",), ("SELECT no_such_function()",)]
    try:
        with pytest.raises(Exception, match="no_such_function"):
            kit_postgres.migrate(conn, lock_id=_LOCK, version_table="kit_b_version",
                                 migrations=broken)  # fmt: skip
        tables = conn.execute(
            "SELECT COUNT(*) AS n FROM pg_tables WHERE tablename LIKE 'kit_b%'"
        ).fetchone()
        assert tables["n"] == 0
        kit_postgres.migrate(conn, lock_id=_LOCK, version_table="kit_b_version",
                             migrations=broken[:1])  # fmt: skip
        assert conn.execute("SELECT MAX(version) AS v FROM kit_b_version").fetchone()["v"] == 1
    finally:
        conn.close()


def test_a_job_store_file_from_before_versioning_keeps_its_rows(tmp_path: Path) -> None:
    """Job store files were created with ``IF NOT EXISTS`` statements and no version
    table; opening one now records version 1 and changes nothing else."""
    from thrifty.batching.stores.sqlite import MIGRATIONS, SqliteJobStore

    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute(
        "INSERT INTO files VALUES ('file-thr1', NULL, 'openai', 'file-up', 'in.jsonl',"
        " 'batch', 10, 1, '{}')"
    )
    old.commit()
    old.close()
    store = SqliteJobStore(path)
    assert store.file("file-thr1") is not None
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("SELECT MAX(version) FROM jobs_schema_version").fetchone() == (1,)
