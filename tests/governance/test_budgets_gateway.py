"""Budgets, rate limits and budget alerts through the real gateway (and the library).

Every request here sets ``max_tokens`` below the test upstream's answer length, so the
answer is cut at exactly ``max_tokens``; with one try per deployment (:func:`one_try`: no
try that may time out and be billed its prompt is reserved beside the answer) the actual
cost equals the worst case, which makes "admits exactly N" a fact of the arithmetic, not
of timing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from tests.conftest import Gateway, ServerThread, http
from tests.governance.test_keys import MESSAGES, admin, create_key, keys_config, sdk
from tests.server.test_gateway_chat import catalogue_entry

from thrifty import Thrifty
from thrifty.cli.processes import free_port, wait_healthy
from thrifty.governance.keys.spec import KeySpec
from thrifty.governance.keys.sqlite import SqliteKeyStore
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.runtime import key_id
from thrifty.tokens import count_messages

ANSWER_TOKENS = 5


def price(model: str) -> tuple[float, float]:
    entry = catalogue_entry(model)
    return entry["input_cost_per_token"], entry["output_cost_per_token"]


def request_cost(model: str = "gpt-4o-mini", answer_tokens: int = ANSWER_TOKENS) -> float:
    """What one MESSAGES request costs, priced independently of the gateway's code."""
    prompt = count_messages(MESSAGES, model).tokens
    input_price, output_price = price(model)
    return prompt * input_price + answer_tokens * output_price


def ask(client: openai.OpenAI, model: str = "gpt-4o-mini", **params: Any) -> Any:
    params.setdefault("max_tokens", ANSWER_TOKENS)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, **params
    )


def one_try(config: dict[str, Any]) -> dict[str, Any]:
    """``retries.max_attempts: 1``: the reservation is the answer's worst cost alone."""
    config["retries"] = {**config.get("retries", {}), "max_attempts": 1}
    return config


def start(
    start_gateway: Callable[[dict[str, Any]], Gateway],
    upstream: ServerThread,
    tmp_path: Path,
    **governance: Any,
) -> Gateway:
    return start_gateway(one_try(keys_config(upstream.url, tmp_path, governance=governance)))


