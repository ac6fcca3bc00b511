"""The test upstream refuses what would grow it without bound, and malformed messages, with
a 400 (issue 16, item 18): never a 500, a hang or gigabytes of reply."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from tests.conftest import ServerThread

from thrifty.upstream import UpstreamOptions, build_upstream_app


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(build_upstream_app(UpstreamOptions.for_tests())) as server:
        yield server


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body),
        headers={"content-type": "application/json", "authorization": "Bearer x"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, orjson.loads(exc.read())


def _chat(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": messages, **extra}


HI = [{"role": "user", "content": "hi"}]
CHAT = "chat/completions"

REFUSED = [
    (CHAT, _chat(HI, n=2**62), "n"),
    (CHAT, _chat(HI, n=129), "n"),
    (CHAT, _chat(HI, logprobs=True, top_logprobs=21), "top_logprobs"),
    (CHAT, _chat(HI, logprobs=True, top_logprobs=2**40), "top_logprobs"),
    ("embeddings", {"model": "text-embedding-3-small", "input": "hi", "dimensions": 2**31},
     "dimensions"),
    ("embeddings", {"model": "text-embedding-3-small", "input": "hi", "dimensions": 3073},
     "dimensions"),
    (CHAT, _chat([{"role": "user", "content": [{"type": "text", "text": None}]}]), "messages"),
    (CHAT, _chat([{"role": "user", "content": [{"type": "text", "text": 7}]}]), "messages"),
    (CHAT, _chat([{"role": "assistant", "content": None, "tool_calls": "x"}, *HI]), "messages"),
    (CHAT, _chat([{"role": "assistant", "content": None, "tool_calls": ["x"]}, *HI]),
     "messages"),
    (CHAT, _chat([{"role": "assistant", "content": None,
                     "tool_calls": [{"type": "function", "function": "f"}]}, *HI]), "messages"),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "body", "param"), REFUSED)
def test_unbounded_or_malformed_requests_get_a_400(
    upstream: ServerThread, endpoint: str, body: dict[str, Any], param: str
) -> None:
    started = time.monotonic()
    status, reply = _post(f"{upstream.url}/v1/{endpoint}", body)
    assert status == 400, reply
    assert reply["error"]["type"] == "invalid_request_error"
    assert reply["error"]["param"] == param
    assert time.monotonic() - started < 2


def test_the_bounds_themselves_are_served(upstream: ServerThread) -> None:
    status, reply = _post(
        f"{upstream.url}/v1/chat/completions", _chat(HI, n=128, logprobs=True, top_logprobs=20)
    )
    assert status == 200 and len(reply["choices"]) == 128
    assert len(reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]) == 20
    status, reply = _post(
        f"{upstream.url}/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "hi", "dimensions": 3072},
    )
    assert status == 200 and len(reply["data"][0]["embedding"]) == 3072
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    status, _ = _post(
        f"{upstream.url}/v1/chat/completions",
        _chat([{"role": "user", "content": parts},
               {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "c", "content": "ok"}, *HI]),
    )  # fmt: skip
    assert status == 200
