"""Compression through the real gateway (openai SDK), against the real test upstream.

The upstream is wrapped in a recorder that keeps each chat request body it receives, so
the tests can read exactly what was sent upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import orjson
import pytest
from tests.compression.test_compression import CODE, THINGS, document
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

from thrifty.upstream.app import UpstreamOptions, build_upstream_app

QUESTION = "When was the harbour of Kaunas opened? Answer with the year."


class Recorder:
    """ASGI wrapper: the upstream app, plus the JSON body of every chat request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(orjson.loads(b"".join(chunks)))
            return message

        await self.app(scope, recording_receive, send)

    def calls(self, model: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b["model"] == model]


@pytest.fixture
def recorded() -> Iterator[tuple[ServerThread, Recorder]]:
    recorder = Recorder(build_upstream_app(UpstreamOptions()))
    server = ServerThread(recorder).start()
    yield server, recorder
    server.stop()


def compression_config(upstream: ServerThread, **section: Any) -> dict[str, Any]:
    config = base_config(upstream.url)
    config["models"] = {
        **config["models"],
        # explicit prices keep the expected savings exact; cached reads at 10 % of input
        "big": {"provider": "up", "model": "gpt-4o",
                "price": {"input": 10.0, "output": 20.0, "cached_input": 1.0}},
        "small": {"provider": "up", "model": "gpt-4o-mini",
                  "price": {"input": 1.0, "output": 2.0}},
    }  # fmt: skip
    config["compression"] = {"enabled": True, "min_tokens": 300, **section}
    return config


def conversation(question: str = QUESTION) -> list[dict[str, Any]]:
    system = ("You answer questions about European landmarks.\n\n" + document()
              + f"\n\n{CODE}\n\nAlways <keep>cite the landmark's city by name</keep>.")  # fmt: skip
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "Here are more notes:\n\n" + document(THINGS[4:])},
        {"role": "assistant", "content": "Thanks, noted."},
        {"role": "user", "content": question},
    ]


def ask(gateway: Gateway, messages: list[dict[str, Any]], model: str = "big",
        headers: dict[str, str] | None = None) -> Any:  # fmt: skip
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as c:
        return c.chat.completions.with_raw_response.create(
            model=model, messages=messages, temperature=0, extra_headers=headers or {}
        )


def test_code_keep_and_final_question_survive(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream))
    messages = conversation()
    reply = ask(gateway, messages)
    sent = recorder.bodies[-1]["messages"]
    assert sent[-1] == messages[-1], "the final question is untouched"
    assert sent[2] == messages[2], "assistant turns are not in the default roles"
    assert CODE in sent[0]["content"], "code block byte for byte"
    assert "cite the landmark's city by name" in sent[0]["content"]
    assert "<keep>" not in sent[0]["content"]
    assert "The harbour of Kaunas was opened in" in sent[0]["content"] + sent[1]["content"]
    context = len(sent[0]["content"]) + len(sent[1]["content"])
    assert context < (len(messages[0]["content"]) + len(messages[1]["content"])) / 2
    row = gateway.row(reply.headers["x-thrifty-request-id"])
    info = row["techniques"]["compress"]
    assert info["result"] == "compressed" and info["after"] < info["before"] / 2
    assert reply.headers["x-thrifty-compression"] == f"{info['before']}->{info['after']}"
    removed = info["before"] - info["after"]
    assert row["savings"]["compression"] == pytest.approx(removed * 10e-6)
    assert row["baseline_cost"] - row["cost"] == pytest.approx(removed * 10e-6)
    assert row["input_tokens"] < 0.6 * (row["input_tokens"] + removed)


def test_opt_out_header_sends_the_request_as_is(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream))
    messages = conversation()
    reply = ask(gateway, messages, headers={"x-thrifty-compress": "off"})
    assert recorder.bodies[-1]["messages"] == messages
    row = gateway.row(reply.headers["x-thrifty-request-id"])
    assert "compression" not in row["savings"] and "compress" not in row["techniques"]
    assert row["baseline_cost"] == pytest.approx(row["cost"])


def test_short_requests_pass_untouched(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream, min_tokens=100_000))
    messages = conversation()
    ask(gateway, messages)
    assert recorder.bodies[-1]["messages"] == messages


