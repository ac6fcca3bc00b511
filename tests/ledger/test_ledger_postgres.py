"""The PostgreSQL ledger store against a real PostgreSQL: same answers as SQLite."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from tests.ledger.test_ledger import PRICED_APART, make_record
from tests.ledger.test_reports import RECORDS, rec

from thrifty.cli import report as report_cli
from thrifty.ledger import LedgerStore, LedgerWriter, SqliteLedgerStore, build_report
from thrifty.ledger.reports import REPORT_GROUPS
from thrifty.ledger.stores import sqlite as sqlite_store


@pytest.fixture
def pg(postgres_dsn: str):
    from thrifty.ledger.stores.postgres import PostgresLedgerStore

    store = PostgresLedgerStore(postgres_dsn)
    yield store
    store.close()


def _count(store, table: str) -> int:
    return store._fetch(f"SELECT COUNT(*) AS n FROM {table}", [])[0]["n"]


def test_migrations_mirror_sqlite_and_apply_once(postgres_dsn: str) -> None:
    from thrifty.ledger.stores.postgres import MIGRATIONS, PostgresLedgerStore

    assert len(MIGRATIONS) == len(sqlite_store.MIGRATIONS)
    opened: list[PostgresLedgerStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresLedgerStore(postgres_dsn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]  # replicas starting at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = opened[0]
    assert isinstance(store, LedgerStore)
    assert store.schema_version == len(MIGRATIONS)
    assert _count(store, "schema_version") == len(MIGRATIONS)
    indexes = {r["indexname"] for r in store._fetch("SELECT indexname FROM pg_indexes", [])}
    for column in ("ts", "requested_model", "model", "key_id", "day"):
        assert f"requests_{column}" in indexes
    assert "request_tags_key_value" in indexes
    for s in opened:
        s.close()


def test_round_trip_matches_sqlite(pg, tmp_path: Path) -> None:
    sqlite = SqliteLedgerStore(tmp_path / "l.db")
    records = [make_record("r1"), make_record("r2", ts=1_790_000_100.0, tags={})]
    records[1].usage = records[1].attempts[1].usage = PRICED_APART  # the token classes too
    for store in (pg, sqlite):
        store.write_many(records)
    try:
        for since, until, limit in [(None, None, None), (1_790_000_050.0, None, None),
                                    (None, 1_790_000_050.0, None), (None, None, 1)]:  # fmt: skip
            assert pg.query_requests(since, until, limit) == sqlite.query_requests(
                since, until, limit
            )
        assert pg.query_attempts("r1") == sqlite.query_attempts("r1")
        assert pg.query_attempts("r2") == sqlite.query_attempts("r2")
        assert pg.query_attempts("r2")[1]["cache_write_1h_tokens"] == 150
        row = pg.query_requests()[1]
        assert row["tags"] == {"team": "search", "env": "prod"} and row["stream"] is True
    finally:
        sqlite.close()


def test_reports_match_sqlite(pg, tmp_path: Path) -> None:
    sqlite = SqliteLedgerStore(tmp_path / "l.db")
    extra = [rec("t1", 1_000.0, savings={"routing": 0.25, "cascade": -0.05}),
             rec("t2", 1_001.0, savings={"routing": 0.5, "cache": 1.0})]  # fmt: skip
    for store in (pg, sqlite):
        store.write_many([*RECORDS, *extra])
    try:
        for by in REPORT_GROUPS:
            for since in (None, RECORDS[2].ts):
                got, want = build_report(pg, since=since, by=by), build_report(sqlite, since, by)
                assert _approx_equal(got, want), (by, since, got, want)
        assert build_report(pg)["by_technique"]["routing"] == pytest.approx(0.75)
    finally:
        sqlite.close()


def _approx_equal(got: dict, want: dict) -> bool:
    """Reports hold nested floats: compare them with a tolerance, everything else exactly."""
    if got.keys() != want.keys():
        return False
    for key, value in want.items():
        other = got[key]
        if isinstance(value, dict):
            if not _approx_equal(other, value):
                return False
        elif isinstance(value, list):
            if len(value) != len(other) or not all(
                _approx_equal(a, b) if isinstance(b, dict) else a == pytest.approx(b)
                for a, b in zip(other, value, strict=True)
            ):
                return False
        elif isinstance(value, float):
            if other != pytest.approx(value):
                return False
        elif other != value:
            return False
    return True


def test_replayed_batch_is_not_duplicated(pg) -> None:
    batch = [make_record("r1"), make_record("r2")]
    pg.write_many(batch)
    pg.write_many(batch)
    pg.write_many([make_record("r3"), make_record("r1")])
    assert _count(pg, "requests") == 3
    assert _count(pg, "attempts") == 6
    assert _count(pg, "request_tags") == 6


def test_captured_bodies(pg) -> None:
    body = {"model": "big", "messages": [{"role": "user", "content": "hi"}]}
    pg.write_many([make_record("r1", body=body, answer="hello", answer_model="gpt-4o-mini")])
    [row] = pg.query_bodies()
    assert (row["request"], row["answer"], row["answer_model"]) == (body, "hello", "gpt-4o-mini")


def test_writer_batches_from_eight_threads(postgres_dsn: str) -> None:
    from thrifty.ledger.stores.postgres import PostgresLedgerStore

    writer = LedgerWriter(PostgresLedgerStore(postgres_dsn), flush_interval=0.05)

    def submit(thread: int) -> None:
        for i in range(250):
            writer.submit(make_record(f"t{thread}-{i}", ts=1_790_000_000.0 + i))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    check = PostgresLedgerStore(postgres_dsn)
    try:
        assert _count(check, "requests") == 2000
        assert _count(check, "attempts") == 4000
        assert build_report(check)["totals"]["requests"] == 2000
    finally:
        check.close()


def test_store_reconnects_after_a_database_restart(pg, postgres_server) -> None:
    pg.write_many([make_record("before")])
    postgres_server.restart()
    with pytest.raises(Exception):  # noqa: B017 - the batch in flight fails (writer retries it)
        pg.write_many([make_record("during")])
    pg.write_many([make_record("during"), make_record("after")])  # a new connection
    assert sorted(r["request_id"] for r in pg.query_requests()) == ["after", "before", "during"]


def test_report_command_reads_the_configured_postgres(
    pg, postgres_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml
    from tests.ledger.test_reports import cli

    pg.write_many(RECORDS)
    config = {
        "providers": {"up": {"base_url": "http://127.0.0.1:1/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"store": "postgres", "dsn": postgres_dsn},
    }
    path = tmp_path / "thrifty.yaml"
    path.write_text(yaml.safe_dump(config))
    args = cli("report", "--config", str(path), "--by", "tag", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by"] == "tag" and report["unpriced"] == 1
    assert report["totals"]["cost"] == pytest.approx(0.0045)
    config["ledger"]["dsn"] = "postgresql://nobody@127.0.0.1:1/none"
    path.write_text(yaml.safe_dump(config))
    assert report_cli.run(cli("report", "--config", str(path))) == 2
    assert "thrifty report:" in capsys.readouterr().err


def test_postgres_schema_mirrors_sqlite() -> None:
    """A column or migration added to one ledger store must be added to the other."""
    from thrifty.ledger.stores import postgres, rows, sql_reads, sqlite
    from thrifty.ledger.stores.base import GROUP_BY

    assert len(postgres.MIGRATIONS) == len(sqlite.MIGRATIONS)
    # one list of columns and one row builder serve both (rows.py); PostgreSQL adds types
    assert len(postgres._REQUEST_TYPES) == len(rows.REQUEST_COLUMNS)
    assert len(postgres._ATTEMPT_TYPES) == len(rows.ATTEMPT_COLUMNS)
    # one set of groups serves both stores (sql_reads.py); each one the interface names
    assert set(sql_reads.GROUPS) == set(GROUP_BY)


def test_a_refused_record_goes_to_the_fallback_file_alone(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text; the rest of that record's batch is still stored."""
    from thrifty.ledger.stores.postgres import PostgresLedgerStore

    fallback = tmp_path / "failed.jsonl"
    writer = LedgerWriter(
        PostgresLedgerStore(postgres_dsn), flush_interval=30.0, fallback_path=fallback
    )
    writer.submit(make_record("req-nul-bad", error_message="bad\x00byte"))
    writer.submit(make_record("req-nul-good"))
    assert writer.flush(timeout=30)
    writer.close()
    store = PostgresLedgerStore(postgres_dsn)
    try:
        stored = {r["request_id"] for r in store.query_requests()}
    finally:
        store.close()
    assert "req-nul-good" in stored and "req-nul-bad" not in stored
    assert [json.loads(line)["request_id"] for line in fallback.read_text().splitlines()] == [
        "req-nul-bad"
    ]


