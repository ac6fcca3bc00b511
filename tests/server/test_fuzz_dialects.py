"""A bounded, seeded fuzz of the chat dialects (``/v1/responses``, ``/v1/messages``,
``/v1/completions``) through the real gateway and test upstream: whatever a client sends
and however the upstream fails, the reply is the dialect's own error or answer, never a
5xx of the gateway's own; every request the pipeline ran has its ledger row."""

from __future__ import annotations

import http.client as http_client
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.config import parse_config
from thrifty.server.app import build_app
from thrifty.server.protocol import PROTOCOL

FAULTS = {"fault-500": "500", "fault-cut": "cut;after=2", "fault-429": "429;retry_after=0"}
MODELS = ["gpt-4o-mini", "auto", "no-such-model", "dead-model", "claude-haiku-4-5", *FAULTS]


@pytest.fixture(scope="module")
def fuzzed(upstream: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fuzz-dialects")
    config = base_config(upstream.url, default_model="gpt-4o-mini")
    for name, fault in FAULTS.items():
        config["providers"][name] = {
            "base_url": f"{upstream.url}/v1",
            "headers": {"x-upstream-fault": fault},
        }
        config["models"][name] = {"provider": name, "model": "gpt-4o-mini"}
    config["providers"]["claude"] = {"base_url": f"{upstream.url}/v1", "kind": "anthropic"}
    config["models"]["claude-haiku-4-5"] = {"provider": "claude"}
    app = build_app(parse_config(config), ledger_path=str(tmp / "ledger.db"))
    with ServerThread(app, http=PROTOCOL) as server:
        yield Gateway(server, tmp / "ledger.db")


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "text", "name", "x"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=8,
)
TEXT = st.text(min_size=1, max_size=20)


def some(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``value``, sometimes anything."""
    return st.integers(0, 9).flatmap(lambda pick: JSON if pick == 0 else value)


MODEL = some(st.sampled_from(MODELS))
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["message", "function_call", "function_call_output", "reasoning", "web_search_call"]
        ),
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]),
        "content": some(
            TEXT
            | st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(
                            ["input_text", "output_text", "input_image", "input_file"]
                        ),
                        "text": some(TEXT),
                        "image_url": some(TEXT),
                    }
                ),
                max_size=2,
            )
        ),
        "call_id": some(TEXT),
        "name": some(TEXT),
        "arguments": some(TEXT),
        "output": some(TEXT),
    },
)
RESPONSES = st.fixed_dictionaries(
    {"model": MODEL, "input": some(TEXT | st.lists(ITEM, max_size=3))},
    optional={
        "instructions": some(TEXT),
        "stream": some(st.booleans()),
        "store": st.booleans(),
        "max_output_tokens": some(st.integers(-1, 40)),
        "previous_response_id": some(TEXT),
        "tools": some(
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["function", "web_search"]), "name": some(TEXT)}
                ),
                max_size=2,
            )
        ),
        "tool_choice": some(st.sampled_from(["auto", "none", "required"])),
        "text": some(st.just({"format": {"type": "json_object"}})),
        "reasoning": JSON,
        "temperature": SCALARS,
        "metadata": JSON,
    },
)
BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "document"])},
    optional={
        "text": some(TEXT),
        "source": JSON,
        "id": some(TEXT),
        "name": some(TEXT),
        "input": JSON,
        "tool_use_id": some(TEXT),
        "content": some(TEXT),
        "is_error": SCALARS,
    },
)
MESSAGES = st.fixed_dictionaries(
    {
        "model": MODEL,
        "max_tokens": some(st.integers(-1, 60)),
        "messages": some(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": some(st.sampled_from(["user", "assistant"])),
                        "content": some(TEXT | st.lists(BLOCK, max_size=3)),
                    }
                ),
                max_size=3,
            )
        ),
    },
    optional={
        "system": some(TEXT | st.lists(BLOCK, max_size=2)),
        "stream": some(st.booleans()),
        "tools": some(
            st.lists(st.fixed_dictionaries({"name": some(TEXT), "input_schema": JSON}), max_size=2)
        ),
        "tool_choice": JSON,
        "stop_sequences": JSON,
        "metadata": JSON,
        "temperature": SCALARS,
    },
)
COMPLETIONS = st.fixed_dictionaries(
    {"model": MODEL, "prompt": some(TEXT | st.lists(TEXT, max_size=2))},
    optional={
        "echo": SCALARS,
        "n": some(st.integers(1, 3)),
        "stream": some(st.booleans()),
        "suffix": SCALARS,
        "best_of": SCALARS,
        "logprobs": SCALARS,
        "max_tokens": some(st.integers(-1, 40)),
        "stream_options": some(st.just({"include_usage": True})),
    },
)
REQUESTS = st.one_of(
    st.tuples(st.just("/v1/responses"), some(RESPONSES)),
    st.tuples(st.just("/v1/messages"), some(MESSAGES)),
    st.tuples(st.just("/v1/completions"), some(COMPLETIONS)),
)


def send(
    gateway: Gateway, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http_client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=20)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def error_of(path: str, payload: bytes) -> dict[str, Any]:
    body = orjson.loads(payload)
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return body["error"]
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    return body["error"]


@pytest.fixture(scope="module")
def ran() -> list[str]:
    return []


@pytest.mark.timeout(240)
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(request=REQUESTS)
def test_fuzzed_dialect_requests_never_get_a_gateway_5xx(
    fuzzed: Gateway, ran: list[str], request: tuple[str, Any]
) -> None:
    path, body = request
    headers = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
    status, reply_headers, payload = send(fuzzed, path, json.dumps(body).encode(), headers)
    assert status != 500, payload[:500]
    if status >= 400:
        error = error_of(path, payload)
        assert "Internal error" not in error["message"], error
    if status >= 500:
        assert isinstance(body, dict) and body.get("model") in {*FAULTS, "dead-model"}, payload
    if status == 200 and "event-stream" in reply_headers.get("content-type", ""):
        assert b"Internal error" not in payload
    if status == 200 or status >= 500:
        ran.append(reply_headers["x-thrifty-request-id"])


def test_after_the_fuzz_every_run_is_booked(fuzzed: Gateway, ran: list[str]) -> None:
    assert len(ran) > 30, "the fuzz reached the pipeline too rarely to prove anything"
    booked = {row["request_id"] for row in fuzzed.requests()}
    assert set(ran) <= booked, sorted(set(ran) - booked)[:5]