def test_summary_is_made_once_and_billed_to_compression(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    config = compression_config(
        upstream, abstractive={"enabled": True, "model": "small", "min_tokens": 300}
    )
    gateway = start_gateway(config)
    long_system = "You answer questions about European landmarks.\n\n" + document()
    first_messages = [{"role": "system", "content": long_system},
                      {"role": "user", "content": QUESTION}]  # fmt: skip
    first = ask(gateway, first_messages)
    second = ask(gateway, [first_messages[0], {"role": "user", "content": "Which is oldest?"}])
    assert len(recorder.calls("gpt-4o-mini")) == 1, "the second request reused the summary"
    summary = recorder.calls("gpt-4o-mini")[0]["messages"][-1]["content"]
    assert summary.strip() == long_system.strip() or "Kaunas" in summary
    sent = [b["messages"][0]["content"] for b in recorder.calls("gpt-4o")]
    assert sent[0] == sent[1] != long_system, "both requests got the same (stable) summary"

    row1 = gateway.row(first.headers["x-thrifty-request-id"])
    row2 = gateway.row(second.headers["x-thrifty-request-id"])
    attempts = gateway.attempts(row1["request_id"])
    summaries = [a for a in attempts if a["purpose"] == "summarise"]
    assert len(summaries) == 1 and summaries[0]["model"] == "small"
    made = summaries[0]
    summary_cost = made["input_tokens"] * 1e-6 + made["output_tokens"] * 2e-6
    assert summaries[0]["cost"] == pytest.approx(summary_cost)
    # the first sight of the system prompt saves its tokens at the input price; the repeat
    # at the cached-input price (sent as is, the provider would have served it from cache)
    for row, price, overhead in ((row1, 10e-6, summary_cost), (row2, 1e-6, 0.0)):
        info = row["techniques"]["compress"]
        assert info["methods"] == {"abstractive": 1}
        removed = info["before"] - info["after"]
        assert row["savings"]["compression"] == pytest.approx(removed * price - overhead)
    assert row1["techniques"]["compress"]["summaries"] == ["new"]
    assert row2["techniques"]["compress"]["summaries"] == ["reused"]
    assert not [a for a in gateway.attempts(row2["request_id"]) if a["purpose"] == "summarise"]


def test_summary_that_loses_code_is_rejected_once(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    config = compression_config(
        upstream, abstractive={"enabled": True, "model": "small", "min_tokens": 300}
    )
    gateway = start_gateway(config)
    messages = conversation()  # the system prompt holds a code block the rule model drops
    first = ask(gateway, messages)
    ask(gateway, conversation("Which library opened last?"))
    assert len(recorder.calls("gpt-4o-mini")) == 1
    assert CODE in recorder.calls("gpt-4o")[0]["messages"][0]["content"]
    row = gateway.row(first.headers["x-thrifty-request-id"])
    assert row["techniques"]["compress"]["summaries"] == ["rejected"]
    assert row["techniques"]["compress"]["methods"] == {"extractive": 2}


def test_repeated_prefix_kept_when_the_provider_cache_is_cheaper(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream, min_tokens=300))
    long_system = ("You answer questions about European landmarks.\n\n" + document()
                   + "\n\n" + document(THINGS[4:]))  # fmt: skip
    for question in (QUESTION, "Which museum is the oldest?", "Which bridge is newest?"):
        ask(gateway, [{"role": "system", "content": long_system},
                      {"role": "user", "content": question}])  # fmt: skip
        ask(gateway, [{"role": "system", "content": long_system},
                      {"role": "user", "content": question}], model="gpt-4o-mini")  # fmt: skip
    big = [b["messages"][0]["content"] for b in recorder.calls("gpt-4o")]
    mini = [b["messages"][0]["content"] for b in recorder.calls("gpt-4o-mini")]
    # big: cached reads at 10 % of input, so 3x compression of a repeated prefix loses money
    assert len(big[0]) < len(long_system) / 2, "first sight: no cache yet, compressed"
    assert big[1] == big[2] and len(big[1]) > 0.9 * len(long_system), "then kept stable"
    # gpt-4o-mini: cached reads at 50 %; 3x compression beats the cache
    assert all(len(m) < len(long_system) / 2 for m in mini)


def test_streaming_request_is_compressed(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream))
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as c:
        stream = c.chat.completions.create(model="big", messages=conversation(), stream=True,
                                           stream_options={"include_usage": True})  # fmt: skip
        chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
    assert len(recorder.bodies[-1]["messages"][1]["content"]) < len(conversation()[1]["content"])
    rows = gateway.requests()
    assert rows[0]["savings"]["compression"] > 0