def _shadow_record(request_id: str):
    from thrifty.ledger.record import RequestRecord, ShadowAnswer

    return RequestRecord(
        request_id=f"{request_id}-shadow", ts=1_700_000_000.0, endpoint="shadow",
        requested_model="shadow", status="ok", http_status=200, cost=0.01,
        shadows=[
            ShadowAnswer(request_id=request_id, model="small", served_model="big", status="ok",
                         answer="4", output_tokens=1, cost=0.001, quality=0.5,
                         served_quality=0.75, grader="absolute", detail={"same": True}),
            ShadowAnswer(request_id=request_id, model="tiny", served_model="big",
                         status="error", error="timeout after 1 s"),
        ],
    )  # fmt: skip


def test_shadow_answers_match_sqlite(pg, tmp_path: Path) -> None:
    lite = SqliteLedgerStore(tmp_path / "l.db")
    try:
        for store in (pg, lite):
            store.write_many([make_record("r1"), _shadow_record("r1")])
            store.write_many([_shadow_record("r1")])  # a retried batch adds nothing
        rows = [store.query_shadows() for store in (pg, lite)]
    finally:
        lite.close()
    assert rows[0] == rows[1]
    assert [(r["model"], r["status"], r["quality"], r["detail"]) for r in rows[0]] == [
        ("small", "ok", 0.5, {"same": True}),
        ("tiny", "error", None, {}),
    ]
