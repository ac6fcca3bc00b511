"""The dialects run the chat pipeline: a technique (here the exact cache) applies to
``/v1/responses``, ``/v1/messages`` and ``/v1/completions`` as it does to chat, and the
ledger says which API each request came through (``api``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, upstream_stats

from thrifty.ledger.stores.sqlite import SqliteLedgerStore


def test_the_exact_cache_answers_every_dialect(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(base_config(upstream.url, cache={"enabled": True, "store": "memory"}))
    oai = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    calls = {
        "responses": lambda: oai.responses.with_raw_response.create(
            model="gpt-4o", input="Why is the sky blue?", temperature=0
        ),
        "messages": lambda: claude.messages.with_raw_response.create(
            model="gpt-4o",
            max_tokens=300,
            extra_body={"temperature": 0},  # this SDK has no temperature argument
            messages=[{"role": "user", "content": "Why is the sea blue?"}],
        ),
        "completions": lambda: oai.completions.with_raw_response.create(
            model="gpt-4o", prompt="Why is grass green?", temperature=0
        ),
    }
    for name, call in calls.items():
        before = upstream_stats(upstream)["requests"]
        first, second = call(), call()
        assert upstream_stats(upstream)["requests"] == before + 1, name  # one upstream call
        assert second.headers["x-thrifty-cache"].split(";")[0] == "hit-exact", name
        assert float(second.headers["x-thrifty-cost"]) == 0, name
        text = {
            "responses": lambda r: r.output_text,
            "messages": lambda r: r.content[0].text,
            "completions": lambda r: r.choices[0].text,
        }[name]
        assert text(first.parse()) == text(second.parse()), name
        row = gateway.row(second.headers["x-thrifty-request-id"])
        assert row["savings"]["exact_cache"] > 0, name
        assert (row["endpoint"], row["api"]) == ("chat.completions", name)
    chat = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Why is snow white?"}]
    )
    assert gateway.row(chat.headers["x-thrifty-request-id"])["api"] == "chat.completions"
    oai.close()
    claude.close()
    store = SqliteLedgerStore(gateway.ledger_path)
    try:
        by_api = {group["key"]: group["requests"] for group in store.aggregate("api")}
    finally:
        store.close()
    assert by_api == {"chat.completions": 1, "completions": 2, "messages": 2, "responses": 2}
