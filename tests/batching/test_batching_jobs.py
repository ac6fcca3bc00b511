"""Provider batch jobs through the gateway (openai SDK) and ``thrifty batch`` (CLI)."""

from __future__ import annotations

import asyncio
import http.client as http_client
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

from thrifty.batching.jobs import ENDPOINT
from thrifty.cli.main import main
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.pricing import PriceCatalogue, cost
from thrifty.usage import Usage

QUESTIONS = ["What is a prime number?", "Name three rivers.", "Why is the sky blue?"]


def jobs_config(upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    batching = {"enabled": True, "jobs": {"enabled": True, "path": str(tmp_path / "jobs.db")}}
    return base_config(upstream_url, batching=batching)


def batch_file(path: Path, model: str = "gpt-4o-mini") -> Path:
    lines = [
        {"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": model, "messages": [{"role": "user", "content": q}]}}
        for i, q in enumerate(QUESTIONS)
    ]  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def upload(path: Path) -> tuple[str, bytes]:
    return path.name, path.read_bytes()


def submit(client: openai.OpenAI, tmp_path: Path, **create: Any) -> tuple[Any, Any]:
    """Upload the three questions and start a batch job on them: (file, batch)."""
    uploaded = client.files.create(file=upload(batch_file(tmp_path / "in.jsonl")),
                                   purpose="batch")  # fmt: skip
    batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                  completion_window="24h", **create)  # fmt: skip
    return uploaded, batch


def expected(upstream_url: str) -> dict[str, str]:
    with openai.OpenAI(base_url=f"{upstream_url}/v1", api_key="x") as direct:
        return {
            f"q{i}": direct.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
            )
            .choices[0]
            .message.content
            or ""
            for i, q in enumerate(QUESTIONS)
        }


def assert_batch_priced(rows: list[dict[str, Any]], batch_id: str) -> None:
    rows = [r for r in rows if r["tags"].get("batch_id") == batch_id]
    assert len(rows) == len(QUESTIONS)
    price = PriceCatalogue.default().lookup("gpt-4o-mini", provider_hint="openai")
    assert price is not None and price.batch_input_per_token is not None
    for row in rows:
        usage = Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"])
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["cost"] == pytest.approx(cost(usage, price, batch=True).total)
        assert row["baseline_cost"] == pytest.approx(cost(usage, price).total)
        assert row["cost"] == pytest.approx(row["baseline_cost"] / 2)  # OpenAI: 50% off
        assert row["savings"]["batching"] == pytest.approx(row["baseline_cost"] - row["cost"])