def test_bad_messages_still_get_an_openai_error(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, _ = recorded
    gateway = start_gateway(compression_config(upstream))
    status, _, body = http("POST", f"{gateway.base_url}/chat/completions",
                           {"model": "big", "messages": "not a list"},
                           {"authorization": f"Bearer {GATEWAY_KEY}"})  # fmt: skip
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


def test_concurrent_first_requests_pay_for_one_summary(
    start_gateway: Callable[..., Gateway],
) -> None:
    # a slow upstream makes the requests overlap; whatever the timing, one summary call
    recorder = Recorder(build_upstream_app(UpstreamOptions(latency_ms=300)))
    with ServerThread(recorder) as upstream:
        config = compression_config(
            upstream, abstractive={"enabled": True, "model": "small", "min_tokens": 300}
        )
        gateway = start_gateway(config)
        system = {"role": "system", "content": "Landmarks.\n\n" + document(THINGS[4:])}
        questions = [f"Which {thing} is oldest?" for thing in THINGS[4:]]
        with ThreadPoolExecutor(len(questions)) as pool:
            replies = list(
                pool.map(lambda q: ask(gateway, [system, {"role": "user", "content": q}]),
                         questions)
            )  # fmt: skip
        assert len(recorder.calls("gpt-4o-mini")) == 1
        assert len({b["messages"][0]["content"] for b in recorder.calls("gpt-4o")}) == 1
        rows = [gateway.row(r.headers["x-thrifty-request-id"]) for r in replies]
        assert sorted(r["techniques"]["compress"]["summaries"][0] for r in rows) == [
            "new", "reused", "reused", "reused"
        ]  # fmt: skip


def test_multipart_content_is_left_alone(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream))
    messages = conversation()
    messages[1] = {"role": "user", "content": [{"type": "text", "text": document(THINGS[4:])}]}
    ask(gateway, messages)
    sent = recorder.bodies[-1]["messages"]
    assert sent[1] == messages[1] and sent[3] == messages[3]
    assert len(sent[0]["content"]) < len(messages[0]["content"])


def test_stream_without_upstream_usage_is_priced_on_the_compressed_prompt(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway]
) -> None:
    """When the upstream sends no usage, a stream's prompt is counted from what was sent
    (the compressed messages), not from the caller's original ones."""
    upstream, _ = recorded
    config = compression_config(upstream)
    config["providers"]["quiet"] = {**config["providers"]["up"], "stream_usage": False}
    config["models"]["big-quiet"] = {**config["models"]["big"], "provider": "quiet"}
    gateway = start_gateway(config)
    sent = {}
    for model in ("big", "big-quiet"):
        with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as c:
            raw = c.chat.completions.with_raw_response.create(
                model=model, messages=conversation(), temperature=0, stream=True
            )
            for _ in raw.parse():
                pass
        [attempt] = gateway.attempts(raw.headers["x-thrifty-request-id"])
        sent[model] = attempt["input_tokens"]
    assert sent["big-quiet"] == sent["big"]  # the upstream's own count of the compressed prompt


@pytest.mark.parametrize(
    "shape",
    [
        "Read this report.\n\n{doc}\n\nQuestion: {q}",  # a marked section
        "{doc}\n\n{q}",  # a trailing question paragraph
        "Question: {q}\n\nDocument: {doc}",  # the question first, then the document
    ],
)
def test_one_message_with_a_document_and_the_question(
    recorded: tuple[ServerThread, Recorder], start_gateway: Callable[..., Gateway], shape: str
) -> None:
    upstream, recorder = recorded
    gateway = start_gateway(compression_config(upstream))
    text = shape.format(doc=document(THINGS[4:]), q=QUESTION)
    reply = ask(gateway, [{"role": "user", "content": text}])
    sent = recorder.bodies[-1]["messages"]
    assert len(sent) == 1 and sent[0]["role"] == "user"
    compressed = sent[0]["content"]
    assert QUESTION in compressed, "the question is sent byte for byte"
    assert len(compressed) < len(text) / 2, "the document is compressed"
    assert "The harbour of Kaunas was opened in" in compressed, "the evidence is kept"
    info = gateway.row(reply.headers["x-thrifty-request-id"])["techniques"]["compress"]
    assert info["result"] == "compressed" and info["split"] in ("marked", "trailing")
    # the same request with the split off: one message is the question, never compressed
    plain = start_gateway(compression_config(upstream, split_question=False))
    ask(plain, [{"role": "user", "content": text}])
    assert recorder.bodies[-1]["messages"][0]["content"] == text
