"""The test upstream under a real uvicorn on loopback, driven by the official openai SDK."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client as http_client
import json
import math
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from tests.conftest import ServerThread

from thrifty.tokens import count_messages, count_text
from thrifty.upstream import (
    DEFAULT_MODELS,
    FaultSpec,
    UpstreamOptions,
    build_upstream_app,
    messages_key,
    rule_text,
)

# --------------------------------------------------------------------------- fixtures

LONG_SYSTEM = " ".join(f"Rule {i}: answer politely and cite the handbook." for i in range(200))


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    options = UpstreamOptions.for_tests(model_faults={"broken-model": "500"})
    with ServerThread(build_upstream_app(options)) as server:
        yield server


@pytest.fixture
def client(upstream: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


def http(
    url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, dict[str, str], bytes]:
    """POST JSON or raw bytes (GET without body) with urllib; HTTP errors are returned."""
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def chat_body(text: str = "hello", model: str = "gpt-4o", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


# --------------------------------------------------------------------------- rule


def test_rule_is_deterministic_and_model_specific() -> None:
    messages = [{"role": "user", "content": "What is a token?"}]
    lengths = set()
    for model in DEFAULT_MODELS:
        text = rule_text(model, messages)
        assert text == rule_text(model, messages)
        assert text.startswith(f"[{model}] ")
        lengths.add(len(text.split()))
    assert len(lengths) > 1
    for i in range(300):
        words = rule_text("m", [{"role": "user", "content": str(i)}]).split()[1:]
        assert 8 <= len(words) <= 60


def test_fault_spec_parsing() -> None:
    spec = FaultSpec.parse("429;times=2;id=abc;retry_after=3")
    assert (spec.kind, spec.times, spec.key, spec.retry_after) == ("429", 2, "abc", 3.0)
    assert FaultSpec.parse("cut").after == 2
    for bad in ("418", "500;tims=1", "500;times=x"):
        with pytest.raises(ValueError):
            FaultSpec.parse(bad)
    with pytest.raises(ValueError):
        UpstreamOptions(model_faults={"m": "nope"})


# --------------------------------------------------------------------------- chat


def test_chat_usage_is_true_and_answer_stable(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Explain prompt caching."},
    ]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, seed=7)
    again = client.chat.completions.create(model="gpt-4o", messages=messages)
    other = client.chat.completions.create(model="deepseek-chat", messages=messages)
    text = first.choices[0].message.content
    assert text == again.choices[0].message.content == rule_text("gpt-4o", messages)
    assert other.choices[0].message.content != text
    assert first.id.startswith("chatcmpl-") and first.object == "chat.completion"
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.refusal is None and first.system_fingerprint
    usage = first.usage
    assert usage.prompt_tokens == count_messages(messages, "gpt-4o").tokens
    assert usage.completion_tokens == count_text(text, "gpt-4o").tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_max_tokens_stop_and_n(client: openai.OpenAI) -> None:
    short = client.chat.completions.create(model="gpt-4o", messages=chat_body()["messages"],
                                           max_completion_tokens=4)  # fmt: skip
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 4
    full = rule_text("gpt-4o", chat_body()["messages"])
    stop_word = full.split()[3]
    stopped = client.chat.completions.create(
        model="gpt-4o", messages=chat_body()["messages"], stop=[stop_word]
    )
    assert stopped.choices[0].message.content == full[: full.index(stop_word)]
    assert stopped.choices[0].finish_reason == "stop"
    two = client.chat.completions.create(model="gpt-4o", messages=chat_body()["messages"], n=2)
    texts = [c.message.content for c in two.choices]
    assert [c.index for c in two.choices] == [0, 1] and texts[0] != texts[1]
    assert two.usage.completion_tokens == sum(count_text(t, "gpt-4o").tokens for t in texts)


def test_tools_json_mode_and_logprobs(client: openai.OpenAI) -> None:
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {}}},
    ]
    messages: Any = chat_body("weather?")["messages"]
    called = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert choice.message.tool_calls[0].function.arguments == "{}"
    named = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )  # fmt: skip
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    plain = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=tools, tool_choice="none"
    )
    assert plain.choices[0].message.tool_calls is None
    as_json = client.chat.completions.create(
        model="gpt-4o", messages=messages, response_format={"type": "json_object"}
    )
    assert json.loads(as_json.choices[0].message.content)["answer"].startswith("[gpt-4o]")
    scored = client.chat.completions.create(
        model="gpt-4o", messages=messages, logprobs=True, top_logprobs=3
    )
    entries = scored.choices[0].logprobs.content
    assert len(entries) == scored.usage.completion_tokens
    assert "".join(e.token for e in entries) == scored.choices[0].message.content
    assert all(-2 <= e.logprob <= 0 and len(e.top_logprobs) == 3 for e in entries)


def test_reasoning_model_bills_reasoning_tokens(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="o3-mini", messages=chat_body()["messages"])
    visible = count_text(reply.choices[0].message.content, "o3-mini").tokens
    details = reply.usage.completion_tokens_details
    assert details.reasoning_tokens == 2 * visible > 0
    assert reply.usage.completion_tokens == visible + details.reasoning_tokens


def test_prompt_caching_reports_cached_tokens(client: openai.OpenAI) -> None:
    system = {"role": "system", "content": f"{uuid.uuid4()} {LONG_SYSTEM}"}
    first_messages: Any = [system, {"role": "user", "content": "first"}]
    second_messages: Any = [system, {"role": "user", "content": "second"}]
    assert count_messages(first_messages, "gpt-4o").tokens >= 1024
    first = client.chat.completions.create(model="gpt-4o", messages=first_messages)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    second = client.chat.completions.create(model="gpt-4o", messages=second_messages)
    prefix = count_messages([system], "gpt-4o").tokens - 3  # the reply primer counts once
    assert second.usage.prompt_tokens_details.cached_tokens == prefix // 128 * 128
    repeat = client.chat.completions.create(model="gpt-4o", messages=second_messages)
    whole = repeat.usage.prompt_tokens - 3
    assert repeat.usage.prompt_tokens_details.cached_tokens == whole // 128 * 128
    other_model = client.chat.completions.create(model="gpt-4o-mini", messages=second_messages)
    assert other_model.usage.prompt_tokens_details.cached_tokens == 0


# --------------------------------------------------------------------------- streaming


def test_async_stream_with_usage(upstream: ServerThread) -> None:
    async def run() -> tuple[list[Any], str]:
        async with openai.AsyncOpenAI(
            base_url=f"{upstream.url}/v1", api_key="x", max_retries=0
        ) as sdk:
            whole = await sdk.chat.completions.create(**chat_body(model="o3-mini"))
            stream = await sdk.chat.completions.create(
                **chat_body(model="o3-mini"), stream=True, stream_options={"include_usage": True}
            )
            chunks = [chunk async for chunk in stream]
            return chunks, whole.choices[0].message.content or ""

    chunks, expected = asyncio.run(run())
    content = [c.choices[0].delta.content for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(content) > 3 and "".join(filter(None, content)) == expected
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    visible = count_text(expected, "o3-mini").tokens
    assert chunks[-1].usage.completion_tokens == 3 * visible


def test_stream_tool_call_and_sse_framing(upstream: ServerThread, client: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    stream = client.chat.completions.create(
        model="gpt-4o", messages=chat_body()["messages"], tools=tools, stream=True
    )
    with stream:
        chunks = list(stream)
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert calls[0][0].function.name == "lookup" and calls[0][0].id.startswith("call_")
    assert "".join(call[0].function.arguments or "" for call in calls) == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    status, headers, raw = http(f"{upstream.url}/v1/chat/completions", chat_body(stream=True))
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert raw.endswith(b"data: [DONE]\n\n")


# --------------------------------------------------------------------------- embeddings, models


def test_embeddings(client: openai.OpenAI, upstream: ServerThread) -> None:
    reply = client.embeddings.create(model="text-embedding-3-small", input=["cat", "dog"])
    first = reply.data[0].embedding
    assert len(first) == 64 and abs(math.sqrt(sum(x * x for x in first)) - 1) < 1e-5
    assert first != reply.data[1].embedding
    expected = sum(count_text(t, "text-embedding-3-small").tokens for t in ("cat", "dog"))
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == expected
    sized = client.embeddings.create(model="text-embedding-3-small", input="cat", dimensions=16)
    assert len(sized.data[0].embedding) == 16
    url = f"{upstream.url}/v1/embeddings"
    body = {"model": "text-embedding-3-small", "input": "cat"}
    as_floats = orjson.loads(http(url, {**body, "encoding_format": "float"})[2])
    as_base64 = orjson.loads(http(url, {**body, "encoding_format": "base64"})[2])
    packed = base64.b64decode(as_base64["data"][0]["embedding"])
    assert list(struct.unpack("<64f", packed)) == as_floats["data"][0]["embedding"] == first
    tokens = orjson.loads(http(url, {"model": "m", "input": [[1, 2, 3]]})[2])
    assert tokens["usage"]["prompt_tokens"] == 3


def test_models_health_and_stats(client: openai.OpenAI, upstream: ServerThread) -> None:
    assert [m.id for m in client.models.list()] == list(DEFAULT_MODELS)
    assert orjson.loads(http(f"{upstream.url}/health")[2]) == {"status": "ok"}
    http(f"{upstream.url}/_stats/reset", {})
    client.chat.completions.create(**chat_body(model="stats-model"))
    http(f"{upstream.url}/v1/chat/completions", chat_body(model="broken-model"))
    stats = orjson.loads(http(f"{upstream.url}/_stats")[2])
    assert stats["by_endpoint"] == {"chat.completions": 2}
    assert stats["by_model"] == {"stats-model": 1, "broken-model": 1}
    assert stats["faults"] == {"500": 1}


# --------------------------------------------------------------------------- faults


def test_429_with_retry_after(upstream: ServerThread, client: openai.OpenAI) -> None:
    url = f"{upstream.url}/v1/chat/completions"
    status, headers, raw = http(url, chat_body(), {"x-upstream-fault": "429;retry_after=3"})
    assert status == 429 and headers["retry-after"] == "3"
    assert orjson.loads(raw)["error"]["type"] == "rate_limit_error"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**chat_body(), extra_headers={"x-upstream-fault": "429"})


def test_500_once_then_success(upstream: ServerThread) -> None:
    url = f"{upstream.url}/v1/chat/completions"
    fault = {"x-upstream-fault": f"500;times=1;id={uuid.uuid4()}"}
    status, _, raw = http(url, chat_body(), fault)
    assert status == 500 and orjson.loads(raw)["error"]["type"] == "server_error"
    assert http(url, chat_body(), fault)[0] == 200
    assert http(url, chat_body(), {"x-upstream-fault": "503"})[0] == 503
    assert http(url, chat_body(), {"x-upstream-fault": "bogus"})[0] == 400


def test_model_fault_from_options(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**chat_body(model="broken-model"))


def test_reset_drops_the_connection(upstream: ServerThread, client: openai.OpenAI) -> None:
    with pytest.raises(ConnectionResetError):
        http(f"{upstream.url}/v1/chat/completions", chat_body(), {"x-upstream-fault": "reset"})
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(**chat_body(), extra_headers={"x-upstream-fault": "reset"})


def test_cut_stream_ends_without_finish(upstream: ServerThread, client: openai.OpenAI) -> None:
    async def run() -> tuple[list[bytes], BaseException | None]:
        events: list[bytes] = []
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(
                    f"{upstream.url}/v1/chat/completions",
                    json=chat_body(stream=True),
                    headers={"x-upstream-fault": "cut;after=3"},
                ) as response:
                    async for line in response.content:
                        if line.startswith(b"data: "):
                            events.append(line)
            except aiohttp.ClientError as exc:
                return events, exc
        return events, None

    events, error = asyncio.run(run())
    assert len(events) == 3 and not any(b"[DONE]" in e or b'"stop"' in e for e in events)
    assert isinstance(error, aiohttp.ClientPayloadError)
    with pytest.raises(openai.APIConnectionError):
        stream = client.chat.completions.create(
            **chat_body(stream=True), extra_headers={"x-upstream-fault": "cut;after=3"}
        )
        with stream:
            list(stream)
    with pytest.raises(http_client.IncompleteRead):
        http(f"{upstream.url}/v1/chat/completions", chat_body(), {"x-upstream-fault": "cut"})


def test_timeout_and_latency(upstream: ServerThread) -> None:
    url = f"{upstream.url}/v1/chat/completions"
    with (
        openai.OpenAI(
            base_url=f"{upstream.url}/v1", api_key="x", max_retries=0, timeout=0.2
        ) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(**chat_body(), extra_headers={"x-upstream-fault": "timeout"})
    started = time.monotonic()
    assert http(url, chat_body(), {"x-upstream-fault": "timeout"})[0] == 200
    assert 0.45 < time.monotonic() - started < 3  # for_tests(): timeout_s=0.5
    started = time.monotonic()
    assert http(url, chat_body(), {"x-upstream-latency-ms": "150"})[0] == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    _, _, raw = http(url, chat_body(stream=True), {"x-upstream-chunk-delay-ms": "10"})
    assert time.monotonic() - started >= 0.01 * (raw.count(b"data: ") - 1)
    assert http(url, chat_body(), {"x-upstream-latency-ms": "soon"})[0] == 400
    assert http(url, chat_body(response_format="json"))[0] == 400


# --------------------------------------------------------------------------- options


def test_api_key_models_and_bad_requests() -> None:
    options = UpstreamOptions(api_key="sk-test", models=["gpt-4o"])
    with ServerThread(build_upstream_app(options)) as server:
        url = f"{server.url}/v1"
        with (
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as sdk,
            pytest.raises(openai.AuthenticationError),
        ):
            sdk.chat.completions.create(**chat_body())
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as sdk:
            assert sdk.chat.completions.create(**chat_body()).choices
            with pytest.raises(openai.NotFoundError) as info:
                sdk.chat.completions.create(**chat_body(model="gpt-5"))
            assert info.value.code == "model_not_found"
            assert [m.id for m in sdk.models.list()] == ["gpt-4o"]
        auth = {"authorization": "Bearer sk-test"}
        assert http(f"{url}/chat/completions", b"{nope", auth)[0] == 400
        assert http(f"{url}/chat/completions", {"model": "gpt-4o"}, auth)[0] == 400


def _write_dataset(path: Path) -> None:
    rows = [
        {"id": "a", "messages": [{"role": "user", "content": "capital of France?"}],
         "params": {}, "tags": {},
         "answers": {"gpt-4o": {"text": "Paris.", "quality": 1.0},
                     "gpt-4o-mini": {"quality": 0.8, "output_tokens": 12}}},
        {"id": "b", "messages": [{"role": "user", "content": "2+2?"}], "params": {}, "tags": {},
         "answers": {"gpt-4o-mini": {"text": "4", "quality": 1.0}}},
    ]  # fmt: skip
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in rows)))


def test_dataset_answers_and_no_recorded_answer(tmp_path: Path) -> None:
    dataset = tmp_path / "answers.jsonl.gz"
    _write_dataset(dataset)
    france: Any = [{"role": "user", "content": "capital of France?", "name": "ignored"}]
    assert messages_key(france) == messages_key([{"content": "capital of France?", "role": "user"}])
    app = build_upstream_app(UpstreamOptions(dataset=dataset))
    with (
        ServerThread(app) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as sdk,
    ):
        reply = sdk.chat.completions.create(model="gpt-4o", messages=france)
        assert reply.choices[0].message.content == "Paris."
        assert reply.usage.completion_tokens == count_text("Paris.", "gpt-4o").tokens
        sized = sdk.chat.completions.create(model="gpt-4o-mini", messages=france)
        assert sized.usage.completion_tokens == 12
        for model, text in (("deepseek-chat", "capital of France?"), ("gpt-4o", "unknown")):
            with pytest.raises(openai.NotFoundError) as info:
                sdk.chat.completions.create(**chat_body(text, model=model))
            assert info.value.code == "no_recorded_answer"
        assert [m.id for m in sdk.models.list()] == ["gpt-4o", "gpt-4o-mini"]
    options = UpstreamOptions(dataset=dataset, fallback_rule=True)
    with ServerThread(build_upstream_app(options)) as server:
        status, _, raw = http(f"{server.url}/v1/chat/completions", chat_body("unknown"))
        assert status == 200
        assert orjson.loads(raw)["choices"][0]["message"]["content"].startswith("[gpt-4o]")


@pytest.mark.slow
def test_cli_runs_the_server(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import argparse, sys; from thrifty.cli import upstream; p = argparse.ArgumentParser();"
        " s = p.add_subparsers(); upstream.add_parser(s); a = p.parse_args(sys.argv[1:]);"
        " sys.exit(a.func(a))"
    )
    argv = [sys.executable, "-c", code, "upstream", "--port", str(port), "--models", "a,b",
            "--fault", "b=503"]  # fmt: skip
    with subprocess.Popen(argv, stderr=subprocess.PIPE) as process:
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    _, _, raw = http(f"http://127.0.0.1:{port}/v1/models")
                    break
                except urllib.error.URLError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.05)
            assert [m["id"] for m in orjson.loads(raw)["data"]] == ["a", "b"]
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            assert http(url, chat_body(model="b"))[0] == 503
        finally:
            process.terminate()
            process.wait(10)