def test_reservation_is_the_worst_case_and_settles_to_the_actual(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = keys_config(upstream.url, tmp_path)
    config["models"]["unreachable"] = {"provider": "dead", "model": "gpt-4o"}
    gateway = start_gateway(config)
    key = create_key(gateway, owner="ana", budgets=[{"period": "day", "limit_usd": 10}])
    input_price, output_price = price("gpt-4o-mini")
    prompt = count_messages(MESSAGES, "gpt-4o-mini").tokens
    limit = catalogue_entry("gpt-4o-mini")["max_output_tokens"]
    with sdk(gateway, key["key"]) as client:
        capped = ask(client, max_tokens=7)
        uncapped = ask(client, max_tokens=None)  # no max_tokens: the model's output limit
        two = ask(client, max_tokens=7, n=2)
        with pytest.raises(openai.APIStatusError) as failed:  # settled at $0: nothing spent
            ask(client, model="unreachable")
    assert failed.value.status_code == 502
    rows = [gateway.row(r.headers["x-thrifty-request-id"]) for r in (capped, uncapped, two)]
    reserved = [r["techniques"]["budget"]["reserved_usd"] for r in rows]
    # the default 3 tries: two may time out, each billed the prompt, before the answer
    timed_out = 2 * prompt * input_price
    assert reserved[0] == pytest.approx(
        timed_out + prompt * input_price + 7 * output_price, rel=1e-12
    )
    assert reserved[1] == pytest.approx(
        timed_out + prompt * input_price + limit * output_price, rel=1e-12
    )
    assert reserved[2] == pytest.approx(
        timed_out + prompt * input_price + 14 * output_price, rel=1e-12
    )
    status, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [usage] = [b for b in budgets["data"] if b["scope"] == f"key:{key['id']}"]
    assert status == 200 and usage["reserved_usd"] == pytest.approx(0, abs=1e-15)
    assert usage["spent_usd"] == pytest.approx(sum(r["cost"] for r in rows), rel=1e-9)
    assert usage["spent_usd"] < sum(reserved), "settled to the actual, not the reservation"


def test_auto_reserves_for_the_most_expensive_pick(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = keys_config(
        upstream.url,
        tmp_path,
        default_model="gpt-4o-mini",
        routing={"enabled": True, "candidates": ["gpt-4o-mini", "gpt-4o"]},
        cascade={"tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}]},
    )
    config["governance"]["budgets"] = [{"scope": "team:t", "period": "day", "limit_usd": 10}]
    gateway = start_gateway(config)
    routed = create_key(gateway, team="t")
    climbing = create_key(gateway, team="t", overrides={"routing": False, "cascade": True})
    prompt = count_messages(MESSAGES, "gpt-4o-mini").tokens

    def worst(model: str) -> float:
        """Two tries that time out (billed the prompt; 3 tries by default), then the answer."""
        input_price, output_price = price(model)
        return 3 * prompt * input_price + 7 * output_price

    reserved = []
    for key in (routed, climbing):
        with sdk(gateway, key["key"]) as client:
            raw = ask(client, model="auto", max_tokens=7)
        row = gateway.row(raw.headers["x-thrifty-request-id"])
        reserved.append(row["techniques"]["budget"]["reserved_usd"])
    assert reserved[0] == pytest.approx(worst("gpt-4o"), rel=1e-12)
    assert reserved[1] == pytest.approx(worst("gpt-4o-mini") + worst("gpt-4o"), rel=1e-12)


def test_concurrent_requests_never_overspend(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """200 concurrent requests (a quarter streamed) against a budget that admits 50."""
    cost = request_cost()
    limit = 50.5 * cost
    gateway = start(start_gateway, upstream, tmp_path)
    key = create_key(gateway, owner="ana", budgets=[{"period": "month", "limit_usd": limit}])

    async def one(client: openai.AsyncOpenAI, index: int) -> str:
        params: dict[str, Any] = {"max_tokens": ANSWER_TOKENS}
        try:
            if index % 4 == 0:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True, **params
                )
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, **params
                )
        except openai.RateLimitError as exc:
            assert exc.code == "budget_exceeded", exc
            return "refused"
        return "ok"

    async def burst() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key=key["key"], max_retries=0, timeout=60
        ) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    outcomes = asyncio.run(burst())
    assert outcomes.count("ok") == 50 and outcomes.count("refused") == 150
    rows = [r for r in gateway.requests() if r["key_id"] == key["id"]]
    assert len(rows) == 50 and all(r["status"] == "ok" for r in rows)
    spent = sum(r["cost"] for r in rows)
    assert spent <= limit and spent == pytest.approx(50 * cost, rel=1e-9)
    _, _, budgets = admin(gateway, "GET", "/admin/budgets")
    [usage] = budgets["data"]
    assert usage["spent_usd"] == pytest.approx(spent, rel=1e-9) and usage["spent_usd"] <= limit
    assert usage["reserved_usd"] == pytest.approx(0, abs=1e-12), "every reservation settled"


def test_over_budget_error_names_the_budget_and_its_reset(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start(
        start_gateway,
        upstream,
        tmp_path,
        budgets=[{"scope": "tag:env=prod", "period": "day", "limit_usd": request_cost() * 1.5}],
    )
    key = create_key(gateway, owner="ana", tags={"env": "prod"})
    with sdk(gateway, key["key"]) as client:
        ask(client)
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
    error = refused.value
    assert error.code == "budget_exceeded" and error.type == "rate_limit_error"
    assert "tag:env=prod" in error.message and "day budget" in error.message
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86_400))
    assert f"resets at {tomorrow}T00:00:00Z" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert error.response.headers["x-thrifty-budget"] == "tag:env=prod"


