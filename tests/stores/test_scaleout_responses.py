"""``previous_response_id`` across two real gateway replicas sharing Redis or PostgreSQL:
a conversation alternates between them and continues every time; tenants stay apart; a
store that cannot be reached is a 503 on the follow-up, never a false 404."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

OTHER_KEY = "other-tenant-key"


def sdk(gateway: Gateway, key: str = GATEWAY_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def redis_config(upstream: str, redis_url: str, prefix: str) -> dict[str, Any]:
    return base_config(
        upstream, auth={"keys": [GATEWAY_KEY, OTHER_KEY]},
        cache={"enabled": True, "store": "redis"}, redis={"url": redis_url, "prefix": prefix},
    )  # fmt: skip


def postgres_config(upstream: str, dsn: str) -> dict[str, Any]:
    return base_config(
        upstream, auth={"keys": [GATEWAY_KEY, OTHER_KEY]},
        ledger={"store": "postgres", "dsn": dsn, "flush_interval_ms": 20},
    )  # fmt: skip


def converse_across(one: Gateway, two: Gateway, upstream: ServerThread, turns: int) -> str:
    """``turns`` follow-ups alternating between the replicas; the last answer must be the
    answer to the whole conversation. Returns the last response id."""
    conversation: list[dict[str, Any]] = []
    previous = None
    with sdk(one) as c1, sdk(two) as c2:
        for turn in range(turns):
            text = f"Turn {turn}: go on."
            response = (c1, c2)[turn % 2].responses.create(
                model="gpt-4o-mini", input=text, previous_response_id=previous
            )
            assert response.previous_response_id == previous
            conversation += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": response.output_text},
            ]
            previous = response.id
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        expected = direct.chat.completions.create(
            model="gpt-4o-mini", messages=conversation[:-1]
        )
    assert conversation[-1]["content"] == expected.choices[0].message.content
    assert previous is not None
    return previous


def not_found_on_both(one: Gateway, two: Gateway, response_id: str) -> None:
    for replica in (one, two):
        with sdk(replica, OTHER_KEY) as theirs, pytest.raises(openai.NotFoundError) as caught:
            theirs.responses.create(
                model="gpt-4o-mini", input="Who?", previous_response_id=response_id
            )
        assert caught.value.body["code"] == "previous_response_not_found"


def test_replicas_share_responses_through_redis(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    redis_server: Any,
    redis_prefix: str,
) -> None:
    import redis

    config = redis_config(upstream.url, redis_server.url, redis_prefix)
    one, two = start_gateway(config), start_gateway(config)
    last = converse_across(one, two, upstream, turns=10)
    not_found_on_both(one, two, last)
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys(f"{redis_prefix}responses:*")
    assert len(keys) == 10 and all(0 < client.pttl(k) <= 3_600_000 for k in keys)
    client.close()


def test_replicas_share_responses_through_postgres(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    postgres_dsn: str,
) -> None:
    import psycopg

    config = postgres_config(upstream.url, postgres_dsn)
    one, two = start_gateway(config), start_gateway(config)
    last = converse_across(one, two, upstream, turns=10)
    not_found_on_both(one, two, last)
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM stored_responses").fetchone() == (10,)


@pytest.mark.slow
def test_redis_down_follow_up_is_503_and_answers_are_still_served(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_redis: Any,
    redis_prefix: str,
) -> None:
    config = redis_config(upstream.url, own_redis.url, redis_prefix)
    config["redis"] |= {"retry_after_s": 0.2, "timeout_s": 0.5}
    one, two = start_gateway(config), start_gateway(config)
    with sdk(one) as c1, sdk(two) as c2:
        first = c1.responses.create(model="gpt-4o-mini", input="Remember me.")
        own_redis.stop()
        with pytest.raises(openai.APIStatusError) as caught:
            c2.responses.create(model="gpt-4o-mini", input="Who?", previous_response_id=first.id)
        assert caught.value.status_code == 503
        assert caught.value.body["code"] == "store_unavailable"
        unstored = c1.responses.create(model="gpt-4o-mini", input="Lost on the way.")
        assert unstored.status == "completed" and unstored.output_text
        own_redis.start()  # empty: what was stored before is gone, as Redis was
        for _ in range(100):  # until both breakers let their replica try Redis again
            after = c2.responses.create(model="gpt-4o-mini", input="Back.")
            try:
                follow = c1.responses.create(
                    model="gpt-4o-mini", input="Still there?", previous_response_id=after.id
                )
                break
            except openai.APIStatusError as exc:  # 404: two's breaker skipped the write
                assert exc.status_code in (404, 503)
                time.sleep(0.05)
        else:
            pytest.fail("the replicas never used Redis again")
    assert follow.status == "completed"
