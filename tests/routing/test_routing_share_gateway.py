"""``routing.share`` through the real gateway: the hashed share is decided by the
strategy, the rest goes to the reference model, and the ledger says which."""

from __future__ import annotations

from collections.abc import Callable

import openai
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.routing.test_routing_cascade_gateway import routed_config

from thrifty.routing.policy import share_hash
from thrifty.routing.text import prompt_text

SHARE = 0.5


def test_requests_outside_the_share_go_to_the_reference(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    chain = ["gpt-4o-mini", "gpt-4o"]
    gateway = start_gateway(routed_config(upstream.url, routing={
        "enabled": True, "strategy": "rules", "candidates": chain, "share": SHARE,
        "tasks": {t: chain for t in ("chat", "code", "math", "creative", "extraction")},
    }))  # fmt: skip
    prompts = [[{"role": "user", "content": f"Tell me one fact about the number {n}."}]
               for n in range(12)]  # fmt: skip
    inside = [share_hash(prompt_text(messages)) < SHARE for messages in prompts]
    assert any(inside) and not all(inside)  # both ways are exercised
    client = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    with client:
        for messages, routed in zip(prompts, inside, strict=True):
            reply = client.chat.completions.with_raw_response.create(
                model="auto", messages=messages
            )
            assert reply.headers["x-thrifty-model"] == ("gpt-4o-mini" if routed else "gpt-4o")
            route = gateway.row(reply.headers["x-thrifty-request-id"])["techniques"]["route"]
            assert ("outside the routed share" in route["reason"]) is not routed