def _wait_for_minute_start() -> None:
    """Fixed one-minute windows: start a rate-limit test well inside one."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_rate_limits_answer_429_with_retry_after(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    prompt = count_messages(MESSAGES, "gpt-4o-mini").tokens
    gateway = start(start_gateway, upstream, tmp_path, rate_limits={"requests_per_minute": 2})
    per_request = create_key(gateway, owner="ana")  # the config default: 2 a minute
    per_token = create_key(gateway, owner="bo", tokens_per_minute=2 * prompt + 9)
    _wait_for_minute_start()
    with sdk(gateway, per_request["key"]) as client:
        ask(client)
        ask(client)
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
    retry_after = int(refused.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60 and "2 requests per minute" in refused.value.message
    with sdk(gateway, per_token["key"]) as client:
        ask(client, max_tokens=10)  # counts prompt + 10 answer tokens once it ends
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client, max_tokens=10)  # its prompt would pass the limit
    assert "tokens per minute" in refused.value.message
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    tiny = create_key(gateway, owner="cy", tokens_per_minute=prompt - 1)
    with sdk(gateway, tiny["key"]) as client, pytest.raises(openai.RateLimitError) as refused:
        ask(client)  # could never fit: no Retry-After, and the SDKs are told not to retry
    assert refused.value.code == "request_too_large"
    assert refused.value.response.headers["x-should-retry"] == "false"
    status, headers, body = http(
        "POST",
        f"{gateway.base_url}/chat/completions",
        {"model": "gpt-4o-mini", "messages": MESSAGES},
        {"authorization": f"Bearer {per_request['key']}", "content-type": "application/json"},
    )
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert "retry-after" in headers


class _Receiver:
    """A little HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                events.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    made = _Receiver()
    made.thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_budget_alerts_fire_once_per_threshold(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    tmp_path: Path,
    receiver: _Receiver,
) -> None:
    cost = request_cost()
    gateway = start(
        start_gateway,
        upstream,
        tmp_path,
        budgets=[{"scope": "team:search", "period": "month", "limit_usd": 4 * cost}],
        alerts={"webhook_url": receiver.url},
    )
    key = create_key(gateway, owner="ana", team="search")
    with sdk(gateway, key["key"]) as client:
        ask(client)  # 25%: nothing
        ask(client)  # 50%
        receiver.wait_for(1)
        assert [e["threshold"] for e in receiver.events] == [0.5]
        ask(client)  # 75%: nothing new
        ask(client)  # 100%: 0.8 and 1.0 at once
        receiver.wait_for(3)
        with pytest.raises(openai.RateLimitError):
            ask(client)
    gateway.server.stop()  # the lifespan waits for alerts still being sent
    assert sorted(e["threshold"] for e in receiver.events) == [0.5, 0.8, 1.0]
    last = max(receiver.events, key=lambda e: e["threshold"])
    assert last["event"] == "budget.threshold" and last["scope"] == "team:search"
    assert last["period"] == "month" and last["window"] == time.strftime("%Y-%m", time.gmtime())
    assert last["spent_usd"] == pytest.approx(4 * cost, rel=1e-9)
    assert last["limit_usd"] == pytest.approx(4 * cost) and last["resets_at"] > time.time()


def test_library_enforces_the_same_budgets(upstream: ServerThread, tmp_path: Path) -> None:
    config = one_try(keys_config(upstream.url, tmp_path))
    config["governance"] = {
        "store": "memory",
        "budgets": [
            {"scope": f"key:{key_id('app-1')}", "period": "lifetime", "limit_usd": request_cost()}
        ],
    }
    with Thrifty(config=config, ledger_path=str(tmp_path / "l.db"), api_key="app-1") as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=ANSWER_TOKENS
        )
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=ANSWER_TOKENS
            )
    assert refused.value.code == "budget_exceeded" and "lifetime budget" in refused.value.message


