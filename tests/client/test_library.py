"""``Thrifty`` / ``AsyncThrifty``: the same pipeline in-process, the openai client's shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from tests.conftest import ServerThread, base_config

from thrifty import AsyncThrifty, Thrifty
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

MESSAGES = [{"role": "user", "content": "What is a haiku?"}]


def ledger_rows(path: Path) -> list[dict]:
    store = SqliteLedgerStore(path)
    try:
        return store.query_requests()
    finally:
        store.close()


def test_sync_client_same_objects_as_openai(upstream: ServerThread, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        expected = direct.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with Thrifty(
        config=base_config(upstream.url), ledger_path=str(ledger), api_key="app-1"
    ) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-thrifty-tags": "team=docs"}
        )
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        )
        vectors = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert isinstance(reply, ChatCompletion)
    assert reply.choices[0].message.content == expected.choices[0].message.content
    assert reply.usage == expected.usage
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        expected.choices[0].message.content
    )
    assert len(vectors.data[0].embedding) > 0
    rows = ledger_rows(ledger)
    assert len(rows) == 3, "close() flushed every row"
    chat_row = next(r for r in rows if r["endpoint"] == "chat.completions" and not r["stream"])
    assert chat_row["tags"] == {"team": "docs"} and chat_row["key_id"].startswith("key-")
    assert chat_row["cost"] > 0


def test_sync_client_errors_are_openai_exceptions(upstream: ServerThread, tmp_path: Path) -> None:
    with Thrifty(config=base_config(upstream.url), ledger_path=str(tmp_path / "l.db")) as client:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=[])
        assert info.value.param == "messages"


def test_async_client(upstream: ServerThread, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"

    async def main() -> tuple[list[ChatCompletion], list[ChatCompletionChunk]]:
        async with AsyncThrifty(
            config=base_config(upstream.url), ledger_path=str(ledger)
        ) as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}]
                    )
                    for i in range(5)
                )
            )
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in stream]
        return list(replies), chunks

    replies, chunks = asyncio.run(main())
    assert all(isinstance(r, ChatCompletion) for r in replies)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len(ledger_rows(ledger)) == 6


def test_batch_refuses_a_model_the_key_may_not_use(upstream: ServerThread, tmp_path: Path) -> None:
    """``batch()`` checks its list once, before any call, with the pipeline's own worst case."""
    from thrifty.governance.keys.spec import KeySpec
    from thrifty.governance.keys.sqlite import SqliteKeyStore

    store = SqliteKeyStore(tmp_path / "keys.db")
    _, secret = store.create(KeySpec(owner="docs", models=["gpt-4o-mini"]))
    store.close()
    config = base_config(upstream.url)
    config["governance"] = {"keys_path": str(tmp_path / "keys.db")}
    with Thrifty(config=config, ledger_path=str(tmp_path / "l.db"), api_key=secret) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.batch(["Name a colour.", "Name a fruit."], model="gpt-4o")
        answers = client.batch(["Name a colour.", "Name a fruit."], model="gpt-4o-mini")
    assert "gpt-4o" in str(denied.value) and len(answers) == 2
    assert {row["model"] for row in ledger_rows(tmp_path / "l.db")} == {"gpt-4o-mini"}
