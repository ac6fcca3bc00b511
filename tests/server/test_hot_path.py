"""What the hot-path changes promise: time-ordered request ids, a ledger writer that
batches without per-record wake-ups, the answer priced once, and a stream whose client
left is cancelled while it still waits for the upstream."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from openai import OpenAI
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config
from tests.ledger.test_ledger import count, make_record
from tests.server.test_stream_disconnect import leave_after_first_chunk, rows_of

from thrifty.ledger import LedgerWriter, SqliteLedgerStore
from thrifty.pipeline.context import new_request_id


def test_request_ids_are_unique_and_grow_with_time() -> None:
    first = [new_request_id() for _ in range(2000)]
    time.sleep(0.005)
    later = new_request_id()
    assert all(re.fullmatch(r"thr-[0-9a-f]{24}", rid) for rid in [*first, later])
    assert len(set(first)) == len(first)
    assert later > max(first)  # the time part leads: later ids sort after earlier ones


def test_a_full_batch_is_written_before_the_interval(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"), flush_interval=60.0, max_batch=50)
    try:
        for i in range(50):
            writer.submit(make_record(f"r{i}"))
        deadline = time.monotonic() + 20  # far below the 60 s interval
        while time.monotonic() < deadline and count(tmp_path / "l.db") < 50:
            time.sleep(0.02)
        assert count(tmp_path / "l.db") == 50
    finally:
        writer.close()


def test_records_submitted_while_writing_are_not_lost(tmp_path: Path) -> None:
    writer = LedgerWriter(SqliteLedgerStore(tmp_path / "l.db"), flush_interval=0.01, max_batch=7)
    for i in range(500):
        writer.submit(make_record(f"r{i}"))
        if i % 100 == 0:
            assert writer.flush(timeout=20)
    writer.close()
    assert count(tmp_path / "l.db") == 500
    assert writer.pending == 0


def test_pass_through_baseline_is_the_answers_cost(gateway: Gateway) -> None:
    client = OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "price me once"}]
    )
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["cost"] > 0
    assert row["baseline_model"] == "gpt-4o-mini"
    assert row["baseline_cost"] == row["cost"]
    assert raw.headers["x-thrifty-baseline-cost"] == raw.headers["x-thrifty-cost"]


def test_auto_request_baseline_is_priced_on_the_baseline_model(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    config = base_config(upstream.url, default_model="gpt-4o-mini", baseline_model="gpt-4o")
    gateway = start_gateway(config)
    client = OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "which model prices me?"}]
    )
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["model"] == "gpt-4o-mini" and row["baseline_model"] == "gpt-4o"
    assert row["baseline_cost"] > row["cost"] > 0  # gpt-4o costs more for the same tokens


def test_client_leaving_a_stalled_stream_cancels_it_at_once(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    """The upstream waits 60 s between chunks; the client leaves after the first one. The
    row must come long before the next chunk would: the stream was cancelled, not run out."""
    gateway, _ = leave_after_first_chunk(
        upstream, start_gateway, "stall", chunk_delay_ms=60_000, timeout_s=30
    )
    rows = rows_of(gateway, "stall", within_s=30)
    assert rows, "the stream was not cancelled when its client left"
    assert rows[0]["status"] == "cancelled"