@pytest.mark.slow
def test_two_gateway_workers_share_one_budget(upstream: ServerThread, tmp_path: Path) -> None:
    """``thrifty serve`` with 2 worker processes, 80 concurrent requests, a budget for 20:
    exactly 20 are admitted, whichever worker serves them (the SQLite store is shared; its
    atomicity across processes is tested directly in test_budget_stores.py)."""
    port = free_port()
    config = one_try(keys_config(upstream.url, tmp_path))
    config["server"] = {"port": port, "workers": 2}
    config["logging"] = {"level": "warning"}
    config["ledger"] = {"path": str(tmp_path / "ledger.db"), "flush_interval_ms": 20}
    config["governance"]["budgets"] = [
        {"scope": "team:shared", "period": "month", "limit_usd": 20.5 * request_cost()}
    ]
    path = tmp_path / "thrifty.yaml"
    path.write_text(yaml.safe_dump(config))
    store = SqliteKeyStore(config["governance"]["keys_path"])
    _, secret = store.create(KeySpec(owner="ana", team="shared"))
    store.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "thrifty.cli.main", "serve", "--config", str(path)]
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout=30)

        async def one(client: openai.AsyncOpenAI) -> bool:
            try:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, max_tokens=ANSWER_TOKENS
                )
            except openai.RateLimitError:
                return False
            return True

        async def burst() -> list[bool]:
            async with openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key=secret, max_retries=0
            ) as client:
                return await asyncio.gather(*(one(client) for _ in range(80)))

        admitted = asyncio.run(burst()).count(True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert admitted == 20
    ledger = SqliteLedgerStore(tmp_path / "ledger.db")
    rows = ledger.query_requests()
    ledger.close()
    assert len(rows) == 20 and {r["team"] for r in rows} == {"shared"}
    assert sum(r["cost"] for r in rows) <= 20.5 * request_cost()


def test_abandoned_stream_still_settles(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start(start_gateway, upstream, tmp_path)
    key = create_key(gateway, owner="ana", budgets=[{"period": "day", "limit_usd": 10}])
    with sdk(gateway, key["key"]) as client:
        stream = client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, max_tokens=40
        )
        next(iter(stream))  # one chunk, then hang up
        stream.close()
    deadline = time.monotonic() + 20
    while True:  # the gateway settles when it notices the client left
        _, _, budgets = admin(gateway, "GET", "/admin/budgets")
        [usage] = budgets["data"]
        if usage["reserved_usd"] < 1e-12 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert usage["reserved_usd"] == pytest.approx(0, abs=1e-12)
    [row] = [r for r in gateway.requests() if r["key_id"] == key["id"]]
    assert usage["spent_usd"] == pytest.approx(row["cost"], rel=1e-9)


def test_dashboard_hook_only_with_budgets(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    from tests.conftest import base_config

    from thrifty.dashboard.budget_panel import budget_usage

    plain = start_gateway(base_config(upstream.url))
    assert asyncio.run(budget_usage(plain.server.server.config.app.state.runtime)) is None
    limit = 10 * request_cost()
    gateway = start(
        start_gateway,
        upstream,
        tmp_path,
        budgets=[{"scope": "team:search", "period": "day", "limit_usd": limit}],
    )
    key = create_key(gateway, team="search", budgets=[{"period": "lifetime", "limit_usd": 1}])
    with sdk(gateway, key["key"]) as client:
        ask(client)
    usages = asyncio.run(budget_usage(gateway.server.server.config.app.state.runtime))
    assert usages is not None and {u.bucket.scope for u in usages} == {
        "team:search",
        f"key:{key['id']}",
    }
    status, _, listed = admin(gateway, "GET", "/admin/budgets")
    assert status == 200
    spent = {(b["scope"], b["period"]): b["spent_usd"] for b in listed["data"]}
    assert spent == {
        ("team:search", "day"): pytest.approx(request_cost(), rel=1e-9),
        (f"key:{key['id']}", "lifetime"): pytest.approx(request_cost(), rel=1e-9),
    }


def test_stream_closed_before_reading_settles_and_is_recorded(
    upstream: ServerThread, tmp_path: Path
) -> None:
    """A stream closed before its first chunk was read still settles its reservation,
    gets its ledger row and closes the upstream stream (an unstarted generator's
    ``aclose`` runs none of its ``finally`` blocks)."""
    config = keys_config(upstream.url, tmp_path)
    config["governance"] = {
        "store": "memory",
        "budgets": [{"scope": f"key:{key_id('app-1')}", "period": "lifetime", "limit_usd": 10}],
    }
    ledger_path = tmp_path / "l.db"
    with Thrifty(config=config, ledger_path=str(ledger_path), api_key="app-1") as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=ANSWER_TOKENS, stream=True
        )
        stream.close()  # never read
        runtime = client._async.runtime
        [usage] = client._loop.run(runtime.admission.budget_usage())
        assert usage.reserved_usd == pytest.approx(0, abs=1e-12)
        runtime.ledger.flush()
    ledger = SqliteLedgerStore(ledger_path)
    rows = ledger.query_requests()
    ledger.close()
    assert len(rows) == 1 and rows[0]["status"] == "cancelled"
    assert usage.spent_usd == pytest.approx(rows[0]["cost"], rel=1e-9)
