"""Two real gateway replicas against one Redis and one PostgreSQL.

Each replica is its own app (own runtime, stores, connection pools) served by uvicorn on
its own port; they share nothing but the two servers, like replicas behind a balancer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import openai
import pytest
from tests.cache.test_cache_gateway import ask, sdk, upstream_calls
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

from thrifty.runtime import key_id


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def shared_config(upstream: str, redis_url: str, prefix: str, dsn: str, **redis: Any) -> dict:
    config = base_config(upstream)
    config["auth"] = {"keys": [GATEWAY_KEY, "other-tenant-key"]}
    config["cache"] = {
        "enabled": True, "store": "redis", "semantic": {"enabled": True, "threshold": 0.8},
    }  # fmt: skip
    config["redis"] = {"url": redis_url, "prefix": prefix, **redis}
    config["ledger"] = {"store": "postgres", "dsn": dsn, "flush_interval_ms": 20}
    return config


def ledger_ids(dsn: str, *replicas: Gateway) -> list[str]:
    from thrifty.ledger.stores.postgres import PostgresLedgerStore

    for replica in replicas:
        replica.flush()
    store = PostgresLedgerStore(dsn)
    try:
        return [row["request_id"] for row in store.query_requests()]
    finally:
        store.close()


def exact_store(replica: Gateway) -> Any:
    from thrifty.cache.exact import ExactCacheStage

    runtime = replica.server.server.config.app.state.runtime  # type: ignore[attr-defined]
    [stage] = [s for s in runtime.pipeline._stages if isinstance(s, ExactCacheStage)]
    return stage._store


@contextmanager
def captured(logger: str) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def test_two_replicas_share_cache_and_ledger(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    redis_server: Any,
    redis_prefix: str,
    postgres_dsn: str,
) -> None:
    config = shared_config(upstream.url, redis_server.url, redis_prefix, postgres_dsn)
    one, two = start_gateway(config), start_gateway(config)
    ids: list[str] = []

    def sent(response: Any) -> Any:
        ids.append(response.headers["x-thrifty-request-id"])
        return response

    with sdk(one) as c1, sdk(two) as c2, sdk(two, "other-tenant-key") as other:
        assert sent(ask(c1)).headers["x-thrifty-cache"].split(";")[0] == "miss"
        before = upstream_calls(upstream)
        hit = sent(ask(c2))
        assert (
            hit.headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
        )  # written via one, hit via two
        assert upstream_calls(upstream) == before
        assert (
            sent(ask(other)).headers["x-thrifty-cache"].split(";")[0] == "miss"
        )  # tenants stay apart

        sent(ask(c1, user("What is the capital city of France?")))
        paraphrase = sent(ask(c2, user("Tell me the capital city of France.")))
        assert paraphrase.headers["x-thrifty-cache"].split(";")[0] == "hit-semantic"

        clients = [c1, c2]
        with ThreadPoolExecutor(8) as pool:  # concurrent traffic split over both replicas
            responses = list(
                pool.map(lambda i: ask(clients[i % 2], user(f"Say hi to user {i}.")), range(40))
            )
        for response in responses:
            sent(response)

        # invalidation from anywhere (here: a third process's view) reaches every replica
        from thrifty.cache.redis_semantic import RedisSemanticIndex
        from thrifty.cache.stores.redis import RedisCacheStore
        from thrifty.stores.config import RedisConfig
        from thrifty.stores.redis import RedisLink

        redis_config = RedisConfig(url=redis_server.url, prefix=redis_prefix)
        operator = RedisCacheStore(RedisLink(redis_config), max_entries=100)
        assert operator.clear(key_id(GATEWAY_KEY)) >= 1
        operator.close()
        index = RedisSemanticIndex(RedisLink(redis_config), max_entries=100)
        index.clear(key_id(GATEWAY_KEY))
        index.close()
        assert sent(ask(c2)).headers["x-thrifty-cache"].split(";")[0] == "miss"
        again = sent(ask(c1, user("Tell me the capital city of France.")))
        assert again.headers["x-thrifty-cache"].split(";")[0] == "miss"
        assert (
            sent(ask(other)).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
        )  # not its scope

    stored = ledger_ids(postgres_dsn, one, two)
    assert len(ids) == 48
    assert sorted(stored) == sorted(ids)  # exactly one row per request, from both replicas


@pytest.mark.slow
def test_redis_restart_mid_run_keeps_serving(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_redis: Any,
    redis_prefix: str,
    postgres_dsn: str,
) -> None:
    config = shared_config(
        upstream.url, own_redis.url, redis_prefix, postgres_dsn, retry_after_s=0.2, timeout_s=0.5
    )
    one, two = start_gateway(config), start_gateway(config)
    statuses: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def traffic(client: openai.OpenAI, name: str) -> None:
        i = 0
        while not stop.is_set():
            response = ask(client, user(f"Background question {name}-{i}."))
            with lock:
                statuses.append(response.status_code)
                ids.append(response.headers["x-thrifty-request-id"])
            i += 1

    with sdk(one) as c1, sdk(two) as c2, captured("thrifty.redis") as logs:
        assert ask(c1).headers["x-thrifty-cache"].split(";")[0] == "miss"
        assert ask(c2).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
        workers = [threading.Thread(target=traffic, args=(c, n)) for c, n in ((c1, "a"), (c2, "b"))]
        for worker in workers:
            worker.start()
        own_redis.stop()
        during = [ask(c) for c in (c1, c2, c1, c2)]
        own_redis.start()  # back on the same port, empty (no persistence)
        stop.set()
        for worker in workers:
            worker.join()
        assert all(r.status_code == 200 for r in during)
        # the exact cache degraded to misses; the semantic cache may still answer from the
        # entries this replica had already indexed (they are still valid answers)
        assert all(
            r.headers["x-thrifty-cache"].split(";")[0] in ("miss", "hit-semantic") for r in during
        )
        assert exact_store(one).unavailable >= 1 and exact_store(two).unavailable >= 1
        messages = [r.getMessage() for r in logs]
        assert "redis unavailable; falling back" in messages
        # recovery: after the breaker's retry interval the shared cache works again
        for i in range(200):  # each replica finds Redis again on its first try after it
            ask(c1, user(f"Probe {i}."))
            ask(c2, user(f"Probe {i}."))
            if not (exact_store(one).breaker.down or exact_store(two).breaker.down):
                break
            stop.wait(0.05)
        fresh = user("A question asked after the restart.")
        assert ask(c1, fresh).headers["x-thrifty-cache"].split(";")[0] == "miss"
        assert ask(c2, fresh).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
        assert "redis reachable again" in [r.getMessage() for r in logs]
    assert statuses and set(statuses) == {200}
    stored = set(ledger_ids(postgres_dsn, one, two))
    assert set(ids) <= stored and {r.headers["x-thrifty-request-id"] for r in during} <= stored


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_config_names_bad_store_keys(store: str) -> None:
    from thrifty.config import parse_config
    from thrifty.errors import ConfigError

    config = base_config("http://127.0.0.1:1")
    config["ledger"] = {"store": store, "dsn": None} if store == "postgres" else {"store": "x"}
    with pytest.raises(ConfigError) as info:
        parse_config(config)
    assert "ledger" in str(info.value)
    config = base_config("http://127.0.0.1:1", redis={"url": "http://nope"})
    with pytest.raises(ConfigError, match="redis"):
        parse_config(config)
    with pytest.raises(ConfigError, match="budgets_on_error"):
        parse_config(base_config("http://127.0.0.1:1", redis={"budgets_on_error": "maybe"}))


@pytest.mark.slow
def test_a_hung_redis_does_not_stall_the_event_loop(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_redis: Any,
) -> None:
    """A cache lookup waiting on Redis waits in a worker thread, not on the event loop:
    while one request is stuck on a frozen Redis, the gateway still answers others."""
    import signal

    from tests.conftest import http

    config = base_config(upstream.url)
    config["cache"] = {"enabled": True, "store": "redis"}
    config["redis"] = {"url": own_redis.url, "timeout_s": 20}
    gateway = start_gateway(config)
    with sdk(gateway) as client:
        ask(client, user("warm the connection pool"))  # a pooled connection exists
        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            stuck = threading.Thread(target=ask, args=(client, user("waits on Redis")))
            stuck.start()
            status, _, _ = http("GET", f"{gateway.url}/health")
            assert status == 200
            assert stuck.is_alive(), "the health check waited for the frozen Redis"
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        stuck.join(timeout=30)
        assert not stuck.is_alive()


def budget_config(upstream: str, redis_url: str, prefix: str, limit: float, **redis: Any) -> dict:
    """Budgets and rate-limit counters in Redis; a month budget on the gateway key."""
    config = base_config(upstream)
    config["redis"] = {"url": redis_url, "prefix": prefix, **redis}
    config["governance"] = {
        "store": "redis",
        "budgets": [{"scope": f"key:{key_id(GATEWAY_KEY)}", "limit_usd": limit}],
    }
    return config


def test_two_replicas_never_overspend_one_redis_budget(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    redis_server: Any,
    redis_prefix: str,
) -> None:
    """200 concurrent requests split across two replicas against a budget that admits 50."""
    from tests.governance.test_budgets_gateway import ANSWER_TOKENS, one_try, request_cost
    from tests.governance.test_keys import MESSAGES

    cost = request_cost()
    limit = 50.5 * cost
    # a generous command timeout: 200 requests at once on a loaded 2-core machine can keep
    # Redis waiting longer than the 0.25 s default, which would (rightly) fail closed
    config = budget_config(upstream.url, redis_server.url, redis_prefix, limit, timeout_s=5)
    one_try(config)  # the reservation is the answer alone: exactly 50 fit
    replicas = [start_gateway(config), start_gateway(config)]

    async def one(client: openai.AsyncOpenAI) -> str:
        try:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=ANSWER_TOKENS
            )
        except openai.RateLimitError as exc:
            assert exc.code == "budget_exceeded", exc
            return "refused"
        return "ok"

    async def burst() -> list[str]:
        clients = [
            openai.AsyncOpenAI(base_url=r.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
            for r in replicas
        ]
        try:
            return await asyncio.gather(*(one(clients[i % 2]) for i in range(200)))
        finally:
            for client in clients:
                await client.close()

    outcomes = asyncio.run(burst())
    assert outcomes.count("ok") == 50 and outcomes.count("refused") == 150
    rows = [row for replica in replicas for row in replica.requests() if row["status"] == "ok"]
    spent = sum(row["cost"] for row in rows)
    assert len(rows) == 50 and spent <= limit


@pytest.mark.slow
def test_budgets_fail_closed_when_redis_is_down(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_redis: Any,
    redis_prefix: str,
) -> None:
    """``redis.budgets_on_error: closed`` refuses with a 503 naming the store, not a 500."""
    config = budget_config(
        upstream.url, own_redis.url, redis_prefix, 1.0, timeout_s=0.3, retry_after_s=0.1
    )
    gateway = start_gateway(config)
    with sdk(gateway) as client:
        assert ask(client).status_code == 200
        own_redis.stop()
        with pytest.raises(openai.InternalServerError) as info:
            ask(client, user("Asked while Redis is down."))
        assert info.value.status_code == 503
        assert info.value.code == "store_unavailable"
        own_redis.start()
        for _ in range(100):  # the breaker lets Redis back in after retry_after_s
            try:
                assert ask(client, user("Asked after the restart.")).status_code == 200
                break
            except openai.InternalServerError:
                threading.Event().wait(0.05)
        else:
            raise AssertionError("budgets never recovered after Redis came back")


def test_one_unstorable_record_does_not_divert_its_batch(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], postgres_dsn: str
) -> None:
    """PostgreSQL cannot store NUL: a tag with one is cleaned, and a record the store still
    refuses goes to the fallback file alone, not with every record of its batch."""
    config = base_config(upstream.url)
    config["ledger"] = {"store": "postgres", "dsn": postgres_dsn, "flush_interval_ms": 60_000}
    gateway = start_gateway(config)
    ids = []
    for metadata in ({"feature": "a\x00b"}, {"feature": "plain"}):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                "metadata": metadata}  # fmt: skip
        status, headers, _ = http("POST", f"{gateway.base_url}/chat/completions", body,
                                  {"authorization": f"Bearer {GATEWAY_KEY}"})  # fmt: skip
        assert status == 200
        ids.append(headers["x-thrifty-request-id"])
    stored = ledger_ids(postgres_dsn, gateway)  # one flush: both records in one batch
    assert set(ids) <= set(stored)
    from thrifty.ledger.stores.postgres import PostgresLedgerStore

    store = PostgresLedgerStore(postgres_dsn)
    try:
        [row] = [r for r in store.query_requests() if r["request_id"] == ids[0]]
    finally:
        store.close()
    assert row["tags"] == {"feature": "ab"}