def test_files_and_batches_round_trip_with_the_openai_sdk(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        uploaded, batch = submit(client, tmp_path, metadata={"job": "t"})
        assert uploaded.id.startswith("file-thr") and uploaded.purpose == "batch"
        assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
        assert batch.status == "validating" and batch.input_file_id == uploaded.id
        seen = [client.batches.retrieve(batch.id).status for _ in range(2)]
        assert seen == ["in_progress", "completed"]
        done = client.batches.retrieve(batch.id)
        assert done.request_counts is not None and done.request_counts.completed == 3
        assert done.output_file_id is not None and done.output_file_id.startswith("file-thr")
        results = [json.loads(line) for line in
                   client.files.content(done.output_file_id).text.splitlines()]  # fmt: skip
        assert [b.id for b in client.batches.list(limit=5).data] == [batch.id]
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
    answers = {r["custom_id"]: r["response"]["body"]["choices"][0]["message"]["content"]
               for r in results}  # fmt: skip
    assert answers == expected(upstream.url)
    assert_batch_priced(gateway.requests(), batch.id)


def test_a_callers_cache_control_marks_are_stripped_before_the_provider_batch(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """Anthropic-style marks in a batch file (a client shared with Claude calls) would fail
    every line at OpenAI's batch API (the test upstream refuses them as OpenAI does): the
    gateway sends the lines without them, and the answers are the unmarked ones."""
    mark = {"type": "ephemeral"}
    lines = [
        {"custom_id": f"q{i}", "method": "POST", "url": ENDPOINT,
         "body": {"model": "gpt-4o-mini", "messages": [
             {"role": "user", "content": [{"type": "text", "text": q, "cache_control": mark}]}]}}
        for i, q in enumerate(QUESTIONS)
    ]  # fmt: skip
    path = tmp_path / "marked.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        uploaded = client.files.create(file=upload(path), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                      completion_window="24h")  # fmt: skip
        while (done := client.batches.retrieve(batch.id)).status != "completed":
            assert done.status in ("validating", "in_progress"), done.status
        assert done.request_counts is not None and done.request_counts.completed == 3
        assert done.request_counts.failed == 0 and done.output_file_id is not None
        results = [json.loads(line) for line in
                   client.files.content(done.output_file_id).text.splitlines()]  # fmt: skip
    answers = {r["custom_id"]: r["response"]["body"]["choices"][0]["message"]["content"]
               for r in results}  # fmt: skip
    assert answers == expected(upstream.url)


def test_bad_batch_input_is_a_4xx(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"custom_id": "a", "url": "/v1/chat/completions", "body": {}}\n')
        with pytest.raises(openai.BadRequestError, match="line 1"):
            client.files.create(file=upload(bad), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="unknown model"):
            client.files.create(file=upload(batch_file(tmp_path / "x.jsonl", "nope")),
                                purpose="batch")  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    status, _, body = http("GET", f"{gateway.base_url}/batches?limit=0",
                           headers={"authorization": f"Bearer {GATEWAY_KEY}"})  # fmt: skip
    assert status == 400 and body["error"]["param"] == "limit"
    status, _, body = http("GET", f"{gateway.base_url}/batches")
    assert status == 401


def test_cli_submit_status_results(
    upstream: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = jobs_config(upstream.url, tmp_path)
    config["ledger"] = {"path": str(tmp_path / "ledger.db"), "flush_interval_ms": 20}
    config_path = tmp_path / "thrifty.yaml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    source = batch_file(tmp_path / "work.jsonl")
    assert main(["batch", "submit", str(source), "--config", str(config_path)]) == 0
    batch_id = capsys.readouterr().out.split()[0]
    assert batch_id.startswith("batch_thr")
    assert main(["batch", "status", str(source), "--config", str(config_path)]) == 0
    assert "in_progress" in capsys.readouterr().out
    assert main(["batch", "results", str(source), "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "work.results.jsonl"
    assert str(written) in out and "3 ok" in out
    results = {json.loads(line)["custom_id"]: json.loads(line)
               for line in written.read_text().splitlines()}  # fmt: skip
    assert {k: v["response"]["body"]["choices"][0]["message"]["content"]
            for k, v in results.items()} == expected(upstream.url)  # fmt: skip
    store = SqliteLedgerStore(tmp_path / "ledger.db")
    try:
        assert_batch_priced(store.query_requests(), batch_id)
    finally:
        store.close()


def test_callers_see_only_their_own_files_and_batches(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = jobs_config(upstream.url, tmp_path)
    config["auth"] = {"keys": [GATEWAY_KEY, "other-key"]}
    gateway = start_gateway(config)
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as owner,
        openai.OpenAI(base_url=gateway.base_url, api_key="other-key", max_retries=0) as other,
    ):
        file = owner.files.create(file=upload(batch_file(tmp_path / "in.jsonl")), purpose="batch")
        batch = owner.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                     completion_window="24h")  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            other.files.retrieve(file.id)
        with pytest.raises(openai.NotFoundError):
            other.batches.retrieve(batch.id)
        with pytest.raises(openai.NotFoundError):
            other.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                 completion_window="24h")  # fmt: skip
        assert other.batches.list().data == []
        assert [b.id for b in owner.batches.list().data] == [batch.id]


def _multipart(fields: dict[str, tuple[bytes, str | None]]) -> tuple[bytes, dict[str, str]]:
    """A hand-made multipart body (the SDK would never send these bytes)."""
    body = b""
    for name, (value, filename) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--XX\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    headers = {"authorization": f"Bearer {GATEWAY_KEY}",
               "content-type": "multipart/form-data; boundary=XX"}  # fmt: skip
    return body + b"--XX--\r\n", headers


def test_malformed_uploads_and_queries_are_a_4xx_not_a_500(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = jobs_config(upstream.url, tmp_path)
    config["batching"]["jobs"]["max_file_bytes"] = 2048
    gateway = start_gateway(config)
    line = batch_file(tmp_path / "in.jsonl").read_bytes().splitlines()[0]
    body, headers = _multipart({"purpose": (b"\xff\xfe", None), "file": (line, "in.jsonl")})
    status, _, error = http("POST", f"{gateway.base_url}/files", headers=headers, raw=body)
    assert status == 400 and error["error"]["param"] == "purpose"

    # "²" is a digit to str.isdigit() but not to int()
    status, _, error = http("GET", f"{gateway.base_url}/batches?limit=%C2%B2",
                            headers={"authorization": f"Bearer {GATEWAY_KEY}"})  # fmt: skip
    assert status == 400 and error["error"]["param"] == "limit"

    # a chunked upload declares no length: the limit holds while reading, not after
    conn = http_client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/files")
        for name, value in {**headers, "transfer-encoding": "chunked"}.items():
            conn.putheader(name, value)
        conn.endheaders()
        chunk = b"x" * 65_536
        for _ in range(4):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 413
        assert orjson.loads(response.read())["error"]["type"] == "invalid_request_error"
    finally:
        conn.close()


def test_the_files_api_takes_the_same_key_headers_as_the_model_endpoints(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    status, _, body = http("GET", f"{gateway.base_url}/batches",
                           headers={"x-api-key": GATEWAY_KEY})  # fmt: skip
    assert status == 200 and body["object"] == "list"


def test_result_lines_of_odd_shapes_book_as_errors_not_crashes(
    upstream: ServerThread, tmp_path: Path
) -> None:
    """A provider's result line is outside our control: a bad shape is an error row."""
    from thrifty.batching.jobs import BatchJobs
    from thrifty.config.loader import parse_config
    from thrifty.registry import ModelRegistry

    config = parse_config(jobs_config(upstream.url, tmp_path))
    jobs = BatchJobs(config, ModelRegistry.from_config(config), ledger=None)  # type: ignore[arg-type]
    row = {"id": "batch_thr1", "key_id": None, "provider": "up"}
    for line in ({"custom_id": "a", "response": "not an object"},
                 {"custom_id": "b", "response": {"status_code": "200", "body": []}},
                 {"custom_id": "c", "response": {"status_code": 500, "body": {"error": "x"}}}):
        record = jobs._record(row, line, {"a": "gpt-4o-mini"})
        assert record.status == "error" and record.http_status == 500 and record.cost == 0.0


def test_a_locked_job_store_does_not_stall_the_event_loop(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """Job-store reads wait for SQLite's lock in a worker thread: while the CLI (here: a
    test connection) holds the file, the gateway still answers everything else."""
    import sqlite3
    import threading
    import time

    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
    holder = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        listed: list[int] = []
        waiting = threading.Thread(target=lambda: listed.append(
            http("GET", f"{gateway.base_url}/batches", headers=auth)[0]))  # fmt: skip
        waiting.start()
        # give the list request a head start; the check below does not depend on how long
        # it takes (the thread stays blocked for SQLite's 10 s busy timeout)
        time.sleep(0.5)
        status, _, _ = http("GET", f"{gateway.url}/health")
        assert status == 200
        assert waiting.is_alive(), "the health check waited for the job store's lock"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    waiting.join(timeout=30)
    assert listed == [200]  # it waited for the lock, then read (not a 500 "database is locked")


def test_polls_racing_on_a_finished_job_book_it_once(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """The ledger would drop repeated rows, but /metrics counts what was submitted."""
    from concurrent.futures import ThreadPoolExecutor

    gateway = start_gateway(jobs_config(upstream.url, tmp_path))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        _, batch = submit(client, tmp_path)
        assert client.batches.retrieve(batch.id).status == "in_progress"
        with ThreadPoolExecutor(6) as pool:
            polls = list(pool.map(lambda _: client.batches.retrieve(batch.id).status, range(6)))
    assert polls == ["completed"] * 6
    assert len([r for r in gateway.requests() if r["tags"].get("batch_id") == batch.id]) == 3
    with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("thrifty_requests_total{"))  # fmt: skip
    assert counted == 3


def test_a_job_store_locked_past_its_busy_timeout_answers_503(
    upstream: ServerThread, tmp_path: Path
) -> None:
    """Still locked after SQLite's busy timeout: a retryable 503, not a 500 traceback."""
    import sqlite3

    from thrifty.batching.jobs import BatchJobs
    from thrifty.batching.stores.sqlite import SqliteJobStore
    from thrifty.config.loader import parse_config
    from thrifty.errors import StoreUnavailable
    from thrifty.registry import ModelRegistry

    config = parse_config(jobs_config(upstream.url, tmp_path))
    store = SqliteJobStore(tmp_path / "jobs.db", busy_timeout_s=0.1)
    jobs = BatchJobs(config, ModelRegistry.from_config(config), ledger=None, store=store)  # type: ignore[arg-type]
    holder = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable) as info:
            asyncio.run(jobs.list(None, 20, None))
        assert info.value.status == 503 and info.value.code == "store_unavailable"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert asyncio.run(jobs.list(None, 20, None))["data"] == []
