"""Provider batch jobs through the gateway (openai SDK) and ``thrifty batch`` (CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

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
        uploaded = client.files.create(file=upload(batch_file(tmp_path / "in.jsonl")),
                                       purpose="batch")  # fmt: skip
        assert uploaded.id.startswith("file-thr") and uploaded.purpose == "batch"
        assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                      completion_window="24h", metadata={"job": "t"})  # fmt: skip
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
