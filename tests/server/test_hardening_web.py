"""A gateway without auth cannot be spent through by a web page (issue 16, item 14):
``Host`` must be one it answers to (DNS rebinding), a cross-origin ``Origin`` is refused,
and the JSON endpoints take only ``Content-Type: application/json`` (which a page cannot
send cross-origin without a preflight). The official SDK and ``curl -H`` keep working."""

from __future__ import annotations

import http.client as http_client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
JSON = {"content-type": "application/json"}


@pytest.fixture
def open_gateway(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> Gateway:
    return start_gateway(base_config(upstream.url, auth={"enabled": False}))


def raw_post(gateway: Gateway, path: str, headers: dict[str, str], body: bytes
             ) -> tuple[int, dict[str, Any], dict[str, str]]:  # fmt: skip
    """POST with exactly ``headers`` (``Host`` included when given)."""
    url = urlsplit(gateway.url)
    conn = http_client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("POST", path, skip_host="host" in headers, skip_accept_encoding=True)
        for name, value in {**headers, "content-length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read()), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_the_sdk_and_curl_style_json_are_served(open_gateway: Gateway) -> None:
    with openai.OpenAI(base_url=open_gateway.base_url, api_key="unused", max_retries=0
                       ) as client:  # fmt: skip
        chat = client.chat.completions.with_raw_response.create(**CHAT)
        embed = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="hi"
        )
    for raw in (chat, embed):  # the SDK sends JSON's content type
        assert raw.http_response.request.headers["content-type"] == "application/json"
    for host in ("localhost", "127.0.0.1"):
        port = urlsplit(open_gateway.url).port
        status, body, _ = raw_post(
            open_gateway,
            "/v1/chat/completions",
            {"host": f"{host}:{port}", **JSON},
            orjson.dumps(CHAT),
        )
        assert status == 200, body
    status, _, _ = http("POST", f"{open_gateway.base_url}/chat/completions", CHAT,
                        {"content-type": "application/json; charset=utf-8",
                         "origin": open_gateway.url})  # fmt: skip
    assert status == 200  # a page of the gateway's own origin


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"content-type": "text/plain"}, 415, "unsupported_media_type"),
        ({"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({}, 415, "unsupported_media_type"),
        ({**JSON, "host": "evil.example:8080"}, 400, "host_not_allowed"),
        ({**JSON, "host": "evil.example"}, 400, "host_not_allowed"),
        ({**JSON, "origin": "http://evil.example"}, 403, "origin_not_allowed"),
        ({**JSON, "origin": "null"}, 403, "origin_not_allowed"),
    ],
)
def test_what_a_web_page_could_send_is_refused(
    open_gateway: Gateway, headers: dict[str, str], status: int, code: str
) -> None:
    paths = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/messages",
             "/v1/completions")  # fmt: skip
    for path in paths:
        got, body, reply_headers = raw_post(open_gateway, path, headers, orjson.dumps(CHAT))
        assert got == status, body
        assert body["error"]["code"] == code and body["error"]["message"]
        assert set(body["error"]) >= {"message", "type", "param", "code"}
        assert reply_headers["x-thrifty-request-id"]
    assert open_gateway.requests() == []  # nothing reached the pipeline


def test_allowed_hosts_and_origins_are_configurable(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    server = {"allowed_hosts": ["gw.internal"], "allowed_origins": ["https://app.example"]}
    gateway = start_gateway(base_config(upstream.url, auth={"enabled": False}, server=server))
    ok = {**JSON, "host": "gw.internal", "origin": "https://app.example"}
    assert raw_post(gateway, "/v1/chat/completions", ok, orjson.dumps(CHAT))[0] == 200
    local = {**JSON, "host": "localhost"}  # an explicit list replaces the default
    assert raw_post(gateway, "/v1/chat/completions", local, orjson.dumps(CHAT))[0] == 400
    assert http("GET", f"{gateway.url}/health", headers={"host": "10.0.0.7"})[0] == 200


def test_with_auth_the_defaults_change_nothing(gateway: Gateway) -> None:
    """A key-protected gateway keeps answering any Host, Origin and content type."""
    headers = {"authorization": f"Bearer {GATEWAY_KEY}", "host": "gw.example",
               "origin": "https://elsewhere.example", "content-type": "text/plain"}  # fmt: skip
    status, body, _ = raw_post(gateway, "/v1/chat/completions", headers, orjson.dumps(CHAT))
    assert status == 200, body
