"""Provider batch jobs and ``client.batch`` go through admission: allowed models, rate
limits and budgets, with the job's worst case reserved at submit and settled at booking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import Gateway, ServerThread
from tests.governance.test_keys import admin, create_key, keys_config

from thrifty import AsyncThrifty
from thrifty.pricing import PriceCatalogue
from thrifty.runtime import key_id
from thrifty.tokens import count_messages

QUESTIONS = ["What is a prime number?", "Name three rivers.", "Why is the sky blue?"]
MAX_TOKENS = 200  # longer than any answer the test upstream gives


def lines_file(path: Path, models: list[str] | None = None) -> tuple[str, bytes]:
    models = models or ["gpt-4o-mini"] * len(QUESTIONS)
    lines = [
        {"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": m, "max_tokens": MAX_TOKENS,
                  "messages": [{"role": "user", "content": q}]}}
        for i, (q, m) in enumerate(zip(QUESTIONS, models, strict=True))
    ]  # fmt: skip
    return path.name, b"".join(orjson.dumps(line) + b"\n" for line in lines)


def job_worst_case() -> float:
    """The three lines' worst case at gpt-4o-mini's batch prices, priced here."""
    price = PriceCatalogue.default().lookup("gpt-4o-mini", provider_hint="openai")
    assert price is not None and price.batch_input_per_token is not None
    assert price.batch_output_per_token is not None
    return sum(
        count_messages([{"role": "user", "content": q}], "gpt-4o-mini").tokens
        * price.batch_input_per_token
        + MAX_TOKENS * price.batch_output_per_token
        for q in QUESTIONS
    )


def jobs_gateway(
    start_gateway: Callable[[dict[str, Any]], Gateway], upstream: ServerThread, tmp_path: Path
) -> Gateway:
    config = keys_config(upstream.url, tmp_path)
    config["batching"] = {
        "enabled": True,
        "jobs": {"enabled": True, "path": str(tmp_path / "jobs.db")},
    }
    return start_gateway(config)


def key_usage(gateway: Gateway, key: dict[str, Any]) -> dict[str, Any]:
    status, _, budgets = admin(gateway, "GET", "/admin/budgets")
    assert status == 200
    [usage] = [b for b in budgets["data"] if b["scope"] == f"key:{key['id']}"]
    return usage


def submit(client: openai.OpenAI, file: tuple[str, bytes]) -> Any:
    uploaded = client.files.create(file=file, purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def test_a_job_reserves_its_worst_case_and_settles_when_booked(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = jobs_gateway(start_gateway, upstream, tmp_path)
    worst = job_worst_case()
    key = create_key(gateway, budgets=[{"period": "day", "limit_usd": 1.5 * worst}])
    with openai.OpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0) as client:
        first = submit(client, lines_file(tmp_path / "a.jsonl"))
        held = key_usage(gateway, key)
        assert held["reserved_usd"] == pytest.approx(worst, rel=1e-9) and held["spent_usd"] == 0
        with pytest.raises(openai.RateLimitError) as refused:  # 2 x worst > 1.5 x worst
            submit(client, lines_file(tmp_path / "b.jsonl"))
        assert refused.value.code == "budget_exceeded"
        assert refused.value.response.headers["x-thrifty-budget"] == f"key:{key['id']}"
        assert f"key:{key['id']} has a day budget" in refused.value.message
        while client.batches.retrieve(first.id).status != "completed":
            pass
        rows = [r for r in gateway.requests() if r["tags"].get("batch_id") == first.id]
        settled = key_usage(gateway, key)
        assert len(rows) == 3 and settled["reserved_usd"] == pytest.approx(0, abs=1e-15)
        assert settled["spent_usd"] == pytest.approx(sum(r["cost"] for r in rows), rel=1e-9)
        assert 0 < settled["spent_usd"] < worst  # settled to the actual, at batch prices
        second = submit(client, lines_file(tmp_path / "c.jsonl"))  # fits now
        assert key_usage(gateway, key)["reserved_usd"] == pytest.approx(worst, rel=1e-9)
        assert client.batches.cancel(second.id).status == "cancelled"
        assert client.batches.retrieve(second.id).status == "cancelled"
        uploaded = client.files.create(file=lines_file(tmp_path / "d.jsonl"), purpose="batch")
        with pytest.raises(openai.BadRequestError):  # the provider refuses: released at once
            client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="48h")  # type: ignore[arg-type]  # fmt: skip
    released = key_usage(gateway, key)
    assert released["reserved_usd"] == pytest.approx(0, abs=1e-15)
    assert released["spent_usd"] == pytest.approx(settled["spent_usd"], rel=1e-12)


def test_a_job_checks_models_and_rate_limits_per_line(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = jobs_gateway(start_gateway, upstream, tmp_path)
    narrow = create_key(gateway, models=["gpt-4o-mini"])
    small = create_key(gateway, requests_per_minute=2)
    four = create_key(gateway, requests_per_minute=4)
    mixed = lines_file(tmp_path / "m.jsonl", ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini"])
    with openai.OpenAI(base_url=gateway.base_url, api_key=narrow["key"], max_retries=0) as c:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            c.files.create(file=mixed, purpose="batch")
        assert denied.value.code == "model_not_allowed" and "'q1'" in denied.value.message
        submit(c, lines_file(tmp_path / "ok.jsonl"))  # its own model: admitted
    with openai.OpenAI(base_url=gateway.base_url, api_key=small["key"], max_retries=0) as c:
        with pytest.raises(openai.RateLimitError) as too_big:  # 3 lines > 2 requests/min
            submit(c, lines_file(tmp_path / "s.jsonl"))
        assert too_big.value.code == "request_too_large"
    with openai.OpenAI(base_url=gateway.base_url, api_key=four["key"], max_retries=0) as c:
        submit(c, lines_file(tmp_path / "f1.jsonl"))  # 3 of 4 this minute
        with pytest.raises(openai.RateLimitError) as limited:
            submit(c, lines_file(tmp_path / "f2.jsonl"))
        assert int(limited.value.response.headers["retry-after"]) >= 1


def test_library_batch_reserves_per_packed_call(upstream: ServerThread, tmp_path: Path) -> None:
    """Two questions of up to 1000 answer tokens: their packed call may write 2016 tokens.
    A budget for 2500 admits it; a budget for 1500 refuses it, and then admits one of the
    two questions asked alone (both are reserved before either has an answer)."""
    price = PriceCatalogue.default().lookup("gpt-4o-mini", provider_hint="openai")
    assert price is not None
    questions = ["Name a colour.", "Name a river."]

    async def run(answer_tokens: int) -> tuple[list[Any], Any]:
        config = keys_config(upstream.url, tmp_path)
        config["batching"] = {"packing": {"max_batch_size": 2}}
        scope = f"key:{key_id('app-1')}"
        limit = answer_tokens * price.output_per_token + 200 * price.input_per_token
        config["governance"] = {
            "store": "memory",
            "budgets": [{"scope": scope, "period": "day", "limit_usd": limit}],
        }
        async with AsyncThrifty(config=config, ledger_path=str(tmp_path / "l.db"),
                                api_key="app-1") as client:  # fmt: skip
            answers = await client.batch(questions, model="gpt-4o-mini", max_tokens=1000)
            [usage] = await client.runtime.budget_usage()
        assert usage.reserved_usd == pytest.approx(0, abs=1e-15)
        assert usage.spent_usd == pytest.approx(sum(a.cost or 0 for a in answers), rel=1e-9)
        assert 0 < usage.spent_usd <= limit
        return answers, usage

    fits, _ = asyncio.run(run(2500))
    assert [a.mode for a in fits] == ["packed", "packed"] and all(a.error is None for a in fits)
    tight, _ = asyncio.run(run(1500))
    assert [a.mode for a in tight] == ["reasked", "reasked"]
    assert [a.error is None for a in tight] == [True, False]
    assert tight[1].error is not None and tight[1].error.code == "budget_exceeded"
